"""ARC files the tests write: small challenges and solutions files, as ARC Prize names them."""

from __future__ import annotations

import json

import numpy as np
import pytest


def arc_task(seed: int, tests: int = 1) -> dict:
    """One task: 3 demonstrations and ``tests`` test pairs of small random grids (the
    answer is the input transposed)."""
    rng = np.random.default_rng(seed)

    def pair():
        grid = rng.integers(0, 4, size=(int(rng.integers(1, 6)), int(rng.integers(1, 6))))
        return {"input": grid.tolist(), "output": grid.T.tolist()}

    return {"train": [pair() for _ in range(3)], "test": [pair() for _ in range(tests)]}


@pytest.fixture
def make_task():
    """``make_task(seed, tests=1)``: one task as :func:`arc_task` makes it."""
    return arc_task


@pytest.fixture
def files(tmp_path):
    """A training set of 3 tasks and an evaluation set of 2 (one with 2 test inputs),
    each ``X_challenges.json`` with its ``X_solutions.json``."""
    sets = {"train": {f"tr{i}": arc_task(i) for i in range(3)},
            "eval": {"ev0": arc_task(10), "ev1": arc_task(11, tests=2)}}  # fmt: skip
    for name, tasks in sets.items():
        solutions = {k: [p.pop("output") for p in t["test"]] for k, t in tasks.items()}
        (tmp_path / f"{name}_challenges.json").write_text(json.dumps(tasks))
        (tmp_path / f"{name}_solutions.json").write_text(json.dumps(solutions))
    return tmp_path
