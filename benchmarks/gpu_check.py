"""One-command GPU check: does trm run right, and how fast, on this CUDA machine?

Run from the repository root on a machine with a CUDA GPU (under 10 minutes on one
H100-class GPU; nothing is downloaded)::

    python benchmarks/gpu_check.py                       # every stage
    python benchmarks/gpu_check.py --stages bench train  # some of them
    python benchmarks/gpu_check.py --dry-run             # the plan and its commands only
    python benchmarks/gpu_check.py --device cpu --quick  # the same stages, tiny, on a CPU

Stages, in order:

- ``env``: torch, CUDA, the GPU and whether it computes bfloat16;
- ``tests``: the device tests (``pytest -m device --device cuda``: model parity in
  float32, training steps in both dtypes without host syncs, checkpoints and exact
  resume, evaluation, trm-bench);
- ``bench``: ``trm-bench`` of ``paper-sudoku-mlp`` and ``paper-sudoku-att`` (batch 768,
  the reference's Sudoku runs on one GPU) and ``paper-maze-att`` and ``paper-arc-att``
  (batch 192: its Maze and ARC runs split 768 over 4 GPUs), in bfloat16, eager and
  compiled: ms per step, examples/s, TFLOP/s and MFU against the GPU's bfloat16 peak.
  The four compilations run first, side by side, to fill Inductor's cache;
- ``train``: 300 steps of the Sudoku ``paper-mlp`` recipe (batch 768, the run's own
  defaults for the device: compiled, batches made ahead) on generated puzzles, then its
  evaluation; prints loss and examples/s as TensorBoard recorded them;
- ``torchrun``: 20 steps of the same under a 1-process ``torchrun`` (NCCL on CUDA).

Logs, JSON and run folders go to ``--out`` (default: a new temporary folder). Each
stage runs under what is left of ``--budget`` seconds; a stage that would not fit is
skipped and said so. Exit status: 0 when every stage that ran passed, 1 otherwise,
2 for a usage error (no CUDA without ``--device cpu``, an unknown stage).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_models, beside this script
from bench_models import MODELS

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("env", "tests", "bench", "train", "torchrun")

#: (model of bench_models.MODELS, per-GPU batch): the reference trains Sudoku on one GPU (768) and
#: Maze and ARC on four (768 / 4).
PAPER_BENCHES = (
    ("paper-sudoku-mlp", 768),
    ("paper-sudoku-att", 768),
    ("paper-maze-att", 192),
    ("paper-arc-att", 192),
)
QUICK_BENCHES = (("tiny-sudoku-mlp", 2), ("tiny-sudoku-att", 2))

#: The paper-mlp recipe on generated puzzles (the preset reads Sudoku-Extreme from the Hub).
GENERATED = [
    "data.options.train.source=generate", "data.options.train.count=1000",
    "data.options.train.givens=[28,36]", "data.options.train.minimal=false",
    "data.options.test.source=generate", "data.options.test.count=768",
    "data.options.test.givens=[28,36]", "data.options.test.minimal=false",
    "train.log_interval=25", "eval.batch_size=768",
]  # fmt: skip
#: --quick: the same command, small enough for a CPU (set over GENERATED).
QUICK = [
    "model.hidden_size=32", "model.cycles=1", "model.think_steps=2", "model.halt_max_steps=2",
    "model.dtype=float32", "data.augmentations=4", "train.global_batch_size=16",
    "train.compile=false", "data.options.train.count=64", "data.options.test.count=32",
    "data.options.train.givens=[60,70]", "data.options.test.givens=[60,70]",
    "train.log_interval=2", "eval.batch_size=32",
]  # fmt: skip


class Check:
    """The plan, its budget and what each stage found."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = args.device
        self.out: Path = args.out
        self.deadline = time.monotonic() + args.budget
        self.failed: list[str] = []
        self.skipped: list[str] = []

    # -- running commands ------------------------------------------------------------

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def command(self, argv: Sequence[str], name: str, limit: float) -> tuple[int, str]:
        """Run ``argv`` (Python's own ``-m`` modules) with a time limit; its output goes
        to ``out/<name>.log``. Returns (exit status, output); 124 when it timed out."""
        argv = [str(part) for part in argv]
        print(f"$ {' '.join(argv)}", flush=True)
        if self.args.dry_run:
            return 0, ""
        log = self.out / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRM_DATA_DIR": str(self.out / "data")}
        try:
            done = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(1, limit)
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as error:
            code = 124
            output = _text(error.stdout) + _text(error.stderr)
            output += f"\n(timed out after {limit:.0f} s)"
        log.write_text(output)
        return code, output

    def stage(self, name: str, needs: float) -> bool:
        """Whether stage ``name`` runs (it needs about ``needs`` seconds of the budget)."""
        if name not in self.args.stages:
            return False
        print(f"\n== {name} ({self.left():.0f} s of the budget left)", flush=True)
        if not self.args.dry_run and self.left() < needs:
            print(f"skipped: needs about {needs:.0f} s", flush=True)
            self.skipped.append(name)
            return False
        return True

    def fail(self, name: str, code: int, output: str) -> None:
        self.failed.append(name)
        tail = "\n".join(output.strip().splitlines()[-15:])
        print(f"FAILED ({'timed out' if code == 124 else f'exit {code}'}):\n{tail}", flush=True)

    # -- stages ----------------------------------------------------------------------

    def env(self) -> None:
        import torch

        print(f"python {sys.version.split()[0]}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}")  # fmt: skip
        if self.device.startswith("cuda"):
            index = torch.device(self.device).index or 0
            props = torch.cuda.get_device_properties(index)
            print(f"GPU {index}: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute "
                  f"capability {props.major}.{props.minor}, {props.multi_processor_count} SMs, "
                  f"bfloat16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")  # fmt: skip
        from trm_core import bench

        peak = bench.datasheet_peak_tflops(torch.device(self.device))
        print(f"bfloat16 datasheet peak: {f'{peak:.0f} TFLOP/s' if peak else 'unknown'}")

    def tests(self) -> None:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "device",
                "--device", self.device, "tests"]  # fmt: skip
        code, output = self.command(argv, "tests", min(240, self.left()))
        summary = [line for line in output.splitlines() if " passed" in line or " failed" in line]
        print(summary[-1] if summary else "(no pytest summary)")
        if code:
            self.fail("tests", code, output)

    def bench(self) -> None:
        quick = self.args.quick
        benches = QUICK_BENCHES if quick else PAPER_BENCHES
        dtype = "float32" if quick else "bfloat16"
        modes = ["eager"] if quick else ["eager", "compiled"]

        def argv(preset: str, batch: int, compiled: bool, steps: int, warmup: int) -> list:
            line = [sys.executable, "-m", "trm_core.bench", *MODELS[preset], "--batch", batch,
                    "--dtype", dtype, "--device", self.device, "--steps", steps,
                    "--warmup", warmup, "--json", "--quiet"]  # fmt: skip
            return line + (["--compile"] if compiled else [])

        if "compiled" in modes:  # compile all four side by side: Inductor caches the kernels
            print("compiling the four models side by side (fills Inductor's cache)", flush=True)
            started = time.monotonic()
            jobs = []
            for preset, batch in benches:
                line = [str(part) for part in argv(preset, batch, True, 1, 1)]
                print(f"$ {' '.join(line)}", flush=True)
                if not self.args.dry_run:
                    log = (self.out / f"compile-{preset}.log").open("w")
                    jobs.append(subprocess.Popen(line, cwd=ROOT, stdout=log, stderr=log))
            for job in jobs:
                try:
                    job.wait(timeout=max(1, min(300, self.left() - 120)))
                except subprocess.TimeoutExpired:
                    job.kill()
            if jobs:
                print(f"compiled in {time.monotonic() - started:.0f} s", flush=True)
        rows = []
        for mode in modes:
            for preset, batch in benches:
                if self.left() < 30 and not self.args.dry_run:
                    print(f"skipped {preset} {mode}: out of budget")
                    self.skipped.append(f"bench {preset} {mode}")
                    continue
                name = f"bench-{preset}-{mode}"
                steps, warmup = (2, 1) if quick else (10, 3)
                code, output = self.command(argv(preset, batch, mode == "compiled", steps, warmup),
                                            name, min(240, self.left()))  # fmt: skip
                if self.args.dry_run:
                    continue
                if code:
                    self.fail(name, code, output)
                    continue
                result = json.loads(output[output.index("{") : output.rindex("}") + 1])
                (self.out / f"{name}.json").write_text(json.dumps(result, indent=2))
                rows.append((preset, mode, result))
        if rows:
            print(bench_table(rows))

    def train(self, torchrun: bool = False) -> None:
        name = "torchrun" if torchrun else "train"
        steps = 20 if torchrun else 300
        settings = [*GENERATED, *QUICK] if self.args.quick else GENERATED
        if torchrun:
            settings = [*settings, "train.compile=false"]
            steps = 4 if self.args.quick else steps
        elif self.args.quick:
            steps = 6
        launcher = [sys.executable, "-m", "trm_core.cli"]
        if torchrun:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
                        "-m", "trm_core.cli"]  # fmt: skip
        argv = [*launcher, "run", "--task", "sudoku", "--preset", "paper-mlp", "--device",
                self.device, "--max-steps", steps, "--out", self.out / name]  # fmt: skip
        for setting in settings:
            argv += ["--set", setting]
        started = time.monotonic()
        code, output = self.command(argv, name, min(300, self.left()))
        if self.args.dry_run:
            return
        lines = output.splitlines()
        for line in lines:
            if line.startswith(("trm-run:", "model:", "done:", "data:")) or "accuracy" in line:
                print(f"  {line.strip()}")
        if code:
            self.fail(name, code, output)
            return
        print(f"  ({time.monotonic() - started:.0f} s in all)")
        if torchrun and "x1 processes" not in output:
            self.fail(name, 1, "trm-run did not report a 1-process torchrun\n" + output)
            return
        print(train_table(next((self.out / name).iterdir())))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def bench_table(rows: list[tuple[str, str, dict]]) -> str:
    """trm-bench results as a Markdown table."""
    lines = [
        "| preset | batch | mode | ms / step | examples/s | achieved | MFU (bf16 peak) "
        "| of measured matmul peak | first step (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for preset, mode, r in rows:
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        first = "-" if r["compile_first_step_s"] is None else f"{r['compile_first_step_s']:.1f}"
        lines.append(
            f"| {preset} | {r['batch']} | {mode} | {r['median_ms']:.1f} | "
            f"{r['examples_per_s']:,.1f} | {_rate(r['achieved_gflops'])} | {mfu} | "
            f"{100 * r['peak_fraction']:.0f}% of {_rate(r['peak_gflops'])} | {first} |"
        )
    return "\n".join(lines)


def _rate(gflops: float) -> str:
    return f"{gflops / 1e3:.1f} TFLOP/s" if gflops >= 1e3 else f"{gflops:.1f} GFLOP/s"


def train_table(run_dir: Path) -> str:
    """The run's logged loss and examples/s, from its TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    loss = {e.step: e.value for e in events.Scalars("train/loss")}
    speed = {e.step: e.value for e in events.Scalars("train/examples_per_second")}
    lines = ["| step | loss | examples/s |", "| --- | --- | --- |"]
    lines += [f"| {step} | {loss[step]:.4f} | {speed.get(step, 0):,.0f} |" for step in sorted(loss)]
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_check", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N (or cpu with --quick)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), metavar="STAGE",
                        help=f"stages to run, of {', '.join(STAGES)} (default: all)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=570, help="seconds in all (570)")
    parser.add_argument("--out", type=Path, help="folder for logs and runs (default: a new one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (to try it on a CPU)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip install the repository if trm is missing")  # fmt: skip
    return parser.parse_args(argv)


def usage_error(message: str) -> int:
    print(f"gpu_check: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    unknown = [stage for stage in args.stages if stage not in STAGES]
    if unknown:
        return usage_error(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    if args.budget <= 0:
        return usage_error(f"--budget must be > 0, got {args.budget}")
    if not args.no_install and not args.dry_run:
        install()
    from trm_core.devices import DeviceError, resolve_device

    try:
        device = resolve_device(args.device, key="--device")
    except DeviceError as error:
        if not args.dry_run:
            hint = "; run it on a CUDA machine, or try it with --device cpu --quick"
            return usage_error(f"{error}{hint}")
        device = None
    if device is not None and device.type != "cuda" and not args.quick:
        return usage_error(f"--device {args.device} is no GPU: full sizes need CUDA "
                           "(--quick runs the stages tiny on a CPU)")  # fmt: skip
    args.out = Path(args.out or tempfile.mkdtemp(prefix="trm-gpu-check-"))
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args)
    print(f"trm GPU check on {args.device}: stages {', '.join(args.stages)}; budget "
          f"{args.budget:.0f} s; logs in {args.out}", flush=True)  # fmt: skip
    started = time.monotonic()
    if check.stage("env", 0) and not args.dry_run:
        check.env()
    if check.stage("tests", 60):
        check.tests()
    if check.stage("bench", 90):
        check.bench()
    if check.stage("train", 90):
        check.train()
    if check.stage("torchrun", 45):
        check.train(torchrun=True)
    print(f"\n== done in {time.monotonic() - started:.0f} s: "
          f"{'FAILED ' + ', '.join(check.failed) if check.failed else 'every stage run passed'}"
          f"{'; skipped ' + ', '.join(check.skipped) if check.skipped else ''}")  # fmt: skip
    return 1 if check.failed else 0


def install() -> None:
    """Make trm-core and the Sudoku task importable (offline, editable, no dependencies:
    a GPU image has torch and the rest) when they are not installed yet."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("trm-core"), distribution("trm-plugin-sudoku")
        return
    except PackageNotFoundError:
        pass
    print("installing trm-core and trm-plugin-sudoku from this repository (editable, offline)")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-e", ROOT, "-e", ROOT / "tasks" / "sudoku"],
        check=True,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
