"""``trm-bench``: time full training steps of a paper-sized (or tiny) TRM on random data.

One timed step is :func:`trm_core.trainer.training_step`, the step
:meth:`~trm_core.trainer.Trainer.train_step` calls, without the trainer's data loader,
learning-rate schedule and EMA: one supervision step forward (with a persistent carry,
as in training), :func:`~trm_core.losses.act_loss`, backward,
:class:`~trm_core.optim.AdamAtan2` and :class:`~trm_core.optim.SignSGDRows` steps and
``zero_grad``. Inputs and labels are uniform random tokens (every position scored).

Model FLOPs per step are counted analytically from the config (:func:`step_flops`);
the achieved rate is compared with this machine's matmul peak in the same dtype,
measured with a short square matmul loop (:func:`measure_matmul_peak`) at startup and
again after the timed steps; the better of the two is the peak (on a shared or
virtualised machine one short loop can catch a slow moment).

Usage::

    trm-bench --task TASK [--preset P] [--mixer M] [--set model.KEY=VALUE ...]
              [--batch 16] [--steps 10] [--warmup 2] [--dtype auto|float32|bfloat16]
              [--device auto|cpu|cuda] [--compile] [--peak-tflops T] [--profile]
              [--compare BEFORE.json] [--json]

The model is an installed task's preset (its paper recipe by default), sized by the
task, so any task can be timed, a third party's too; ``--set`` changes the model
(``--set model.hidden_size=128`` is the small model the performance notes call
"tiny").

``--profile`` profiles one more step and splits its time by category
(:func:`profile_split`, docs/performance.md).

On a GPU, MFU (model FLOPs utilisation) is also reported against the GPU's dense
bfloat16 datasheet peak (``DATASHEET_BF16_TFLOPS``, or ``--peak-tflops``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .command import Parser, fail, guarded, run
from .config import ModelConfig, TrainConfig, unstructure
from .devices import DeviceError, native_bfloat16, resolve_device
from .errors import ConfigError
from .flops import step_flops
from .interfaces import COMPONENT_KINDS
from .layers import compile_for_training
from .model import build_model
from .optim import build_optimizers
from .registry import Registry, get_registry
from .trainer import training_step

#: The batch timed unless --batch says otherwise (a paper-sized model on a CPU).
DEFAULT_BATCH = 16
#: Puzzle identifiers of the timed model: the blank one and one more. A task's real table
#: (one row per task and augmentation: ~10^6) changes a step's memory, not its work; ``--set
#: model.num_puzzle_identifiers=N`` times a larger one.
STAND_IN_IDENTIFIERS = 2
DTYPES = ("auto", "float32", "bfloat16")

#: Dense bfloat16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s, by a part of the
#: name torch reports (first match wins: the more specific names come first). MFU is the
#: model's FLOPs per second over this peak; ``--peak-tflops`` names it for other GPUs.
DATASHEET_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)


def datasheet_peak_tflops(device: torch.device) -> float | None:
    """The datasheet bfloat16 peak of ``device``'s GPU, or None (a CPU, an unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in DATASHEET_BF16_TFLOPS if part in name), None)


def bench_config(
    task: str,
    preset: str | None = None,
    mixer: str | None = None,
    overrides: Sequence[str] = (),
    dtype: str = "auto",
    registry: Registry | None = None,
) -> tuple[dict[str, Any], str]:
    """The model config mapping an installed task's preset gives (its paper recipe by
    default, as on a CUDA device), sized by the task, and the preset chosen.

    ``overrides`` are ``model.KEY=VALUE`` settings (``model.hidden_size=128``, a
    component's ``model.options.NAME.KEY``), applied as ``trm-run --set`` applies them.
    """
    from .run import default_preset, resolve

    if preset is None:  # the paper's recipe, as a CUDA device trains by default
        presets = (registry or get_registry()).get("task", task)().presets()
        preset, _ = default_preset(presets, mixer, cuda=True)
        if not preset.startswith("paper"):
            preset = next((name for name in presets if name.startswith("paper")), preset)
    for assignment in overrides:
        if not assignment.strip().startswith("model."):
            raise ConfigError(
                f"--set {assignment}: trm-bench times a model; it takes model.KEY=VALUE"
            )
    mapping, task_obj, _ = resolve(
        task, mixer=mixer, preset=preset, overrides=overrides, cuda=True, registry=registry
    )
    task_obj.configure(dict((mapping.get("data") or {}).get("options") or {}))
    config = dict(mapping.get("model") or {})
    config.update(vocab_size=task_obj.vocab_size, seq_len=task_obj.seq_len, dtype=dtype)
    config.setdefault("num_puzzle_identifiers", STAND_IN_IDENTIFIERS)
    return config, mapping["preset"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(
    dtype: torch.dtype, device: torch.device, seconds: float = 0.5, max_size: int | None = None
) -> dict[str, float]:
    """This machine's square-matmul rate in ``dtype``.

    The size doubles from 256 while one matmul stays short (so an emulated dtype, e.g.
    bfloat16 on an AVX2 CPU, gets a small one), up to ``max_size`` (2048 on CPU, 8192
    on CUDA); after a warm-up, matmuls repeat for at least ``seconds`` (4 calls at
    least), each timed alone, alternating the layouts ``a @ b.T`` (F.linear's forward)
    and ``a.T @ b`` (its weight gradient). Both operands row-major (``a @ b``, the
    input-gradient layout) is left out: it is as fast in float32, but in bfloat16 on
    an AVX2 CPU it takes a ~14x slower path, so it is no measure of the peak.

    Returns:
        ``{"gflops": the fastest call's rate (the peak: other load only slows calls down),
        "mean_gflops": the loop's average rate, "size", "calls", "seconds"}``.
    """
    if max_size is None:
        max_size = 8192 if device.type == "cuda" else 2048

    def timed(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        return time.perf_counter() - start

    size = 256
    while True:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        out = torch.empty(size, size, device=device, dtype=dtype)
        layouts = [(a, b.t()), (a.t(), b)]
        for first, second in layouts:
            timed(out, first, second)  # warm-up (thread pools, kernels, both layouts)
        one = timed(out, *layouts[0])
        if size >= max_size or one * 8 > seconds:  # the next size would take ~8x as long
            break
        size *= 2
    calls: list[float] = [one]
    while sum(calls) < seconds or len(calls) < 4:
        calls.append(timed(out, *layouts[len(calls) % 2]))
    flop = 2 * size**3
    return {
        "gflops": flop / min(calls) / 1e9,
        "mean_gflops": flop * len(calls) / sum(calls) / 1e9,
        "size": size,
        "calls": len(calls),
        "seconds": sum(calls),
    }


def random_batch(
    config: ModelConfig, batch: int, generator: torch.Generator, device: torch.device
) -> dict[str, torch.Tensor]:
    """Uniform random tokens 1..V-1 as inputs and labels (all scored), random puzzle ids."""
    shape = (batch, config.seq_len)
    tokens = {
        "inputs": torch.randint(1, config.vocab_size, shape, generator=generator),
        "labels": torch.randint(1, config.vocab_size, shape, generator=generator),
        "puzzle_identifiers": torch.randint(
            0, config.num_puzzle_identifiers, (batch,), generator=generator
        ),
    }
    return {key: value.to(device) for key, value in tokens.items()}


class StepRunner:
    """The model, its optimisers and the carry; :meth:`step` is one training step."""

    def __init__(
        self,
        config: Mapping[str, Any],
        batch: int,
        device: str | torch.device | None,
        use_compile: bool = False,
        seed: int = 0,
    ) -> None:
        torch.manual_seed(seed)
        self.model = build_model(dict(config), device=device)
        self.model.train()
        self.config = self.model.config  # dtype "auto" resolved
        self.device = next(self.model.parameters()).device
        self.batch_size = batch
        self.forward = compile_for_training(self.model) if use_compile else self.model
        # TrainConfig's default rates and decays: they do not change the work.
        self.optimizer, self.row_optimizers = build_optimizers(self.model, TrainConfig())
        generator = torch.Generator().manual_seed(seed)
        # A few batches, cycled: halted slots take new examples, as in training.
        self.batches = [random_batch(self.config, batch, generator, self.device) for _ in range(4)]
        self.carry = self.model.initial_carry(self.batches[0])
        self.count = 0

    def step(self) -> float:
        """One training step (the trainer's :func:`~trm_core.trainer.training_step`);
        returns its loss, read back after the step (a host sync)."""
        batch = self.batches[self.count % len(self.batches)]
        self.count += 1
        result = training_step(
            self.model, self.carry, batch, self.optimizer, self.row_optimizers,
            batch_size=self.batch_size, forward=self.forward,
        )  # fmt: skip
        self.carry = result.carry
        value = float(result.loss)
        if not math.isfinite(value):
            raise RuntimeError(f"non-finite loss ({value}) at benchmark step {self.count}")
        return value

    def timed_step(self) -> float:
        """One step's wall time in seconds (the device synchronised on both ends)."""
        _sync(self.device)
        start = time.perf_counter()
        self.step()
        _sync(self.device)
        return time.perf_counter() - start


# -- the command ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="trm-bench",
        description=(
            "Time full TRM training steps (forward of one supervision step, ACT loss, "
            "backward, Adam-atan2 and sign-SGD steps) on random data; report ms/step, "
            "examples/s, model FLOPs and the fraction of the measured matmul peak."
        ),
    )
    parser.add_argument("--task", help="the task whose model to time (trm-plugins --kind task)")
    parser.add_argument(
        "--preset", help="the task's preset (default: its paper recipe, as on a CUDA device)"
    )
    parser.add_argument("--mixer", help="the token mixer (default: the preset's)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="model.KEY=VALUE",
        help="change the model: --set model.hidden_size=128 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, help=f"batch size (default {DEFAULT_BATCH})")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument(
        "--dtype", default="auto", choices=DTYPES,
        help="forward dtype; auto: bfloat16 where the device computes it natively, else float32",
    )  # fmt: skip
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available, else cpu), cpu, cuda, cuda:N"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model as training does (its nets)"
    )
    parser.add_argument(
        "--profile", action="store_true",
        help="profile one more step with torch.profiler: the top ops on stderr, and its "
        "time split into matmuls, casts, elementwise, norms, backward cat, copies, "
        "optimisers and the rest",
    )  # fmt: skip
    parser.add_argument(
        "--peak-tflops", type=float,
        help="the device's bfloat16 peak for MFU (default: the datasheet's, for known GPUs)",
    )  # fmt: skip
    parser.add_argument(
        "--compare", metavar="BEFORE.json",
        help="print the ratio against an earlier trm-bench --json result (a file of one "
        "result or a list: the one with this model, batch, dtype, device and compile)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``trm-bench``; returns the exit status (2 for a usage error)."""
    args = build_parser().parse_args(argv)
    return guarded(lambda: _bench(args))


def _cores() -> int:
    """The cores this process may run on (its affinity where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _bench(args: argparse.Namespace) -> int:
    if not args.task:
        tasks = get_registry().names("task")
        return fail(f"--task is required; installed tasks: {', '.join(tasks) or 'none'}")
    config, preset = bench_config(args.task, args.preset, args.mixer, args.set, args.dtype)
    label = " ".join([args.task, preset, *args.set])
    batch = args.batch if args.batch is not None else DEFAULT_BATCH
    for name, value, least in (("batch", batch, 1), ("steps", args.steps, 1)):
        if value < least:
            return fail(f"--{name} must be >= {least}, got {value}")
    if args.warmup < 0:
        return fail(f"--warmup must be >= 0, got {args.warmup}")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        return fail(f"--peak-tflops must be > 0, got {args.peak_tflops}")
    if args.threads is not None:
        cores = _cores()
        if not 1 <= args.threads <= cores:
            return fail(
                f"--threads must be within 1..{cores} (the cores this process may use), "
                f"got {args.threads}"
            )
        torch.set_num_threads(args.threads)

    try:
        device = resolve_device(args.device, key="--device")
        saved = None if args.compare is None else read_results(args.compare)
    except (DeviceError, ValueError) as error:
        return fail(str(error))
    log: Callable[[str], None] = (
        (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    )
    try:
        result = bench(config, label, batch, args.steps, args.warmup, device,
                       use_compile=args.compile, profile=args.profile, log=log,
                       peak_tflops=args.peak_tflops)  # fmt: skip
    except RuntimeError as error:
        return fail(str(error))
    if saved is not None:
        try:
            result["compare"] = compare(result, saved, args.compare)
        except ValueError as error:
            return fail(str(error))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_result(result))
    return 0


#: What makes two results comparable: the same step (the model's config, but for its
#: puzzle-identifier count and the options of components it does not use, which change
#: no work) on the same kind of device.
SAME = ("batch", "dtype", "device", "compile")


def _step_of(result: Mapping[str, Any]) -> dict[str, Any]:
    config = dict(result.get("config") or {})
    config.pop("num_puzzle_identifiers", None)
    used = {config.get(kind) for kind in COMPONENT_KINDS}
    options = config.get("options") or {}
    config["options"] = {name: value for name, value in options.items() if name in used}
    return config


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The trm-bench results saved in ``path`` (one ``--json`` object, or a list of them);
    a ValueError naming the file when it holds none."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"--compare {path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"--compare {path}, line {error.lineno}: not JSON ({error.msg})") from None
    results = data if isinstance(data, list) else [data]
    if not results or not all(
        isinstance(item, dict) and all(key in item for key in (*SAME, "config", "median_ms"))
        for item in results
    ):
        raise ValueError(f"--compare {path}: not trm-bench --json results")
    return results


def compare(result: dict[str, Any], saved: list[dict[str, Any]], path: Any) -> dict[str, Any]:
    """``result`` against the saved result of the same step: the speed-up (the saved
    median over this one's) and both peak fractions; a ValueError when none matches."""
    key = {name: result[name] for name in SAME}
    step = _step_of(result)
    match = next(
        (
            item
            for item in saved
            if all(item[k] == v for k, v in key.items()) and _step_of(item) == step
        ),
        None,
    )
    if match is None:
        have = "; ".join(_describe(item) for item in saved)
        raise ValueError(f"--compare {path} has no result for {_describe(result)} (it has: {have})")
    machine, theirs = result.get("machine", {}), match.get("machine", {})
    return {
        "file": str(path),
        "before_ms": match["median_ms"],
        "after_ms": result["median_ms"],
        "speedup": match["median_ms"] / result["median_ms"],
        "before_peak_fraction": match.get("peak_fraction"),
        "after_peak_fraction": result["peak_fraction"],
        "same_machine": bool(machine) and machine.get("cpu") == theirs.get("cpu"),
        "before_torch": match.get("torch"),
    }


def _describe(result: Mapping[str, Any]) -> str:
    """A result's step in a few words: what it timed, batch, dtype, device, compile."""
    config = result.get("config") or {}
    what = result.get("label") or result.get("preset") or "?"
    model = f"{config.get('mixer', '?')} mixer, hidden {config.get('hidden_size', '?')}"
    return f"{what} ({model}), " + ", ".join(f"{k} {result[k]}" for k in SAME)


def machine_summary(device: torch.device) -> dict[str, Any]:
    """The CPU (model name and the flags that decide matmul speed), its cores, and the
    GPU: saved with each result, so a comparison can tell it ran on the same machine."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                name, _, value = line.partition(":")
                if name.strip() == "model name":
                    cpu = value.strip()
                elif name.strip() == "flags":
                    flags = sorted(set(value.split()) & MATMUL_FLAGS)
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cpus": os.cpu_count(),
        "native_bfloat16": native_bfloat16(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


#: CPU flags that decide how fast float32 and bfloat16 matmuls run.
MATMUL_FLAGS = frozenset(
    {"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
     "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16"}
)  # fmt: skip


def bench(
    config: Mapping[str, Any],
    label: str,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    *,
    use_compile: bool = False,
    profile: bool = False,
    log: Callable[[str], None] = lambda text: None,
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    """Time the training step of the model ``config`` (a mapping, ``bench_config``'s);
    ``label`` names it. Returns the numbers ``--json`` prints.

    ``peak_tflops``: the device's bfloat16 peak for ``mfu`` (default: the datasheet's,
    for the GPUs in DATASHEET_BF16_TFLOPS; None on a CPU)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(f"trm-bench {label}: building the model on {device}")
    if load is not None and load[0] > 0.5 * (os.cpu_count() or 1):
        log(
            f"warning: load average {load[0]:.2f} on {os.cpu_count()} CPUs: "
            "other work may slow the steps down"
        )
    if use_compile and warmup == 0:
        log("note: with --compile and --warmup 0 the first timed step includes compilation")
    runner = StepRunner(config, batch, device, use_compile=use_compile)
    model_config = runner.config
    forward_dtype = getattr(torch, model_config.dtype)

    log(f"measuring the {model_config.dtype} matmul peak")
    peak_start = measure_matmul_peak(forward_dtype, runner.device)

    flops = step_flops(model_config, batch)
    compile_s = None
    for index in range(warmup):
        seconds = runner.timed_step()
        if index == 0 and use_compile:
            compile_s = seconds
        log(f"warm-up {index + 1}/{warmup} {seconds * 1e3:.0f} ms")
    times = []
    for index in range(steps):
        seconds = runner.timed_step()
        times.append(seconds)
        log(f"step {index + 1}/{steps} {seconds * 1e3:.0f} ms")
    split = None
    if profile:
        table, split = profile_step(runner)
        log(table)

    peak_end = measure_matmul_peak(forward_dtype, runner.device, max_size=peak_start["size"])
    peak = max(peak_start, peak_end, key=lambda p: p["gflops"])

    median = statistics.median(times)
    achieved = flops["total"] / median / 1e9
    if peak_tflops is None:
        peak_tflops = datasheet_peak_tflops(runner.device)
    return {
        "label": label,
        "device": str(runner.device),
        "dtype": model_config.dtype,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
        "compile": use_compile,
        "compile_first_step_s": compile_s,
        "profile_ms": split,
        "parameters": runner.model.num_parameters(),
        "step_ms": [t * 1e3 for t in times],
        "median_ms": median * 1e3,
        "min_ms": min(times) * 1e3,
        "max_ms": max(times) * 1e3,
        "examples_per_s": batch / median,
        "flops_per_step": flops["total"],
        "flops": flops,
        "achieved_gflops": achieved,
        "peak_gflops": peak["gflops"],
        "peak_mean_gflops": peak["mean_gflops"],
        "peak_start_gflops": peak_start["gflops"],
        "peak_end_gflops": peak_end["gflops"],
        "peak_matmul_size": peak["size"],
        "peak_fraction": achieved / peak["gflops"],
        "datasheet_peak_tflops": peak_tflops,
        "mfu": None if peak_tflops is None else achieved / (peak_tflops * 1e3),
        "load_average": None if load is None else list(load),
        "torch": torch.__version__,
        "machine": machine_summary(runner.device),
        "config": unstructure(model_config),
    }


#: The categories of trm-bench --profile's split, in print order.
CATEGORIES = ("matmuls", "casts", "elementwise", "norms", "backward cat",
              "copies", "optimisers", "Python and the rest")  # fmt: skip
_MATMULS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm",
            "aten::_scaled_dot_product_flash_attention_for_cpu",
            "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
            "aten::_flash_attention_forward", "aten::_flash_attention_backward",
            "aten::_efficient_attention_forward", "aten::_efficient_attention_backward",
            "aten::_scaled_dot_product_cudnn_attention",
            "aten::_scaled_dot_product_cudnn_attention_backward"}  # fmt: skip
#: Backward nodes of rms_norm's forward ops.
_NORM_BACKWARD = ("RsqrtBackward", "MeanBackward", "PowBackward")
_COPIES = {"aten::copy_", "aten::clone", "aten::contiguous"}


def _category(event: Any) -> str:
    """The split category of one profiler event (by its name and its enclosing events)."""
    from .layers import NORM_SCOPE
    from .trainer import OPTIMIZER_SCOPE

    names = []
    parent = event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    if OPTIMIZER_SCOPE in names:
        return "optimisers"
    if event.name in _MATMULS:
        return "matmuls"
    if NORM_SCOPE in names or any(n in name for name in names[:3] for n in _NORM_BACKWARD):
        return "norms"
    if "aten::_to_copy" in names[:2] or event.name == "aten::_to_copy":
        return "casts"
    if event.name == "aten::cat":
        return "backward cat"
    if event.name in _COPIES:
        return "copies"
    return "elementwise"


def profile_split(events: Any, wall_ms: float) -> dict[str, float]:
    """Milliseconds of one profiled step by category: every op's own (self) CPU time
    summed into :data:`CATEGORIES`; "Python and the rest" is the wall time the ops do
    not account for (interpreter, autograd bookkeeping, waits)."""
    split = dict.fromkeys(CATEGORIES, 0.0)
    for event in events:
        if event.device_type.name != "CPU" or event.self_cpu_time_total <= 0:
            continue
        if not event.name.startswith("aten::"):
            continue  # scopes and autograd nodes: their ops are counted themselves
        split[_category(event)] += event.self_cpu_time_total / 1e3
    split["Python and the rest"] = max(0.0, wall_ms - sum(split.values()))
    return split


def profile_step(runner: StepRunner, rows: int = 25) -> tuple[str, dict[str, float]]:
    """One step under torch.profiler: the top ops by self CPU time as a table, and the
    step's :func:`profile_split` (CPU time; on a GPU the table has the kernels)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if runner.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        wall = runner.timed_step() * 1e3
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return table, profile_split(prof.events(), wall)


def format_split(split: dict[str, float]) -> str:
    """The split as lines of ``category  ms  percent``."""
    total = sum(split.values()) or 1.0
    lines = [f"  profile of one step ({total:.0f} ms):"]
    lines += [f"    {name:22s} {ms:9.1f} ms {100 * ms / total:5.1f}%" for name, ms in split.items()]
    return "\n".join(lines)


def format_result(result: dict[str, Any]) -> str:
    config, flops = result["config"], result["flops"]
    length = config["seq_len"] + (config["puzzle_emb_len"] if config["puzzle_emb_dim"] else 0)
    load = result["load_average"]
    lines = [
        f"trm-bench {result.get('label') or result.get('preset')}: {config['mixer']} mixer, "
        f"hidden {config['hidden_size']}, "
        f"L {length}, T={config['cycles']} n={config['think_steps']}, "
        f"{result['parameters']:,} parameters",
        f"  batch {result['batch']}, {result['dtype']} on {result['device']} "
        f"({result['threads']} threads{', compiled' if result['compile'] else ''}); "
        f"{result['steps']} timed steps after {result['warmup']} warm-up",
        f"  step time    median {result['median_ms']:.1f} ms "
        f"(min {result['min_ms']:.1f}, max {result['max_ms']:.1f})",
        f"  throughput   {result['examples_per_s']:.1f} examples/s",
        f"  model FLOPs  {flops['total'] / 1e9:.2f} GFLOP/step "
        f"(forward {flops['forward'] / 1e9:.2f}, backward {flops['backward'] / 1e9:.2f})",
        f"  achieved     {result['achieved_gflops']:.1f} GFLOP/s = "
        f"{100 * result['peak_fraction']:.1f}% of the measured {result['dtype']} matmul peak "
        f"{result['peak_gflops']:.1f} GFLOP/s ({result['peak_matmul_size']}^2)",
    ]
    if result["mfu"] is not None:
        lines.append(
            f"  MFU          {100 * result['mfu']:.1f}% of the bfloat16 peak "
            f"{result['datasheet_peak_tflops']:.0f} TFLOP/s"
        )
    if result["compile_first_step_s"] is not None:
        lines.append(f"  compile      first step {result['compile_first_step_s']:.1f} s")
    if load is not None:
        lines.append(f"  load average {load[0]:.2f} (1 min) at start, {os.cpu_count()} CPUs")
    if result.get("profile_ms"):
        lines.append(format_split(result["profile_ms"]))
    against = result.get("compare")
    if against is not None:
        before = against["before_peak_fraction"]
        lines.append(
            f"  compared     {against['before_ms']:.1f} ms in {against['file']} -> "
            f"{against['after_ms']:.1f} ms now: {against['speedup']:.2f}x"
            + (f"; peak fraction {100 * before:.1f}% -> " if before is not None else "; now ")
            + f"{100 * against['after_peak_fraction']:.1f}%"
            + ("" if against["same_machine"] else " (another CPU: not a speed-up)")
        )
    return "\n".join(lines)


def bench_command() -> None:
    run(main)


if __name__ == "__main__":
    bench_command()
