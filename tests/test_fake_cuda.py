"""GPU readiness on any CPU: the training step, evaluation, the strategies and the batch
feed run on a fake CUDA device (torch's ``FakeTensorMode``), on a CPU-only torch.

A fake tensor has a shape, a dtype and a device but no values: every operation computes
the shape and device of its result, and this harness fails where a GPU would fail or
make the host wait:

- a tensor on the wrong device: an operation mixing a CPU tensor (not a 0-dim one, which
  CUDA accepts too) with a GPU one raises ``WrongDevice``, as do a CPU tensor written
  into a GPU tensor and a real (not fake) CPU tensor mixed in;
- a host sync: reading a value (``.item()``, ``bool()``, ``int()``, ``float()``,
  ``.tolist()``, ``.numpy()``), a result whose size depends on the values
  (``nonzero()``, boolean-mask indexing, ``torch.unique``), a 0-dim tensor used as an
  index, or a copy from the GPU to the host (``.cpu()``) raises ``HostSync``;
- a blocking copy to the GPU (CUDA synchronises the stream for one; a pinned,
  non-blocking copy does not wait) is recorded, and a training step must make none.

Checked, for both mixers (``mlp`` and ``attention``):

- the training step as :meth:`Trainer.train_step` runs it, the Trainer built for
  ``--device cuda``: batches from the feed (made ahead on its worker thread, pinned and
  copied without blocking, as on CUDA), the forward with its halting exploration, the
  ACT loss and metrics, the optimisers' steps (Adam-atan2's multi-tensor path, the
  sign-SGD rows with their duplicate sums), ``zero_grad``, the finiteness record, the
  EMA and the metric sums; in float32 and bfloat16, with one micro-batch and with two
  (whose exploration draws come from the GPU's generator state). Steps that do not
  measure must not sync at all; a log step's reads are allowed and must come from the
  code that reads back (the metric sums, the gradient norm, the finiteness check);
- evaluation: :func:`unroll` with the early-halting hook without any sync, then the
  Trainer's whole final evaluation (EMA weights, early halting, a strategy's report),
  whose reads must come from the per-batch read-back of ``evaluate`` and
  ``evaluate_strategy`` alone;
- the strategies ``unroll``, ``steps``, ``rollouts`` (noise from a generator asked for
  the batch's device) and ``augment-vote`` answering a batch on the GPU without a sync;
  augmented copies are made on the host by design (the task's augmentations are numpy),
  and those reads must come from making and mapping back the copies alone;
- where the batch feed and the evaluation batches put their tensors;
- the harness itself: an injected ``.item()``, ``bool()``, ``.tolist()``, ``nonzero()``,
  ``.cpu()``, boolean-mask or 0-dim-tensor index in the forward, a CPU tensor in the
  model and a batch left on the CPU each make it fail, and its indexing (below) gives
  the shapes torch's does.

Not checked here, and why (``benchmarks/gpu_check.py`` runs the device tests, the
benchmarks, training and torchrun on a real GPU):

- backward: on a CPU-only torch the autograd engine aborts the process (not an
  exception) on a fake CUDA tensor, even when a forward records the graph, so every
  forward here runs without autograd recording and ``backward`` is replaced by one that
  gives each parameter and puzzle-embedding row a zero gradient on its own device, as
  autograd would. The backward kernels and where autograd really puts each gradient
  are unchecked;
- values: fake tensors have none, so no kernel's numerics, no non-finite loss, and the
  optimisers' and EMA's arithmetic only for devices and syncs;
- ``torch.compile`` (the default on CUDA) and Inductor's kernels: the forward here is
  the eager one (``train.compile`` off); which attention kernel SDPA picks on CUDA;
- torchrun, NCCL and the collectives (one process here);
- the pinned memory itself: ``pin_memory`` needs CUDA's host allocator, so it is
  replaced by one that counts the calls; CUDA's random generators, asked for by device
  and stood in for by the CPU's;
- checkpoints and resume (``Carry.from_state``, ``load_state_dict``), ``trm-bench``,
  the inference commands beyond the strategies and :func:`unroll` they call, and what
  runs outside the step (data building, logging, writing files);
- memory (out-of-memory paths, peak use) and speed.

How: a CPU-only torch has no CUDA device guard, which some Python bindings construct
before dispatching (indexing, ``~``, ``copy_``, ``int()``), so the harness emulates
indexing (``x[...]`` and ``x[...] = v``) with the aten operations torch's own indexing
issues and ``~`` with ``bitwise_not``, and calls another such binding's aten operation
directly (a binding without one fails as a ``HarnessGap``, naming it); under
``inference_mode`` a ``.to`` is taken apart into the copy it makes. Host-side code (the
sampler's collation, building the model before it is moved) runs outside the fake
mode, as it runs on the host of a GPU machine. Everything runs in one child process
for the module (a few seconds): an abort there fails these tests, naming the check that
was running, instead of ending the test session, and no patch or torch state outlives
it.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

import trm_core
import trm_core.data
import trm_core.strategies
import trm_core.trainer
from trm_core.data import BatchFeed, RunData, TrainSampler, eval_batches
from trm_core.distributed import World
from trm_core.evaluate import EarlyHalting

from . import tiny_task

fake_tensor = pytest.importorskip("torch._subclasses.fake_tensor")
python_dispatch = pytest.importorskip("torch.utils._python_dispatch")

ROOT = Path(__file__).resolve().parents[1]
#: The device a run names (``--device cuda``), and where its tensors live.
DEVICE = torch.device("cuda")
GPU = torch.device("cuda", 0)
MIXERS = ("mlp", "attention")
TORCH_DIR = str(Path(torch.__file__).parent)
aten = torch.ops.aten


# -- the harness ---------------------------------------------------------------------


class HostSync(AssertionError):
    """The host would wait for the device: a value read back, or a copy to the host."""


class WrongDevice(AssertionError):
    """A tensor on another device than the operation's other tensors."""


class HarnessGap(AssertionError):
    """An operation the CPU-only torch cannot run on a fake CUDA tensor (it wants a CUDA
    device guard) and the harness does not emulate: not a device bug."""


#: Tensor methods that read values back to the host (or size a result by them).
HOST_READS = {
    "item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__complex__",
    "nonzero", "argwhere", "unique", "unique_consecutive", "masked_select",
}  # fmt: skip
#: Of those, the ones whose result's size depends on the values.
SIZED_BY_VALUES = {
    f"{name}()" for name in ("nonzero", "argwhere", "unique", "unique_consecutive", "masked_select")
}
COPIES = (aten._to_copy.default, aten.copy_.default, aten._copy_from.default)


def _on_gpu(value: Any) -> bool:
    return isinstance(value, fake_tensor.FakeTensor) and value.device.type == "cuda"


def _caller() -> str:
    """``module.function`` of the innermost frame outside torch and this file."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(TORCH_DIR) and filename != __file__:
            code = frame.f_code
            return f"{frame.f_globals.get('__name__')}.{getattr(code, 'co_qualname', code.co_name)}"
        frame = frame.f_back
    return "?"


class _Dispatch(fake_tensor.FakeTensorMode):
    """The fake mode, with copies to the host and value reads reported to the machine."""

    def __init__(self, machine: FakeCuda) -> None:
        # Real CPU tensors (the host's batches, a model before it is moved) come in as
        # fakes on the CPU, so one mixed with the device's still fails as on CUDA.
        super().__init__(allow_non_fake_inputs=True)
        self.machine = machine

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket is aten.to:
            # Under inference_mode a .to arrives whole, and the fake mode would run it on
            # the real tensor (it folds constants), which fails without CUDA: take it
            # apart into the _to_copy it makes, as outside inference_mode.
            args = [self._fake(a) for a in args]
            return func.decompose(*args, **kwargs)
        if func in COPIES:
            source = args[1] if func is aten.copy_.default else args[0]
            if func is aten._to_copy.default:
                target = torch.device(kwargs.get("device") or source.device)
            else:
                target = (args[0] if func is aten.copy_.default else args[1]).device
            if source.device.type == "cuda" and target.type == "cpu":
                self.machine.host_read(f"{func} (a copy from the GPU to the host)")
            elif source.device.type == "cpu" and target.type == "cuda":
                if func is not aten._to_copy.default and source.ndim:  # .to is the way in
                    self.machine.found(WrongDevice, f"{func}: a CPU tensor written on the GPU")
                if not kwargs.get("non_blocking"):  # CUDA waits for the stream to copy
                    self.machine.uploads.append(_caller())
        try:
            return super().__torch_dispatch__(func, types, args, kwargs)
        except (
            fake_tensor.DataDependentOutputException,
            fake_tensor.DynamicOutputShapeException,
        ) as error:
            self.machine.found(HostSync, f"{func} needs the tensor's values on the host")
            raise AssertionError("unreachable") from error
        except fake_tensor.FakeTensorDeviceMismatchError as error:
            self.machine.found(WrongDevice, f"{func}: {error}")
            raise AssertionError("unreachable") from error
        except RuntimeError as error:  # an in-place result on another device than its input
            if "wrapped to wrong device" not in str(error):
                raise
            self.machine.found(WrongDevice, f"{func}: {error}")
            raise AssertionError("unreachable") from error

    def _fake(self, value: Any) -> Any:
        real = isinstance(value, Tensor) and not isinstance(value, fake_tensor.FakeTensor)
        return self.from_tensor(value) if real else value


class _Bindings(torch.overrides.TorchFunctionMode):
    """Host reads by name, and the Python bindings that want a CUDA device guard."""

    def __init__(self, machine: FakeCuda) -> None:
        super().__init__()
        self.machine = machine

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_READS and any(isinstance(a, fake_tensor.FakeTensor) for a in args):
            return self.machine.host_read(f"{name}()", args[0])
        if name == "to":  # a bare "cuda" resolves its index through the guard: cuda:0
            args = tuple(_indexed(a) for a in args)
            kwargs = {key: _indexed(value) for key, value in kwargs.items()}
        if args and _on_gpu(args[0]):
            if name == "__getitem__":
                return _getitem(self.machine, *args)
            if name == "__setitem__":
                return _setitem(self.machine, *args)
            if name == "__invert__":
                return torch.bitwise_not(args[0])
        try:
            return func(*args, **kwargs)
        except RuntimeError as error:
            if "not linked with support for cuda" not in str(error):
                raise
            operation = getattr(aten, name, None)  # the operation the binding would call
            if operation is None or not isinstance(operation, torch._ops.OpOverloadPacket):
                raise HarnessGap(
                    f"{name}: this CPU-only torch has no CUDA device guard for it; emulate "
                    "it in tests/test_fake_cuda.py (_Bindings) if the engine needs it"
                ) from error
            return operation(*args, **kwargs)


def _indexed(value: Any) -> Any:
    if isinstance(value, str) and value == "cuda":
        return GPU
    if isinstance(value, torch.device) and value.type == "cuda" and value.index is None:
        return GPU
    return value


def _basic(machine: FakeCuda, x: Tensor, index: Any) -> tuple[Tensor, list[Tensor | None]]:
    """``x[index]``'s basic part (the view torch's indexing makes with ``select``,
    ``slice`` and ``unsqueeze``) and the tensor indices left for ``aten.index``, in the
    order and with the host reads of torch's own indexing (python_variable_indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, Tensor) and item.dtype in (torch.bool, torch.uint8):
            machine.found(HostSync, "indexing with a boolean mask sizes its result on the host")
        if isinstance(item, Tensor) and item.ndim == 0:
            machine.found(HostSync, "a 0-dim tensor as an index is read on the host")
        if isinstance(item, bool | list):
            raise HarnessGap(f"indexing with a {type(item).__name__} is not emulated")
    used = sum(item is not None and item is not Ellipsis for item in items)
    out, dim, indices = x, 0, []
    for item in items:
        if item is Ellipsis:
            indices += [None] * (x.ndim - used)
            dim += x.ndim - used
        elif item is None:
            out = out.unsqueeze(dim)
            indices.append(None)
            dim += 1
        elif isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else item.step
                out = aten.slice.Tensor(out, dim, item.start, item.stop, step)
            indices.append(None)
            dim += 1
        elif isinstance(item, Tensor):
            indices.append(item)
            dim += 1
        else:
            out = out.select(dim, operator.index(item))
    while indices and indices[-1] is None:
        indices.pop()
    return out, indices


def _getitem(machine: FakeCuda, x: Tensor, index: Any) -> Tensor:
    out, indices = _basic(machine, x, index)
    return aten.index.Tensor(out, indices) if indices else out


def _setitem(machine: FakeCuda, x: Tensor, index: Any, value: Any) -> None:
    out, indices = _basic(machine, x, index)
    if not isinstance(value, Tensor):
        value = torch.full((), value, dtype=x.dtype, device=x.device)
    elif value.device != x.device and value.ndim:
        machine.found(WrongDevice, f"a {value.device} tensor written into a {x.device} one")
    if indices:
        aten.index_put_.default(out, indices, value)
    elif value.ndim == 0:
        out.fill_(value)
    else:
        aten.copy_.default(out, value)


class _StrategiesTorch:
    """``torch`` as trm_core.strategies sees it: a noise generator asked for the GPU is
    recorded and made on the CPU (a CPU-only torch has no CUDA generator; the fake
    random draws ignore it)."""

    def __init__(self, generators: list[torch.device]) -> None:
        self._generators = generators

    def Generator(self, device: Any = "cpu") -> torch.Generator:  # torch's name
        self._generators.append(_indexed(torch.device(device)))
        return torch.Generator()

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


def _host_side(function: Callable) -> Callable:
    """``function`` run on the host, outside the fake mode (its tensors are real)."""

    def host(*args, **kwargs):
        with python_dispatch._disable_current_modes():
            return function(*args, **kwargs)

    return host


class FakeCuda:
    """A fake CUDA machine for the ``with`` block (module docstring).

    ``host_reads``: False fails at the first host sync; True lets the host read (a
    value reads as zero) and records where each read came from in ``reads``.
    ``uploads`` records where each blocking copy to the GPU came from (CUDA
    synchronises the stream for one; a pinned, non-blocking copy does not wait).
    ``findings`` lists every failure, even one the code under test caught.
    """

    def __init__(self, host_reads: bool = False) -> None:
        self.host_reads = host_reads
        self.reads: list[str] = []
        self.uploads: list[str] = []
        self.findings: list[str] = []
        self.generators: list[torch.device] = []
        self.pinned = 0
        self.backward_calls = 0
        self._stack = contextlib.ExitStack()

    def found(self, kind: type[AssertionError], message: str) -> None:
        message = f"{message} (in {_caller()})"
        self.findings.append(f"{kind.__name__}: {message}")
        raise kind(message)

    def host_read(self, what: str, tensor: Tensor | None = None) -> Any:
        if not self.host_reads:
            self.found(HostSync, f"{what} reads the device's values on the host")
        if what in SIZED_BY_VALUES:  # no result without the values: a sync all the same
            self.found(HostSync, f"{what} sizes its result by the device's values")
        self.reads.append(_caller())
        if tensor is None:
            return None
        kind = bool if tensor.dtype == torch.bool else float if tensor.is_floating_point() else int
        zeros = np.zeros(tuple(tensor.shape), dtype=kind)
        return {
            "numpy()": zeros, "tolist()": zeros.tolist(), "item()": kind(0), "__bool__()": False,
            "__int__()": 0, "__index__()": 0, "__float__()": 0.0, "__complex__()": 0j,
        }[what]  # fmt: skip

    def _backward(self, tensors, *args, **kwargs) -> None:
        """Autograd's gradients without autograd: one on each parameter's own device."""
        for tensor in tensors if isinstance(tensors, list | tuple) else [tensors]:
            if tensor.device.type != "cuda" or tensor.numel() != 1:
                self.found(WrongDevice, f"backward from a {tensor.device} {tensor.shape} loss")
        self.backward_calls += 1
        for module in self.model.modules():
            for parameter in module.parameters(recurse=False):
                if parameter.requires_grad and parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
            rows = getattr(module, "last_rows", None)
            if rows is not None and rows.grad is None:
                rows.grad = torch.zeros_like(rows)

    def _rng_state(self, device: Any = "cuda") -> Tensor:
        """CUDA's generator state, asked for ``device``: the CPU's stands in."""
        self.generators.append(_indexed(torch.device(device)))
        return torch.get_rng_state()

    def _set_rng_state(self, state: Tensor, device: Any = "cuda") -> None:
        self.generators.append(_indexed(torch.device(device)))

    def _pin(self, tensor: Tensor) -> Tensor:
        self.pinned += 1
        return tensor

    def __enter__(self) -> FakeCuda:
        patch = self._stack.enter_context(pytest.MonkeyPatch.context())
        self.model: torch.nn.Module = torch.nn.Module()  # the one backward gives gradients
        patch.setattr(torch.autograd, "backward", self._backward)
        patch.setattr(torch.autograd, "grad", lambda *a, **k: pytest.fail("autograd.grad"))
        patch.setattr(torch.cuda, "get_rng_state", self._rng_state)
        patch.setattr(torch.cuda, "set_rng_state", self._set_rng_state)
        patch.setattr(torch.Tensor, "pin_memory", lambda tensor, *args, **kwargs: self._pin(tensor))
        patch.setattr(trm_core.strategies, "torch", _StrategiesTorch(self.generators))
        patch.setattr(trm_core.data, "collate", _host_side(trm_core.data.collate))
        patch.setattr(trm_core.trainer, "TRMModel", _host_side(trm_core.trainer.TRMModel))
        self._stack.enter_context(torch.no_grad())
        self._stack.enter_context(_Dispatch(self))
        self._stack.enter_context(_Bindings(self))
        return self

    def __exit__(self, *failure) -> None:
        self._stack.close()


# -- running the checks in a child process ------------------------------------------

#: The checks, by name: each runs in the child process, its test in this one.
CHECKS: dict[str, Callable[[], None]] = {}


def on_fake_cuda(check: Callable[[], None]) -> Callable[..., None]:
    """Run ``check`` in the fake-CUDA child process; its test passes when it did."""
    CHECKS[check.__name__] = check

    def test(fake_cuda_results: dict[str, str | None]) -> None:
        failure = fake_cuda_results[check.__name__]
        if failure is not None:
            pytest.fail(failure, pytrace=False)

    test.__name__, test.__doc__ = check.__name__, check.__doc__
    return test


@pytest.fixture(scope="module")
def fake_cuda_results(tmp_path_factory) -> dict[str, str | None]:
    """Every check's outcome (None: passed, else what failed), from a child process; a
    check that ends the child fails, and the checks after it run in a new one."""
    out = tmp_path_factory.mktemp("fake_cuda") / "results.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    results: dict[str, str | None] = {}
    while len(results) < len(CHECKS):
        left = [name for name in CHECKS if name not in results]
        out.unlink(missing_ok=True)
        child = subprocess.run(
            [sys.executable, "-m", "tests.test_fake_cuda", str(out), *left],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        results.update(json.loads(out.read_text()) if out.exists() else {})
        if len(results) < len(CHECKS):  # the child ended during the first check not done
            name = next(name for name in left if name not in results)
            said = child.stderr.split(f"running {name}\n")[-1]
            hint = (
                " (a CPU-only torch aborts when autograd records a graph on a fake CUDA "
                "tensor: see the module docstring)"
                if "not linked with support for cuda" in said
                else ""
            )
            results[name] = f"the child process ended ({child.returncode}){hint}:\n{said[:3000]}"
    return results


def _child(out: Path, names: list[str]) -> None:
    """Run the named checks, writing ``{name: None or the failure}`` after each."""
    results: dict[str, str | None] = {}
    for name in names:
        print(f"running {name}", file=sys.stderr, flush=True)
        try:
            with torch.random.fork_rng():
                CHECKS[name]()
            results[name] = None
        except BaseException:  # reported to the test, whatever it is
            results[name] = traceback.format_exc()
        out.write_text(json.dumps(results))


# -- what the checks build -----------------------------------------------------------


def _model_section(mixer: str) -> dict[str, Any]:
    positions = "none" if mixer == "mlp" else "rope"
    return {"mixer": mixer, "options": {"grid": {"positions": positions},
                                        "attention": {"num_heads": 2}}}  # fmt: skip


def _trainer(
    root: Path, mixer: str, dtype: str = "float32", **train: Any
) -> trm_core.trainer.Trainer:
    """The tiny reverse task's trainer on the fake GPU, as ``trm-run --device cuda``
    builds it (batches made ahead), the forward eager; call inside ``FakeCuda``."""
    task = tiny_task.ReverseTask()
    data = task.build_dataset(tiny_task.PRESET["data"]["options"], root / "data")
    config = tiny_task.run_config(
        model={**_model_section(mixer), "dtype": dtype},
        train={"compile": False, "lr_warmup_steps": 1, **train},
        eval={"early_halting": True, "batch_size": 24, "max_examples": 40},
    )
    registry = tiny_task.registry()
    strategy = trm_core.make_strategy({"name": "rollouts", "k": 2, "sigma": 0.5}, registry)
    world = World(device=DEVICE)
    return trm_core.trainer.Trainer(config, task, data, world, None, registry, None, strategy)


def _model(mixer: str) -> trm_core.TRMModel:
    """A tiny model of the reverse task (3 supervision steps), built on the CPU (call
    outside ``FakeCuda``)."""
    config = tiny_task.run_config(model={**_model_section(mixer), "halt_max_steps": 3})
    torch.manual_seed(0)
    return trm_core.TRMModel(config.model, tiny_task.registry())


def _batch(size: int = 6, device: torch.device = DEVICE) -> dict[str, Tensor]:
    """A batch of the reverse task on ``device`` (call inside ``FakeCuda`` for the GPU)."""
    inputs = torch.randint(1, tiny_task.DIGITS + 1, (size, tiny_task.LENGTH), device=device)
    return {
        "inputs": inputs,
        "labels": inputs.flip(-1),
        "puzzle_identifiers": torch.ones(size, dtype=torch.long, device=device),
    }


def _on_the_gpu(where: str, *tensors: Any) -> None:
    for tensor in tensors:
        for leaf in tensor.values() if isinstance(tensor, dict) else [tensor]:
            assert isinstance(leaf, fake_tensor.FakeTensor), f"{where}: a real tensor"
            assert leaf.device == GPU, f"{where}: on {leaf.device}"


@contextlib.contextmanager
def _gpu_model(mixer: str, **fake: Any) -> Iterator[tuple[FakeCuda, trm_core.TRMModel]]:
    """The tiny model moved to the fake GPU, in eval mode."""
    model = _model(mixer)
    with FakeCuda(**fake) as machine:
        machine.model = model.to(DEVICE).eval()
        yield machine, model


# -- the training step ----------------------------------------------------------------


#: (mixer, forward dtype, micro-batches): each mixer in both dtypes and both ways.
STEPS = [
    ("mlp", "float32", 1), ("mlp", "bfloat16", 2),
    ("attention", "bfloat16", 1), ("attention", "float32", 2),
]  # fmt: skip


@on_fake_cuda
def test_a_training_step_stays_on_the_gpu_and_never_syncs():
    """Trainer.train_step between log steps, for both mixers, in float32 and bfloat16,
    with one micro-batch and with two: no host sync, every tensor of the step on the GPU
    (batches, carry, weights, optimiser state, EMA shadows, sums, the finiteness record),
    the batches made ahead and pinned, micro-batches' draws from the GPU's generator."""
    for mixer, dtype, accumulate in STEPS:
        where = f"{mixer}, {dtype}, accumulate {accumulate}"
        with tempfile.TemporaryDirectory() as root, FakeCuda() as machine:
            trainer = _trainer(Path(root), mixer, dtype, accumulate=accumulate)
            machine.model = trainer.model
            assert trainer.batches.background and trainer.batches.pin, where
            _on_the_gpu(where, trainer._bad_step, trainer._bad_loss)  # as built
            assert all(p.is_cuda for p in trainer.model.parameters())  # foreach Adam-atan2
            machine.uploads.clear()  # the model's move to the GPU
            for _ in range(3):  # slots halt and restart (halt_max_steps 2)
                assert trainer.train_step(measure=False) is None
            trainer.batches.close()
            assert machine.findings == [] and machine.reads == [], where
            assert machine.uploads == [], where  # batches come pinned, non-blocking
            assert machine.backward_calls == 3 * accumulate and machine.pinned > 0, where
            assert set(machine.generators) == ({GPU} if accumulate > 1 else set()), where
            assert trainer.embedding_optimizers, where  # the sign-SGD rows ran
            for carry in trainer.carries:
                _on_the_gpu(where, carry.y, carry.z, carry.steps, carry.halted, carry.data)
                assert carry.y.dtype == getattr(torch, dtype), where
            _on_the_gpu(where, *trainer.model.parameters(), *trainer.model.buffers())
            for state in trainer.optimizer.state.values():
                _on_the_gpu(where, state["exp_avg"], state["exp_avg_sq"])
            assert len(trainer.optimizer.state) == len(list(trainer.model.parameters()))
            _on_the_gpu(where, *trainer.ema.shadow.values())
            _on_the_gpu(where, trainer.sums.totals, trainer._bad_step, trainer._bad_loss)
            assert trainer.sums.totals.dtype == torch.float64, where


@on_fake_cuda
def test_a_log_step_reads_back_only_its_measurements():
    """A log step (``measure=True``) is where the host reads: the harness fails it when
    reads are not allowed, and allowed, they come from the metric sums, the gradient
    norm and the finiteness check alone."""
    with tempfile.TemporaryDirectory() as root:
        with FakeCuda() as machine:
            trainer = _trainer(Path(root), "mlp", prefetch=False)
            machine.model = trainer.model
            trainer.train_step(measure=False)
            with pytest.raises(HostSync):
                trainer.train_step(measure=True)
        with FakeCuda(host_reads=True) as machine:
            trainer = _trainer(Path(root), "mlp", prefetch=False)
            machine.model = trainer.model
            summary = trainer.train_step(measure=True)
    assert set(summary) >= {"loss", "grad_norm", "lr", "token_accuracy"}
    assert set(machine.reads) == {
        "trm_core.trainer.MetricSums.read",
        "trm_core.trainer.Trainer.train_step",
        "trm_core.trainer.Trainer.check_finite",
    }, machine.reads
    assert machine.findings == []


# -- evaluation -----------------------------------------------------------------------


@on_fake_cuda
def test_the_unroll_and_early_halting_never_sync():
    """evaluate.unroll over every supervision step with the early-halting hook, for both
    mixers: answers, halt logits and the hook's counters stay on the GPU, no host sync."""
    for mixer in MIXERS:
        with _gpu_model(mixer) as (machine, model):
            batch = _batch()
            early = EarlyHalting(model.config.halt_max_steps, DEVICE)
            early.start(batch["labels"])
            prediction, halts = trm_core.unroll(model, batch, on_step=early)
            answers, steps = early.finish(prediction)
            _on_the_gpu(mixer, prediction, halts, answers, steps, early.correct_by_step)
            assert prediction.shape == batch["inputs"].shape and halts.dtype == torch.float32
            assert machine.findings == []


@on_fake_cuda
def test_an_evaluation_reads_back_once_per_batch():
    """The Trainer's final evaluation on the GPU (EMA weights, early halting, the
    rollouts strategy's report): the batches go to the GPU and the host reads only in
    the per-batch read-back of ``evaluate`` and ``evaluate_strategy``."""
    with tempfile.TemporaryDirectory() as root, FakeCuda(host_reads=True) as machine:
        trainer = _trainer(Path(root), "attention", prefetch=False)
        machine.model = trainer.model
        metrics = trainer.evaluate(final=True, publish=False)
        assert "exact_accuracy" in metrics and "early_halting/exact_accuracy" in metrics
    assert set(machine.reads) == {
        "trm_core.evaluate.evaluate",
        "trm_core.strategies.evaluate_strategy",
    }, machine.reads
    assert machine.generators and set(machine.generators) == {GPU}
    assert machine.findings == []


# -- the strategies --------------------------------------------------------------------

STRATEGIES = [
    {"name": "unroll"},
    {"name": "steps", "n": 5},
    {"name": "rollouts", "k": 3, "sigma": 1.0, "perturb": "yz"},
    {"name": "augment-vote", "augmentations": 1, "k": 3},
]


@on_fake_cuda
def test_the_strategies_answer_on_the_gpu_without_a_sync():
    """unroll, steps past halt_max_steps, noisy rollouts and augment-vote's vote over
    trajectories, for both mixers: every selection on the GPU, no host sync, the noise
    drawn from a generator made for the GPU."""
    task = tiny_task.ReverseTask()
    for mixer in MIXERS:
        for section in STRATEGIES:
            where = f"{mixer}, {section}"
            _, strategy = trm_core.make_strategy(section, tiny_task.registry())
            with _gpu_model(mixer) as (machine, model):
                answers = strategy.answer(model, task, _batch(4), seed=3)
                for selections in answers.by_budget.values():
                    _on_the_gpu(where, selections)
                assert machine.findings == [], where
                assert set(machine.generators) <= {GPU}, where
                if section["name"] == "rollouts":
                    assert machine.generators, where


@on_fake_cuda
def test_augmented_copies_are_made_on_the_host_and_answered_on_the_gpu():
    """augment-vote with augmented copies: the task's augmentations are numpy, so the
    copies are made and mapped back on the host (the only reads) and go back to the GPU."""
    task = tiny_task.ReverseTask()
    section = {"name": "augment-vote", "augmentations": 3}
    _, strategy = trm_core.make_strategy(section, tiny_task.registry())
    with _gpu_model("mlp", host_reads=True) as (machine, model):
        answers = strategy.answer(model, task, _batch(4), seed=3)
        for selections in answers.by_budget.values():
            _on_the_gpu("augment-vote", selections)
    assert set(machine.reads) == {"trm_plugin_strategies.Population.candidates"}
    assert machine.findings == []


# -- the batches ------------------------------------------------------------------------


@on_fake_cuda
def test_the_batch_feed_and_evaluation_batches_land_on_the_gpu():
    """BatchFeed's batches, made ahead (pinned, a non-blocking copy) or not (a blocking
    one), and eval_batches', are int64 tensors on the GPU."""
    task = tiny_task.ReverseTask()
    with tempfile.TemporaryDirectory() as root, FakeCuda() as machine:
        data = RunData.read(task.build_dataset({"train": 16, "test": 8}, Path(root)))
        for background in (False, True):
            machine.uploads.clear()
            sampler = TrainSampler(data.train, task, 8, augmentations=1)
            feed = BatchFeed(sampler, DEVICE, background=background)
            batch = feed.next_batch()
            feed.close()
            _on_the_gpu(f"background {background}", batch)
            assert {value.dtype for value in batch.values()} == {torch.int64}
            assert len(machine.uploads) == (0 if background else 3), machine.uploads
        assert machine.pinned >= 3  # the background feed pinned its batch's three tensors
        for _, batch in eval_batches(data.test, task, 4, DEVICE):
            _on_the_gpu("eval_batches", batch)
        assert machine.findings == []


# -- the harness catches what it should ---------------------------------------------------

INJECTED = {
    "item": lambda t: t.sum().item(),
    "bool": lambda t: bool((t > 0).any()),
    "tolist": lambda t: t.tolist(),
    "nonzero": lambda t: t.nonzero(),
    "cpu": lambda t: t.cpu(),
    "mask": lambda t: t[t > 0],
    "index": lambda t: t[t.argmax()],
}


@on_fake_cuda
def test_an_injected_host_sync_fails_the_harness():
    """Each host read put into the halting head's forward fails the model's forward."""
    for name, read in INJECTED.items():
        with _gpu_model("mlp") as (machine, model):
            head = model.halting_head.forward

            def reading(y, head=head, read=read):
                out = head(y)
                read(out["halt_logits"])
                return out

            model.halting_head.forward = reading
            batch = _batch()
            with pytest.raises(HostSync):
                model(model.initial_carry(batch), batch)
            assert len(machine.findings) == 1 and "HostSync" in machine.findings[0], name


@on_fake_cuda
def test_a_cpu_tensor_in_the_step_fails_the_harness():
    """A CPU tensor in the model (an initial state left behind), a real CPU tensor, and a
    batch left on the CPU each fail the forward; a 0-dim CPU tensor passes, as on CUDA."""
    real = torch.zeros(32)
    left_behind = {
        "fake": lambda: torch.zeros(32),  # made in the fake mode, on the CPU
        "real": lambda: real,  # made before it, a real CPU tensor
    }
    for name, make in left_behind.items():
        with _gpu_model("mlp") as (machine, model):
            y_init = model.core.y_init
            model.core.initial_state = lambda y_init=y_init, make=make: (make(), y_init)
            batch = _batch()
            with pytest.raises(WrongDevice):
                model(model.initial_carry(batch), batch)
            assert "WrongDevice" in machine.findings[0], name
    with _gpu_model("mlp") as (machine, model):
        batch = _batch(device=torch.device("cpu"))
        with pytest.raises(WrongDevice):
            model(model.initial_carry(batch), batch)
    with _gpu_model("mlp") as (machine, model):
        on_gpu = _batch()
        assert (on_gpu["inputs"] + torch.tensor(1)).device == GPU  # a CPU scalar is fine
        assert machine.findings == []


@on_fake_cuda
def test_emulated_indexing_gives_torchs_shapes():
    """The harness's ``x[...]`` and ``x[...] = v`` against torch's own on a CPU tensor; a
    CPU tensor written into a GPU one fails, an index kind it does not emulate says so."""
    real = torch.zeros(3, 4, 5)
    cases = [
        (slice(None), 1), (slice(1, None), None, 0), (Ellipsis, slice(0, 4, 2)), (-1,),
        (torch.tensor([0, 2]), slice(1, 3)), (slice(None), torch.tensor([1, 3]), 2),
        (torch.tensor([0, 1]), torch.tensor([2, 3])), (None, Ellipsis, None),
    ]  # fmt: skip
    expected = [tuple(real[index].shape) for index in cases]
    with FakeCuda() as machine:
        x = torch.zeros(3, 4, 5, device=DEVICE)
        for index, shape in zip(cases, expected, strict=True):
            gpu_index = tuple(i.to(DEVICE) if isinstance(i, Tensor) else i for i in index)
            assert tuple(x[gpu_index].shape) == shape, index
            x[gpu_index] = 1.0
            x[gpu_index] = torch.ones(shape, device=DEVICE)
        with pytest.raises(WrongDevice):
            x[0] = torch.ones(4, 5)
        assert len(machine.findings) == 1
        with pytest.raises(HarnessGap):  # not emulated: said so, not taken for a bug
            x[[0, 1]]


if __name__ == "__main__":
    _child(Path(sys.argv[1]), sys.argv[2:])
