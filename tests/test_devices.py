"""Devices: what ``auto`` picks on each kind of machine (capabilities mocked), one-line
errors for devices that are not there, bfloat16 training, and a training step that
never waits for the device."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

import trm_core
import trm_core.devices as devices
from trm_core.bench import main as bench_main
from trm_core.cli import eval_main, run_main
from trm_core.config import build_run_config
from trm_core.devices import DeviceError
from trm_core.distributed import World
from trm_core.layers import ReasoningNet
from trm_core.run import device_setting
from trm_core.solve import main as solve_main
from trm_core.trainer import Trainer

from . import tiny_task


def _machine(patch: pytest.MonkeyPatch, *, gpus: int = 0, bf16: bool = False) -> None:
    """Pretend this machine has ``gpus`` CUDA GPUs (with or without bfloat16) and a CPU
    with or without native bfloat16 (AVX-512-BF16 / AMX)."""
    patch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    patch.setattr(torch.cuda, "device_count", lambda: gpus)
    patch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    patch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: bf16)


# -- what auto means ----------------------------------------------------------------


@pytest.mark.parametrize("gpus,expected", [(0, "cpu"), (1, "cuda"), (8, "cuda")])
def test_auto_device_is_cuda_when_a_gpu_is_visible(machine, gpus, expected):
    _machine(machine, gpus=gpus)
    assert devices.auto_device().type == expected
    assert devices.resolve_device("auto").type == expected
    assert devices.resolve_device(None).type == expected


KINDS = [  # (what the machine is, device, native bfloat16, the dtype auto picks)
    ("AVX2-only CPU (bfloat16 emulated)", "cpu", False, "float32"),
    ("CPU with AVX-512-BF16 or AMX", "cpu", True, "bfloat16"),
    ("CUDA GPU with bfloat16 (Ampere, Hopper)", "cuda", True, "bfloat16"),
    ("CUDA GPU without bfloat16 (Volta, Turing)", "cuda", False, "float32"),
]


@pytest.mark.parametrize("kind,device,native,expected", KINDS, ids=[k[0] for k in KINDS])
def test_auto_dtype_is_bfloat16_exactly_where_it_is_native(machine, kind, device, native, expected):
    _machine(machine, gpus=1 if device == "cuda" else 0, bf16=native)
    assert devices.auto_dtype(torch.device(device)) == expected
    assert devices.resolve_dtype("auto", device) == expected
    assert devices.resolve_dtype("float32", device) == "float32"  # a named dtype stays


def test_auto_dtype_is_float32_on_a_torch_without_onednn_and_on_mps(machine):
    def missing():
        raise RuntimeError("no oneDNN in this build")

    machine.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
    assert devices.auto_dtype(torch.device("cpu")) == "float32"
    assert devices.auto_dtype(torch.device("mps")) == "float32"


def test_prefetch_is_on_for_cuda_only_and_compile_for_cuda_and_bfloat16_cpus(machine):
    for device, expected in (("cuda", True), ("cuda:1", True), ("cpu", False), ("mps", False)):
        assert devices.auto_prefetch(torch.device(device)) is expected
    machine.setattr(devices, "cpu_compiler", lambda: "g++")
    for device, dtype, expected in (
        ("cuda", "float32", True), ("cuda:1", "bfloat16", True), ("cpu", "bfloat16", True),
        ("cpu", "float32", False), ("mps", "float32", False),
    ):  # fmt: skip
        assert devices.auto_compile(torch.device(device), dtype) is expected, (device, dtype)
    machine.setattr(devices, "cpu_compiler", lambda: None)  # no C++ compiler: eager
    assert devices.auto_compile(torch.device("cpu"), "bfloat16") is False
    assert devices.auto_compile(torch.device("cuda"), "bfloat16") is True


#: The real lookup (imported before the suite's session answers "none" for it).
REAL_CPU_COMPILER = devices.cpu_compiler


def test_cpu_compiler_is_none_where_torch_finds_none(machine):
    import torch._inductor.cpp_builder as cpp_builder

    def missing():
        raise RuntimeError("no working C++ compiler")

    machine.setattr(cpp_builder, "get_cpp_compiler", missing)
    assert REAL_CPU_COMPILER() is None
    machine.setattr(cpp_builder, "get_cpp_compiler", lambda: "clang++")
    assert REAL_CPU_COMPILER() == "clang++"


def _trainer(tmp_path: Path, device: str = "cpu", **sections) -> Trainer:
    """A trainer of the tiny task on ``device``, its cpu preset updated by ``sections``."""
    task = tiny_task.ReverseTask()
    data_dir = Path(task.build_dataset(tiny_task.PRESET["data"]["options"], tmp_path / "data"))
    world = World(device=torch.device(device))
    return Trainer(tiny_task.run_config(**sections), task, data_dir, world, None,
                   tiny_task.registry())  # fmt: skip


def test_the_trainer_applies_the_rules_and_the_settings(tmp_path, machine):
    trainer = _trainer(tmp_path)
    assert not trainer.compiled and not trainer.batches.background  # unset on a CPU: off
    # In bfloat16 on a CPU with a C++ compiler, unset compile means compiled.
    machine.setattr(devices, "cpu_compiler", lambda: "g++")
    trainer = _trainer(tmp_path, model={"dtype": "bfloat16"})
    assert trainer.compiled
    nets = [m for m in trainer.model.modules() if isinstance(m, ReasoningNet)]
    assert nets and all(net.compiled is not None for net in nets)  # the nets, not the model
    assert trainer.forward_model is trainer.model
    trainer = _trainer(tmp_path, train={"compile": False, "prefetch": True})
    assert not trainer.compiled and trainer.batches.background


def test_a_compiled_training_step_matches_the_eager_one_and_evaluation_stays_eager(tmp_path):
    """train.compile=true compiles the core's nets (trm_core.layers.compile_for_training):
    the same losses to rounding, and ``model.eval()`` never calls the compiled code."""
    if REAL_CPU_COMPILER() is None:
        pytest.skip("no C++ compiler for torch.compile's CPU kernels")
    eager = _trainer(tmp_path / "eager", train={"compile": False})
    compiled = _trainer(tmp_path / "compiled", train={"compile": True})
    for _ in range(3):
        a, b = eager.train_step(measure=True), compiled.train_step(measure=True)
        assert math.isclose(a["lm_loss"], b["lm_loss"], rel_tol=1e-4), (a, b)
    calls = []
    for net in compiled.model.modules():
        if isinstance(net, ReasoningNet):
            net.compiled = lambda *args, _net=net: calls.append(1) or _net.run_blocks(*args)
    batch = compiled.feeds[0].next_batch()
    compiled.model.train()
    compiled.model(compiled.model.initial_carry(batch), batch)
    assert calls  # the stand-in is what training calls
    calls.clear()
    compiled.model.eval()
    with torch.no_grad():
        compiled.model(compiled.model.initial_carry(batch), batch)
    assert not calls


def test_the_default_preset_follows_the_run_device_not_the_machine(machine, reverse, capsys):
    _machine(machine, gpus=1, bf16=True)  # a GPU machine; the run asks for the CPU
    argv = ["--task", "reverse", "--out", str(reverse), "--set", "train.steps=1"]
    assert run_main([*argv, "--device", "cpu"]) == 0
    assert "preset cpu (the default off CUDA); device cpu" in capsys.readouterr().out
    assert device_setting(None, ["train.lr=1", "device=cuda:1"]) == "cuda:1"
    assert device_setting(None, ["device=cuda:1", "device=cpu"]) == "cpu"  # the last --set
    assert device_setting("cpu", ["device=cuda:1"]) == "cpu"  # --device wins


# -- devices that are not there -----------------------------------------------------


def test_device_errors_name_the_devices_that_exist(machine):
    _machine(machine, gpus=0)
    with pytest.raises(DeviceError, match=r"device 'cuda': CUDA is not available on this "
                       r"machine; devices here: cpu$"):  # fmt: skip
        devices.resolve_device("cuda")
    with pytest.raises(DeviceError, match=r"device 'bogus' is not a device; use one of auto, "
                       r"cpu, cuda, cuda:N, mps \(this machine has cpu\)"):  # fmt: skip
        devices.resolve_device("bogus")
    _machine(machine, gpus=2)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"'cuda:2': there is no such GPU; devices here: "
                       r"cpu, cuda:0, cuda:1"):  # fmt: skip
        devices.resolve_device("cuda:2")
    with pytest.raises(trm_core.ConfigError, match="device 'tpu' is not a device"):
        build_run_config({"task": "t", "device": "tpu", "model": {"vocab_size": 3, "seq_len": 2}})


def _one_line(err: str, *parts: str) -> None:
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err
    for part in parts:
        assert part in err, (part, err)


@pytest.fixture
def trained(reverse) -> Path:
    """A one-step run of the tiny task, on the CPU."""
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(reverse)]
    assert run_main([*argv, "--set", "train.steps=1"]) == 0
    [run] = reverse.iterdir()
    return run


def test_every_command_refuses_a_missing_device_in_one_line(machine, trained, capsys):
    _machine(machine, gpus=0)
    capsys.readouterr()
    runs = trained.parent
    argv = ["--task", "reverse", "--preset", "cpu", "--out", str(runs)]
    for command, args in [
        (run_main, [*argv, "--device", "cuda"]),
        (eval_main, ["--run", str(trained), "--device", "cuda"]),
        (solve_main, ["--run", str(trained), "--device", "cuda", "01234012"]),
        (bench_main, ["--task", "sudoku", "--device", "cuda"]),
    ]:
        assert command(args) == 2, command
        _one_line(capsys.readouterr().err, "CUDA is not available", "devices here: cpu")
    for args in ([*argv, "--device", "bogus"], [*argv, "--set", "device=tpu"]):
        assert run_main(args) == 2
        _one_line(capsys.readouterr().err, "is not a device", "auto, cpu, cuda, cuda:N, mps")
    assert [p.name for p in runs.iterdir()] == [trained.name]  # no run folder was started


# -- bfloat16 and float32 training steps --------------------------------------------


@pytest.mark.device
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_training_steps_run_and_stay_finite(tmp_path, device, dtype):
    """A few training steps in each forward dtype (bfloat16 is emulated, slowly, on AVX2
    CPUs, so the model is tiny): the loss, the weights and the carry stay finite."""
    trainer = _trainer(tmp_path, device, model={"dtype": dtype}, train={"lr_warmup_steps": 1})
    summaries = [trainer.train_step(measure=True) for _ in range(4)]
    assert trainer.model.config.dtype == dtype and trainer.carry.y.dtype == getattr(torch, dtype)
    assert all(math.isfinite(s["loss"]) and math.isfinite(s["grad_norm"]) for s in summaries)
    assert summaries[-1]["grad_norm"] > 0
    for name, value in trainer.model.state_dict().items():
        assert torch.isfinite(value).all(), name
    assert torch.isfinite(trainer.carry.y.float()).all() and torch.isfinite(trainer.carry.z).all()


# -- no host sync inside a training step --------------------------------------------

#: Operations that make the host wait for the device (or read a tensor's values).
SYNCS = {
    "item", "tolist", "cpu", "numpy", "nonzero", "argwhere", "unique", "unique_consecutive",
    "masked_select", "__bool__", "__int__", "__float__", "__index__", "allclose", "equal",
}  # fmt: skip


class SyncCounter(TorchFunctionMode):
    """Records every operation of this thread that would read a tensor back to the host:
    the ones in SYNCS, indexing with a boolean mask, and copies to the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        masks = [a for a in args[1:2] for a in (a if isinstance(a, tuple) else (a,))]
        if name in SYNCS or (
            name in ("__getitem__", "__setitem__")
            and any(isinstance(m, torch.Tensor) and m.dtype == torch.bool for m in masks)
        ):
            self.found.append(name)
        to_cpu = any(str(a).startswith("cpu") for a in [*args[1:], *kwargs.values()])
        if name == "to" and to_cpu and args[0].device.type != "cpu":
            self.found.append("to(cpu)")
        return func(*args, **kwargs)


@pytest.mark.device
def test_a_training_step_never_waits_for_the_device(tmp_path, device):
    """Between log steps the host queues work and never reads a value back (on CUDA no
    ``.item()``, no boolean-mask indexing, no ``torch.unique``...); batches are made on the
    worker thread. A log step reads the metrics, the gradient norm and the finiteness flag."""
    trainer = _trainer(tmp_path, device, train={"prefetch": True})  # sampler on its thread
    trainer.train_step()  # the first step makes the carry
    with SyncCounter() as counter:
        for _ in range(3):  # slots halt and restart in these steps (halt_max_steps 2)
            trainer.train_step(measure=False)
    assert counter.found == []
    with SyncCounter() as counter:
        trainer.train_step(measure=True)
    assert {"tolist", "__float__", "__int__"} <= set(counter.found)  # the counter sees reads
    trainer.batches.close()
