"""Generator options that cannot give the count asked for end in seconds, in one line.

Every task's generator (Sudoku, Maze, the Life example) meets options it cannot
satisfy: too few distinct puzzles for the count (train and test together, the
test puzzles being new), lengths or givens out of reach for the size, a kind of
puzzle the generator never makes, counts too large to hold. ``trm-run`` must
refuse each within seconds: exit code 2, one ``error:`` line naming the options
to change, no traceback, no data folder or half-built folder left in the cache,
no worker process left running. Hypothesis draws small option combinations
near those limits: each either builds exactly the puzzles asked for, all
distinct and the test ones new, or is refused in one line, in time.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trm_task_life import LifeTask

from trm_core import read_split
from trm_core.cli import guarded, run_main
from trm_plugin_maze import MazeTask
from trm_plugin_maze.augment import canonical
from trm_plugin_maze.generate import longest_path
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.generate import signature
from trm_plugin_sudoku.grid import to_digits

#: Every refusal must come within this (measured: well under 10 s on 2 shared cores).
LIMIT_S = 20.0
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_args(tmp_path: Path, task: str, *sets: str) -> list[str]:
    """trm-run of ``task`` on the CPU with ``sets`` (each a --set), data and runs in tmp
    (one step at most, should a case build after all)."""
    argv = ["--task", task, "--device", "cpu", "--out", str(tmp_path / "runs"), "--max-steps", "1"]
    for setting in ("model.dtype=float32", f"data.cache_dir={tmp_path / 'data'}", *sets):
        argv += ["--set", setting]
    return argv


def nothing_left(cache: Path) -> None:
    """No data folder, no half-built one (only build_once's lock file may stay), and no
    worker process of the generator still running."""
    left = (
        [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] if cache.exists() else []
    )
    assert not left, f"left in the cache: {left}"
    assert not multiprocessing.active_children(), multiprocessing.active_children()


def maze(*sets: str) -> list[str]:
    """Maze settings: the cpu preset's test split (min_length 6) made small and easy."""
    return ["data.options.test.count=5", "data.options.test.min_length=2", *sets]


# Each case: (task, settings, fragments the error line must hold). The settings are
# impossible (or, where marked, out of reach in practice) for the generator.
CASES = [
    # Maze: too few distinct mazes for the count.
    ("maze", maze("data.options.side=3", "data.options.train.min_length=2",
                  "data.options.train.count=1000"),
     ["data.options.train.count=1000", "data.options.side", "179 distinct mazes",
      "data.options.train.min_length"]),
    ("maze", ["data.options.side=3", "data.options.train.min_length=2",
              "data.options.train.count=170", "data.options.test.min_length=2",
              "data.options.test.count=20"],
     ["data.options.test.count=20", "data.options.train.count", "besides the 170 training"]),
    ("maze", maze("data.options.side=4", "data.options.train.min_length=4",
                  "data.options.train.count=30000"),
     ["data.options.train.count=30000", "data.options.side", "data.options.train.min_length"]),
    ("maze", maze("data.options.side=4", "data.options.train.min_length=4",
                  "data.options.train.count=100000000"),
     ["data.options.train.count=100000000", "data.options.side"]),
    ("maze", maze("data.options.side=5", "data.options.train.wall_probability=[0, 0]",
                  "data.options.train.min_length=5", "data.options.train.count=50"),
     ["data.options.train.count=50", "data.options.train.min_length=5"]),
    # Maze: a min_length no maze of the side reaches (up front, or found in 64 batches).
    ("maze", maze("data.options.side=5", "data.options.train.min_length=16"),
     ["data.options.train.min_length 16", "side 5 (data.options.side)", "longer than 16 moves",
      "at most 15"]),
    ("maze", maze("data.options.side=5", "data.options.train.min_length=null"),
     ["data.options.train.min_length (default 19 for side 5)", "at most 15"]),
    ("maze", maze("data.options.side=3", "data.options.train.min_length=100"),
     ["data.options.train.min_length 100", "side 3 (data.options.side)"]),
    ("maze", maze("data.options.side=5", "data.options.train.wall_probability=[0, 0]",
                  "data.options.train.min_length=8"),
     ["data.options.train.min_length 8", "data.options.train.wall_probability", "no walls"]),
    ("maze", maze("data.options.side=6", "data.options.train.min_length=22"),
     ["data.options.train.min_length=22", "data.options.side", "out of reach"]),
    ("maze", maze("data.options.side=64", "data.options.train.min_length=2000",
                  "data.options.train.count=1"),
     ["data.options.train.min_length=2000", "data.options.side"]),
    ("maze", maze("data.options.side=5", "data.options.train.min_length=15",
                  "data.options.train.count=3", "data.options.train.wall_probability=[0.9, 0.95]"),
     ["data.options.train.min_length=15"]),
    # Maze: counts out of reach in practice, or too large to hold.
    ("maze", maze("data.options.side=11", "data.options.train.min_length=41",
                  "data.options.train.count=100000"),
     ["data.options.train.count=100000", "candidates"]),
    ("maze", maze("data.options.side=30", "data.options.train.count=1000000000"),
     ["data.options.train.count=1000000000", "data.options.side", "GiB"]),
    ("maze", maze("data.options.side=64", "data.options.train.count=10**30"),
     ["data.options.train.count", "data.options.side"]),
    # Sudoku: more puzzles than can be told apart with that many givens.
    ("sudoku", ["data.options.train={count: 2, givens: [81, 81], minimal: false}"],
     ["data.options.train.count=2", "data.options.train.givens=[81, 81]", "at most 1 can"]),
    ("sudoku", ["data.options.train={count: 20, givens: [79, 81], minimal: false}",
                "data.options.test={count: 10, givens: [79, 81], minimal: false}"],
     ["data.options.train.count=20 + data.options.test.count=10", "at most 26 can",
      "data.options.test.givens"]),
    ("sudoku", ["data.options.train={count: 100, givens: [78, 81], minimal: false}"],
     ["data.options.train.count=100", "data.options.train.givens=[78, 81]"]),
    ("sudoku", ["data.options.train={count: 1000, givens: [76, 81], minimal: false}"],
     ["data.options.train.count=1000", "data.options.train.givens=[76, 81]"]),
    ("sudoku", ["data.options.train={count: 5, givens: [40, 45], minimal: false}",
                "data.options.test={count: 100, givens: [78, 79], minimal: false}"],
     ["data.options.test.count=100", "data.options.test.givens=[78, 79]"]),
    ("sudoku", ["data.options.train={count: 3, givens: [40, 45], minimal: false}",
                "data.options.test={count: 3, givens: [40, 45], minimal: false}",
                "data.options.extra_tests={far: {count: 600, givens: [77, 80], minimal: false}}"],
     ["data.options.extra_tests.far.count=600", "data.options.extra_tests.far.givens"]),
    # Sudoku: a kind of puzzle this generator does not reach.
    ("sudoku", ["data.options.train={count: 10, givens: [35, 40], minimal: true}"],
     ["data.options.train", "givens=[35, 40]", "minimal=true", "200 tries",
      "data.options.train.minimal=false"]),
    ("sudoku", ["data.options.train={count: 10, givens: [55, 60], minimal: false, "
                "min_guesses: 1}"],
     ["data.options.train", "min_guesses=1", "lower data.options.train.min_guesses"]),
    # Sudoku: counts no generator run gives.
    ("sudoku", ["data.options.train.count=1000000000000"],
     ["data.options.train.count=1000000000000", "1,048,576"]),
    ("sudoku", ["data.options.train={count: 1000000}"],  # minimal: 1 try in 5 succeeds
     ["data.options.train.count=1000000", "tries"]),
    # Life: boards are drawn independently (repeats allowed), but all at once.
    ("life", ["data.options.train_count=10**22"],
     ["data.options.train_count=10000000000000000000000", "data.options.test_count", "cells"]),
    ("life", ["data.options.side=32", "data.options.train_count=300000"],
     ["data.options.train_count=300000", "data.options.side", "cells"]),
    ("life", ["data.options.side=3", "data.options.test_count=40000000"],
     ["data.options.test_count=40000000", "268,435,456"]),
]  # fmt: skip


def _setting(value: str) -> str:
    """``10**N`` in a case stands for the integer (easier to read)."""
    key, _, right = value.partition("=")
    if right.startswith("10**"):
        return f"{key}={10 ** int(right[4:])}"
    return value


@pytest.mark.parametrize(
    ("task", "sets", "fragments"), CASES, ids=[f"{c[0]}:{' '.join(c[1])}"[:90] for c in CASES]
)
def test_an_impossible_count_is_refused_in_seconds(refused, tmp_path, task, sets, fragments):
    argv = run_args(tmp_path, task, *(_setting(s) for s in sets))
    started = time.monotonic()
    refused(run_main, argv, *fragments)
    took = time.monotonic() - started
    assert took < LIMIT_S, f"refused after {took:.1f}s"
    nothing_left(tmp_path / "data")


def test_a_refused_build_stops_its_workers(refused, tmp_path):
    """Refusals that come while worker processes generate (Maze's batches, Sudoku's
    rounds after the pilot) stop every worker before the error line."""
    started = time.monotonic()
    crowded = maze(
        "data.options.side=4", "data.options.train.min_length=4",
        "data.options.train.count=30000", "data.options.seed=3",
    )  # fmt: skip
    refused(run_main, run_args(tmp_path, "maze", *crowded), "data.options.train.count")
    nothing_left(tmp_path / "data")
    few = "data.options.train={count: 2000, givens: [77, 81], minimal: false}"
    refused(run_main, run_args(tmp_path, "sudoku", few), "data.options.train.count=2000")
    nothing_left(tmp_path / "data")
    assert time.monotonic() - started < 2 * LIMIT_S


# -- borderline combinations, drawn ---------------------------------------------------------


def _build(task, options: dict, out: Path) -> tuple[int, str]:
    """Build through the commands' error handling: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = guarded(lambda: task.build_dataset(options, out) and 0)
    return code, err.getvalue()


def _refused_or_built(code: int, err: str, cache: Path, took: float) -> bool:
    """True when built; a refusal must be one error line naming a data option, in time."""
    assert "Traceback" not in err, err
    assert took < LIMIT_S, f"took {took:.1f}s"
    if code == 0:
        return True
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines[-1].startswith("error: data.options."), err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    nothing_left(cache)
    return False


@FEW
@given(
    side=st.sampled_from([3, 4]),
    min_length=st.integers(1, 10),
    walls=st.sampled_from([[0.3, 0.5], [0, 0], [0.1, 0.9]]),
    train=st.integers(1, 400),
    test=st.integers(1, 120),
    seed=st.integers(0, 3),
)
def test_drawn_maze_options_build_exactly_or_are_refused(
    tmp_path_factory, side, min_length, walls, train, test, seed
):
    cache = tmp_path_factory.mktemp("maze")
    split = {"min_length": min_length, "wall_probability": walls}
    options = {"seed": seed, "side": side, "train": {**split, "count": train},
               "test": {**split, "count": test}}  # fmt: skip
    started = time.monotonic()
    code, err = _build(MazeTask(), options, cache / "data")
    if not _refused_or_built(code, err, cache, time.monotonic() - started):
        if min_length >= longest_path(side, walls[1]):
            assert "min_length" in err
        return
    keys = {}
    for name, count in (("train", train), ("test", test)):
        inputs = np.asarray(read_split(cache / "data" / name).inputs)
        assert len(inputs) == count
        keys[name] = set(canonical(inputs))
        assert len(keys[name]) == count  # distinct under the 8 transforms
    assert not keys["train"] & keys["test"]


@FEW
@given(
    low=st.integers(74, 81),
    span=st.integers(0, 7),
    train=st.integers(1, 60),
    test=st.integers(1, 40),
    min_guesses=st.sampled_from([0, 0, 1]),
    seed=st.integers(0, 3),
)
def test_drawn_sudoku_options_build_exactly_or_are_refused(
    tmp_path_factory, low, span, train, test, min_guesses, seed
):
    cache = tmp_path_factory.mktemp("sudoku")
    split = {"givens": [low, min(81, low + span)], "minimal": False, "min_guesses": min_guesses}
    options = {"seed": seed, "train": {**split, "count": train}, "test": {**split, "count": test}}
    started = time.monotonic()
    code, err = _build(SudokuTask(), options, cache / "data")
    if not _refused_or_built(code, err, cache, time.monotonic() - started):
        return
    signatures = {}
    for name, count in (("train", train), ("test", test)):
        puzzles = to_digits(read_split(cache / "data" / name).inputs)
        assert len(puzzles) == count
        signatures[name] = {signature(p) for p in puzzles}
        assert len(signatures[name]) == count
    assert not signatures["train"] & signatures["test"]


@FEW
@given(
    side=st.integers(3, 6),
    train=st.one_of(st.integers(1, 3000), st.integers(2**28 // 9, 10**24)),
    test=st.integers(1, 500),
    seed=st.integers(0, 3),
)
def test_drawn_life_options_build_exactly_or_are_refused(tmp_path_factory, side, train, test, seed):
    cache = tmp_path_factory.mktemp("life")
    options = {"seed": seed, "side": side, "train_count": train, "test_count": test}
    started = time.monotonic()
    code, err = _build(LifeTask(), options, cache / "data")
    if not _refused_or_built(code, err, cache, time.monotonic() - started):
        assert "data.options.train_count" in err
        return
    for name, count in (("train", train), ("test", test)):  # repeats allowed: drawn freely
        assert len(read_split(cache / "data" / name).inputs) == count
