"""End to end on CPU: trm-run trains a small maze model that learns; trm-solve uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trm_core import read_split, task_data_version
from trm_core.cli import run_main
from trm_core.run import data_dir_for
from trm_core.solve import main as solve_main
from trm_plugin_maze import MazeTask

# Small mazes, a small model and few supervision steps, so that a CPU learns in seconds.
# The optimiser too is pinned: the bounds below were measured with Adam-atan2, and the
# cpu preset's Muon needs its whole 1,800 steps.
SETTINGS = [
    "model.dtype=float32",
    "model.hidden_size=32", "model.cycles=1", "model.think_steps=2", "model.halt_max_steps=2",
    "data.options.side=5", "data.augmentations=0",
    "data.options.train.count=3000", "data.options.train.min_length=4",
    "data.options.test.count=200", "data.options.test.min_length=4",
    "train.global_batch_size=64", "train.steps=300", "train.lr=3e-3", "train.lr_warmup_steps=20",
    "train.ema_rate=0.9", "train.log_interval=20", "train.optimizer=adam-atan2",
    "eval.interval_steps=150", "eval.batch_size=200", "eval.images=2",
]  # fmt: skip
# Bounds of the learning test, well inside the worst of the seeds and dtypes measured
# (see the test's docstring).
BOUNDS = {"token_accuracy_over_copying": 0.05, "valid_path_accuracy": 0.12, "loss_ratio": 0.75}
MAZE = "S...#\n.#.#.\n...#.\n#.#..\n..G.#"


def train(root: Path, *extra: str) -> Path:
    """Train the test's model under ``root`` (data in ``root/data``); returns the run folder.

    Device, dtype and preset are pinned: the figures below must not depend on the
    machine. ``extra``: more ``--set`` pairs (a seed or dtype, for the margin script).
    """
    sets = [arg for setting in SETTINGS for arg in ("--set", setting)]
    sets += ["--set", f"data.cache_dir={root / 'data'}", *extra]
    argv = ["--task", "maze", "--mixer", "mlp", "--preset", "cpu", "--device", "cpu"]
    assert run_main([*argv, "--out", str(root / "runs"), *sets]) == 0
    [run_dir] = (root / "runs").iterdir()
    return run_dir


def figures(run_dir: Path) -> dict[str, float]:
    """What the learning test checks: the final valid-path rate, the final cell accuracy
    above copying the maze, and the last train losses over the first."""
    final = json.loads((run_dir / "metrics.json").read_text())[-1]["metrics"]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    data = config["data"]
    version = task_data_version(MazeTask)
    folder = data_dir_for("maze", data["options"], data["cache_dir"], version=version)
    test = read_split(folder / "test")
    # Copying the maze and marking no path scores the share of non-path cells.
    copying = float((np.asarray(test.labels) != 5).mean())
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    loss = [s.value for s in events.Scalars("train/loss")]
    return {
        "valid_path_accuracy": final["valid_path_accuracy"],
        "token_accuracy_over_copying": final["token_accuracy"] - copying,
        "loss_ratio": float(np.mean(loss[-3:]) / np.mean(loss[:3])),
    }


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    torch.set_num_threads(2)
    return train(tmp_path_factory.mktemp("maze"))


def test_the_run_learns_paths_beyond_copying_the_maze(trained_run):
    """Figures measured with benchmarks/learning_margins.py over train.seed 0-4 on an AVX2
    CPU (bfloat16 emulated there; data, test set and all else fixed), and the bound:

    | figure | float32 | bfloat16 | bound |
    | --- | --- | --- | --- |
    | token_accuracy_over_copying | 0.098-0.132 | 0.095-0.129 | > 0.05 |
    | valid_path_accuracy | 0.270-0.515 | 0.240-0.505 | > 0.12 |
    | loss_ratio | 0.529-0.598 | 0.532-0.603 | < 0.75 |
    """
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert config["task"] == "maze" and config["model"]["seq_len"] == 25
    assert config["model"]["dtype"] == "float32" and config["device"] == "cpu"
    found = figures(trained_run)
    assert found["token_accuracy_over_copying"] > BOUNDS["token_accuracy_over_copying"], found
    assert found["valid_path_accuracy"] > BOUNDS["valid_path_accuracy"], found
    assert found["loss_ratio"] < BOUNDS["loss_ratio"], found
    events = EventAccumulator(str(trained_run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert "eval/puzzle_0" in events.Tags()["images"]


def test_trm_solve_answers_and_checks_a_typed_maze(trained_run, tmp_path, capsys):
    path = tmp_path / "mazes.txt"
    path.write_text(f"{MAZE}\n\n{MAZE.replace('.', ' ')}\n")
    assert solve_main(["--run", str(trained_run), str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}, maze 1 (line 1):" in out and f"{path}, maze 2 (line 7):" in out
    assert ("the answer is valid" in out) or ("the answer is not valid" in out)
    assert "of 2 answers valid" in out
    path.write_text("S..\n.G.\n...\n")
    assert solve_main(["--run", str(trained_run), str(path)]) == 2
    assert "maze 1 (line 1): a 3x3 maze, but this task's mazes are 5x5" in capsys.readouterr().err
