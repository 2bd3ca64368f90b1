"""Where trm computes, and every choice it leaves to the machine.

A device is named ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Four
settings may be left to the machine (``auto``, or unset), and each is decided here
and nowhere else:

- device (``--device``, ``device:``): ``cuda`` when a CUDA GPU is visible, else
  ``cpu`` (:func:`auto_device`);
- forward dtype (``model.dtype``): ``bfloat16`` where the device computes it
  natively (CUDA GPUs with bf16, CPUs with AVX-512-BF16 or AMX), else ``float32``
  (:func:`auto_dtype`);
- ``train.compile``: ``torch.compile`` on CUDA, and on a CPU in bfloat16 where a C++
  compiler is found; not on a CPU in float32 (:func:`auto_compile`);
- ``train.prefetch``: batches prepared on a background thread on CUDA, not on a
  CPU (:func:`auto_prefetch`).

One choice is the device's, not a setting: float64, where the loss and metric sums
use it, is float32 on a device without it (MPS; :func:`wide_float`).

A task's default preset follows the device: its ``cpu`` preset unless the run
is on CUDA. Tests pin all of these (the test suite fails any test that lets
:func:`auto_device` or :func:`auto_dtype` decide without saying so).
"""

from __future__ import annotations

import os
import re
from typing import Any

import attrs
import torch

from .errors import DeviceError

#: What a device setting may say (N: a GPU index).
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DEVICE = re.compile(r"^(auto|cpu|mps|meta|cuda(:\d+)?)$")  # meta: shapes only, no data


def available_devices() -> list[str]:
    """The devices this machine has: ``cpu``, then ``cuda:0``... and ``mps`` where present."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device_name(name: object, key: str = "device") -> str:
    """``name`` if it is a device name (whether or not this machine has it), else a
    DeviceError naming ``key`` and the valid forms."""
    text = str(name)
    if not isinstance(name, str | torch.device) or not _DEVICE.match(text):
        raise DeviceError(
            f"{key} {name!r} is not a device; use one of {', '.join(DEVICE_NAMES)} "
            f"(this machine has {', '.join(available_devices())})"
        )
    return text


def auto_device() -> torch.device:
    """The device ``auto`` means on this machine: CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None, key: str = "device") -> torch.device:
    """The torch device for a setting (None and ``auto``: :func:`auto_device`).

    A malformed name, or a device this machine lacks (``cuda`` without CUDA,
    ``cuda:3`` with one GPU), raises a DeviceError naming ``key`` and the
    devices that exist.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return auto_device()
    if isinstance(device, torch.device):
        chosen = device
    else:
        chosen = torch.device(check_device_name(device, key))
    here = available_devices()
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"{key} {str(device)!r}: CUDA is not available on this machine; "
                f"devices here: {', '.join(here)}"
            )
        if chosen.index is not None and chosen.index >= count:
            raise DeviceError(
                f"{key} {str(device)!r}: there is no such GPU; devices here: {', '.join(here)}"
            )
    elif chosen.type == "mps" and "mps" not in here:
        raise DeviceError(
            f"{key} {str(device)!r}: MPS is not available on this machine; "
            f"devices here: {', '.join(here)}"
        )
    elif chosen.type not in ("cpu", "cuda", "mps", "meta"):
        raise DeviceError(
            f"{key} {str(device)!r} is not a device trm runs on; devices here: {', '.join(here)}"
        )
    return chosen


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matmuls natively (fast), not emulated."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a torch build without oneDNN
            return False
    return False


#: Device types without float64 (Apple's MPS): there the stablemax loss and the
#: trainer's metric sums run in float32 (docs/architecture.md#numerics).
NO_FLOAT64 = {"mps"}


def wide_float(device: torch.device | str) -> torch.dtype:
    """The widest float ``device`` computes: float64, or float32 where it has none
    (:data:`NO_FLOAT64`). The stablemax loss and the metric sums use it."""
    kind = device.type if isinstance(device, torch.device) else torch.device(device).type
    return torch.float32 if kind in NO_FLOAT64 else torch.float64


def auto_dtype(device: torch.device) -> str:
    """The forward dtype ``auto`` means on ``device``: bfloat16 where native, else float32."""
    return "bfloat16" if native_bfloat16(device) else "float32"


def resolve_dtype(dtype: str, device: str | torch.device | None) -> str:
    """The forward dtype name for a config value; ``auto`` depends on the device."""
    if dtype != "auto":
        return dtype
    return auto_dtype(resolve_device(device))


def auto_compile(device: torch.device, dtype: str) -> bool:
    """Whether ``train.compile`` unset means ``torch.compile`` the model: on CUDA, and on a
    CPU whose forward dtype (``model.dtype``, resolved) is bfloat16 when a C++ compiler
    for torch's CPU code generation is found (:func:`cpu_compiler`).

    On a CPU the step of a small model is not bound by its matmuls: eagerly, in
    bfloat16, elementwise ops (the SwiGLUs' SiLU and products, the norms) take more of
    it than the matmuls do, and the compiler fuses them. Measured on a 2-core Xeon with
    AMX (docs/performance.md#time-to-accuracy), the Sudoku ``cpu`` preset's step went
    from 92.9 to 55.4 ms (``trm-bench --compile``), and its 1,800 steps trained in 132 s
    instead of 178, the first step's ~15 s of compiling included, to the same accuracy.
    In float32 the same step gains less (157 -> 120 ms there, 1.07x on 2 AVX2 cores:
    0.376 -> 0.352 s after ~25 s of compiling), not worth a slow start by default;
    ``--set train.compile=true`` turns it on anywhere, ``false`` off.
    """
    if device.type == "cuda":
        return True
    return device.type == "cpu" and dtype == "bfloat16" and cpu_compiler() is not None


def cpu_compiler() -> str | None:
    """The C++ compiler ``torch.compile`` would build CPU kernels with (``$CXX``, else
    ``g++``), or None when there is none (then a CPU run is not compiled unless asked)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # no compiler, or an inductor without this helper
        return None


def auto_prefetch(device: torch.device) -> bool:
    """Whether ``train.prefetch`` unset means preparing the next batch on a background
    thread: on CUDA only, where the main thread would otherwise wait for it while the
    GPU idles. On a CPU the thread would compete with the step for the same cores
    (measured on 2 AVX2 cores, ARC's cpu preset: 63.7 examples/s without, 62.1 with)."""
    return device.type == "cuda"


def describe_os_error(error: OSError) -> str:
    """``no space left on device (runs/x/checkpoints/last.pt)``: what the system said,
    and the file it said it of."""
    text = (error.strerror or str(error) or type(error).__name__).lower()
    short = re.fullmatch(r"(\d+) requested and (\d+) written", text.strip())
    if short is not None:  # numpy's short write (np.save to a full disk): no errno to say so
        wanted, got = (int(n) for n in short.groups())
        text = f"no space left on device (a write stopped at {got:,} of {wanted:,})"
    return f"{text} ({os.fsdecode(error.filename)})" if error.filename is not None else text


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is memory running out: Python's MemoryError, CUDA's
    OutOfMemoryError, or the CPU allocator's RuntimeError ("can't allocate memory")."""
    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


#: Bytes a training step keeps per (example, token, hidden unit, block pass) for the
#: backward pass: about 24 float32 values, measured on CPU with the attention mixer.
ACTIVATION_BYTES = 24 * 4


def memory_of(device: torch.device) -> int | None:
    """The device's total memory in bytes (None where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None
    return None


def micro_batch(config: Any, processes: int = 1) -> tuple[int, int]:
    """``(examples, bytes)``: the examples one forward of ``config`` (a RunConfig) takes on
    each device (the global batch over processes x ``train.accumulate``), and a rough
    estimate of the activations a training step keeps for its backward pass (examples x
    tokens x hidden_size x block passes of the last cycle)."""
    model, train = config.model, config.train
    examples = train.global_batch_size // (max(1, processes) * train.accumulate)
    passes = (model.think_steps + 1) * model.num_layers
    return examples, examples * model.total_len * model.hidden_size * passes * ACTIVATION_BYTES


def training_memory_problem(config: Any, device: torch.device, processes: int = 1) -> str | None:
    """Why a training step of ``config`` (a RunConfig) cannot fit on ``device``, or None.

    Only a micro-batch that needs more than twice the device's whole memory
    (:func:`micro_batch`) is refused, before a step runs out of memory (or a sampler
    spends an hour making its rows); the line names a ``train.accumulate`` that fits."""
    model, train = config.model, config.train
    batch, needed = micro_batch(config, processes)
    total = memory_of(device)
    if total is None or needed <= 2 * total:
        return None
    per_process = train.global_batch_size // max(1, processes)
    fits = next(
        (
            n
            for n in range(train.accumulate + 1, per_process + 1)
            if per_process % n == 0
            and micro_batch(_accumulating(config, n), processes)[1] <= 2 * total
        ),
        None,
    )
    passes = (model.think_steps + 1) * model.num_layers
    hint = (
        f"; set train.accumulate={fits} (micro-batches of {per_process // fits} examples, the "
        "same training) or lower train.global_batch_size"
        if fits is not None
        else "; lower train.global_batch_size"
    )
    return (
        f"train.global_batch_size {train.global_batch_size} needs about "
        f"{needed / 2**30:,.0f} GiB for one training step ({batch} examples per forward x "
        f"{model.total_len} tokens x hidden_size {model.hidden_size} x {passes} block passes, "
        f"a rough estimate), but {device} has {total / 2**30:,.0f} GiB{hint}"
    )


def _accumulating(config: Any, accumulate: int) -> Any:
    """``config`` with ``train.accumulate`` set (for the memory estimate)."""
    return attrs.evolve(config, train=attrs.evolve(config.train, accumulate=accumulate))
