"""The generator's limits: the longest shortest path, too few distinct mazes, the stream kept."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from trm_core import ConfigError
from trm_plugin_maze import MazeTask
from trm_plugin_maze.augment import canonical
from trm_plugin_maze.generate import (
    BATCH,
    MazeSpec,
    Shortfall,
    Supply,
    generate,
    generate_distinct,
    longest_path,
)


def longest_induced_path(side: int) -> int:
    """The most cells of a path of the side x side grid that never touches itself
    (every shortest path is one), by exhaustive search."""
    cells = side * side
    neighbours = [
        [r * side + c for r, c in ((i // side + dr, i % side + dc)
                                   for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)))
         if 0 <= r < side and 0 <= c < side]
        for i in range(cells)
    ]  # fmt: skip
    closed = [sum(1 << j for j in neighbours[i]) | 1 << i for i in range(cells)]
    best = 0

    def grow(end: int, length: int, barred: int) -> None:
        nonlocal best
        best = max(best, length)
        free = ((1 << cells) - 1) & ~(barred | closed[end])
        if length + 1 + bin(free).count("1") <= best:
            return
        for cell in neighbours[end]:
            if not barred >> cell & 1:
                grow(cell, length + 1, barred | closed[end] & ~(1 << cell) | 1 << end)

    for start in range(cells):
        grow(start, 1, 0)
    return best


@pytest.mark.parametrize("side", [3, 4, 5])
def test_the_longest_path_is_exact_for_small_sides(side):
    assert longest_path(side) == longest_induced_path(side) - 1


def test_the_bound_holds_beyond_the_table_and_without_walls():
    for side in range(3, 65):
        assert longest_path(side) <= side * side - (side // 2) ** 2 - 1
        assert longest_path(side, 0.0) == 2 * (side - 1)
    lengths = generate(MazeSpec(side=4, min_length=9), 20, seed=1, workers=1)[2]
    assert (lengths == longest_path(4)).all()  # the longest paths exist, and no longer one


def _old_generated(spec, wanted, seed, avoid):
    """The data set's loop before the generator watched its supply: ask for more and
    filter the whole stream again until enough distinct mazes are left."""
    asked = wanted
    while True:
        puzzles, labels, lengths, tried = generate(spec, asked, seed)
        seen, keep = set(avoid), []
        for index, key in enumerate(canonical(puzzles)):
            if key not in seen:
                seen.add(key)
                keep.append(index)
        if len(keep) >= wanted:
            keep = keep[:wanted]
            return puzzles[keep], labels[keep], lengths[keep], tried, asked
        asked += wanted - len(keep)


@pytest.mark.parametrize(("side", "min_length", "count"), [(4, 3, 900), (3, 2, 150), (7, 6, 500)])
def test_distinct_mazes_are_the_ones_the_old_loop_kept(side, min_length, count):
    spec = MazeSpec(side=side, min_length=min_length)
    avoid = set(canonical(generate(spec, 5, seed=99, workers=1)[0]))
    old = _old_generated(spec, count, 7, avoid)
    new = generate_distinct(spec, count, 7, avoid)
    for before, after in zip(old[:3], new[:3], strict=True):
        assert (before == after).all()
    assert old[3:] == new[3:]  # candidates tried, stream position of the last one kept


def test_too_few_distinct_mazes_stop_in_seconds_without_workers_left():
    started = time.monotonic()
    with pytest.raises(Shortfall) as stop:
        generate_distinct(MazeSpec(side=3, min_length=2), 180, seed=0, avoid=set())
    assert stop.value.verdict.found == 179  # every distinct 3x3 maze with a path over 2
    assert time.monotonic() - started < 20
    assert not multiprocessing.active_children()
    with pytest.raises(ValueError, match="min_length 16 is out of reach for side 5"):
        generate_distinct(MazeSpec(side=5, min_length=16), 1, seed=0, avoid=set())


def _stream(supply, draws, pool, rng, batches, cost=BATCH):
    """Feed ``supply`` batches of ``draws`` uniform draws from ``pool`` items."""
    seen = set()
    for _ in range(batches):
        items = rng.integers(0, pool, draws)
        new = len(set(items.tolist()) - seen)
        seen.update(items.tolist())
        supply.record(draws, new, cost)
        if verdict := supply.verdict():
            return verdict, len(seen)
    return None, len(seen)


def test_the_supply_stops_a_small_pool_and_lets_a_large_one_be():
    rng = np.random.default_rng(0)
    verdict, found = _stream(Supply(3000, 2**30, BATCH, 4096, 16), 500, 1000, rng, 400)
    assert verdict is not None and verdict.found == found <= 1000
    verdict, _ = _stream(Supply(1000, 2**30, BATCH, 4096, 16), 500, 1000, rng, 400)
    assert verdict is None or verdict.found >= 990  # nearly the whole pool: may take long
    verdict, _ = _stream(Supply(200_000, 2**30, BATCH, 4096, 16), 500, 10**12, rng, 100)
    assert verdict is None  # hardly a repeat: far from running out
    nothing = Supply(5, 2**30, 64 * BATCH, 4096, 16)
    for _ in range(63):
        nothing.record(0, 0, BATCH)
        assert nothing.verdict() is None
    nothing.record(0, 0, BATCH)
    assert nothing.verdict().kind == "none"
    spent = Supply(100, 1000, BATCH, 4096, 16)  # a budget spent: little more to hope for
    spent.record(20, 5, 1000)
    assert spent.verdict().kind == "short"


def test_options_naming_a_side_only_are_read_but_not_built(tmp_path):
    task = MazeTask()
    task.configure({"side": 4})  # the default min_length of side 4 is out of its reach
    assert task.grid_shape == (4, 4)
    with pytest.raises(ConfigError, match=r"data\.options\.train\.min_length \(default 15 for "
                       r"side 4\) is out of reach for side 4 .* at most 9"):  # fmt: skip
        MazeTask().build_dataset({"side": 4}, tmp_path / "data")
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    MazeTask.options_from({"side": 30, "train": {"count": 10**9}})  # too many: refused when built
    with pytest.raises(ConfigError, match=r"data\.options\.train\.count=1000000000 \+ "):
        MazeTask().build_dataset({"side": 30, "train": {"count": 10**9}}, tmp_path / "big")


def test_a_refusal_names_the_count_and_the_training_mazes(tmp_path):
    options = {"seed": 0, "side": 3, "train": {"count": 170, "min_length": 2},
               "test": {"count": 20, "min_length": 2}}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        MazeTask().build_dataset(options, tmp_path / "data")
    message = str(error.value)
    assert message.startswith("data.options.test.count=20 is more than these options give")
    assert "besides the 170 training mazes" in message and "data.options.train.count" in message
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
