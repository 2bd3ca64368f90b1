"""A tiny Sudoku model for the demo's tests: trained for a few steps on the CPU in seconds.

Its answers are poor (it has hardly learned), which suits the tests: they check what
the page shows, step by step, not how well the model solves.
"""

from __future__ import annotations

from pathlib import Path

from trm_core.cli import run_main

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
OTHER = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."
SETTINGS = [
    "model.dtype=float32", "model.hidden_size=32", "model.cycles=1", "model.think_steps=1",
    "model.halt_max_steps=4", "model.puzzle_emb_dim=0",
    "data.options.train.count=40", "data.options.train.givens=[66,72]",
    "data.options.test.count=8", "data.options.test.givens=[66,72]",
    "data.options.extra_tests.hard.count=4",
    "data.options.extra_tests.magictour.path=missing.txt",
    "data.augmentations=2", "train.global_batch_size=8", "train.steps=4",
    "train.lr_warmup_steps=1", "eval.interval_steps=4", "eval.batch_size=8", "eval.images=0",
]  # fmt: skip


def train(root: Path) -> Path:
    """Train the tiny model under ``root``; returns its model folder."""
    sets = [arg for setting in SETTINGS for arg in ("--set", setting)]
    sets += ["--set", f"data.cache_dir={root / 'data'}"]
    argv = ["--task", "sudoku", "--mixer", "mlp", "--preset", "cpu", "--device", "cpu"]
    assert run_main([*argv, "--out", str(root / "runs"), *sets]) == 0
    [run_dir] = (root / "runs").iterdir()
    return run_dir / "model"
