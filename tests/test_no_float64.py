"""Devices without float64 (Apple's MPS): the stablemax loss and the trainer's metric
sums run in float32 there, and nothing on the training path asks for float64. The
path is forced on the CPU by declaring the CPU one of those devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import trm_core.devices as devices
from trm_core.distributed import World
from trm_core.losses import act_loss, stablemax_cross_entropy
from trm_core.trainer import Trainer

from . import tiny_task


class Float64Seen(TorchDispatchMode):
    """Records every op that makes a float64 tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outputs = out if isinstance(out, tuple | list) else [out]
        if any(isinstance(t, torch.Tensor) and t.dtype == torch.float64 for t in outputs):
            self.ops.append(str(func))
        return out


@pytest.fixture
def no_float64(monkeypatch):
    """The CPU treated as a device without float64, as MPS is."""
    monkeypatch.setattr(devices, "NO_FLOAT64", {"mps", "cpu"})


def test_wide_float_is_float32_only_where_float64_is_missing(no_float64):
    assert devices.wide_float("cpu") == torch.float32
    assert devices.wide_float(torch.device("mps")) == torch.float32
    assert devices.wide_float("cuda") == devices.wide_float("meta") == torch.float64


def test_the_stablemax_loss_in_float32_stays_close_to_float64():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 9, 11) * 3, torch.randint(0, 11, (4, 9))
    wide = stablemax_cross_entropy(logits, labels)
    assert wide.dtype == torch.float64
    devices.NO_FLOAT64.add("cpu")
    try:
        narrow = stablemax_cross_entropy(logits, labels)
    finally:
        devices.NO_FLOAT64.discard("cpu")
    assert narrow.dtype == torch.float32
    torch.testing.assert_close(narrow.double(), wide, rtol=1e-5, atol=1e-5)


def _trainer(tmp_path: Path) -> Trainer:
    task = tiny_task.ReverseTask()
    data_dir = Path(task.build_dataset(tiny_task.PRESET["data"]["options"], tmp_path / "data"))
    config = tiny_task.run_config(model={"dtype": "float32"})
    return Trainer(config, task, data_dir, World(device=torch.device("cpu")), None,
                   tiny_task.registry())  # fmt: skip


def test_training_steps_make_no_float64_tensor_on_such_a_device(tmp_path, no_float64):
    trainer = _trainer(tmp_path)
    trainer.train_step()  # the first batch and carry, outside the check
    seen = Float64Seen()
    with seen:
        trainer.train_step()
        summary = trainer.train_step(measure=True)
    assert seen.ops == [], sorted(set(seen.ops))
    assert summary["loss"] > 0 and all(map(torch.isfinite, map(torch.tensor, summary.values())))
    assert trainer.sums.totals is None and trainer._bad_loss.dtype == torch.float32


def test_the_check_sees_float64_where_the_device_has_it(tmp_path):
    """The same steps on a device with float64 do make it (the check can fail)."""
    trainer = _trainer(tmp_path)
    trainer.train_step()
    seen = Float64Seen()
    with seen:
        trainer.train_step()
    assert seen.ops


def test_act_loss_counters_follow_the_device(no_float64):
    torch.manual_seed(0)
    out = {"logits": torch.randn(2, 5, 7), "halt_logits": torch.randn(2)}
    labels, halted = torch.randint(0, 7, (2, 5)), torch.tensor([True, False])
    total, metrics = act_loss(out, labels, halted, torch.tensor([1, 2]))
    assert total.dtype == torch.float32 and metrics["lm_loss"].dtype == torch.float32
