"""The small Task: five required members; everything else optional, checked for.

A task that implements only what the engine cannot do without trains, evaluates
and gets default renderings; what it lacks is refused with a message naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import trm_core
from trm_core import Task, hookimpl, write_split
from trm_core.cli import eval_main, run_main
from trm_core.solve import main as solve_main

from . import tiny_task


class CopyTask(Task):
    """Input: 6 digits; answer: the same digits. Only the required members."""

    vocab_size = 6
    grid_shape = (2, 3)

    def presets(self) -> dict[str, dict[str, Any]]:
        preset = trm_core.config.merge({}, tiny_task.PRESET)
        preset.pop("by_mixer")
        preset["data"] = {"options": {"count": 64}, "augmentations": 0}
        return {"cpu": preset}

    def build_dataset(self, options, out_dir: Path) -> Path:
        def build(folder: Path) -> dict:
            rng = np.random.default_rng(0)
            for split in ("train", "test"):
                inputs = rng.integers(1, 6, size=(options["count"], 6))
                write_split(folder / split, inputs, inputs, task="copy")
            return {"count": options["count"]}

        return trm_core.build_once(out_dir, build, what="the copy data set")

    def metrics(self, inputs, labels, predictions):
        return {}


@hookimpl
def register_tasks(register):
    register("copy", CopyTask)


@pytest.fixture
def copy_task(trm_registry, tmp_path, monkeypatch):
    trm_registry.add_plugin(sys.modules[__name__], distribution="tests")
    monkeypatch.setenv("TRM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "runs"


def test_capabilities_are_what_the_class_defines():
    assert not any(CopyTask.supports(name) for name in trm_core.CAPABILITIES)
    assert all(tiny_task.ReverseTask.supports(name) for name in trm_core.CAPABILITIES)
    with pytest.raises(ValueError, match="unknown task capability 'render'"):
        CopyTask.supports("render")
    with pytest.raises(NotImplementedError, match="CopyTask does not implement Task.augment"):
        CopyTask().augment(np.zeros(6), np.zeros(6), seed=1)


def test_default_renderings():
    task = CopyTask()
    tokens = np.array([1, 2, 3, 4, 5, 1])
    assert task.render_text(tokens) == "1 2 3\n4 5 1"
    wrong = tokens.copy()
    wrong[0] = 2
    image = task.render_image(tokens, wrong, tokens)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] >= 2 and image.shape[1] > 3 * 3
    assert (image == (220, 40, 40)).all(-1).any()  # the wrong cell is marked


def test_a_task_with_only_the_required_members_trains_and_evaluates(copy_task, capsys):
    argv = ["--task", "copy", "--device", "cpu", "--out", str(copy_task)]
    assert run_main([*argv, "--preset", "cpu", "--max-steps", "3"]) == 0
    [run] = list(copy_task.iterdir())
    assert eval_main(["--run", str(run), "--device", "cpu", "--json"]) == 0
    capsys.readouterr()

    # No parse_puzzle: trm-solve says so in one line.
    assert solve_main(["--run", str(run), "123451"]) == 2
    assert "this task cannot read puzzles: CopyTask implements neither" in capsys.readouterr().err

    # No augment: asking for augmentations is refused before training.
    assert run_main([*argv, "--preset", "cpu", "--set", "data.augmentations=2"]) == 2
    error = capsys.readouterr().err
    assert "data.augmentations is 2, but the task 'copy' has no augmentations" in error
