"""Random-wall mazes, made the way the Maze-Hard set was.

Each candidate maze draws its wall probability p uniformly from a range
(0.3-0.5 by default) and makes every cell a wall with probability p. S is an
open cell drawn uniformly; G is drawn uniformly among the open cells whose
shortest path from S is longer than ``min_length`` moves (110 for the 30x30
'hard' set); a maze with no such cell is dropped. The label marks the
tie-broken shortest path (:mod:`trm_plugin_maze.paths`).

Candidates come in fixed batches, batch k drawn from ``mix_seed(seed, k)``,
and the accepted mazes are taken in order: the same seed gives the same mazes
whatever the count, and a larger count extends a smaller one.

Limits. No shortest path in a side x side grid is longer than
:func:`longest_path` moves (a shortest path never touches itself: at most 3
cells of any 2x2 square, the exact maximum searched out for sides up to 8), so
a larger ``min_length`` is refused before generating
(:meth:`MazeSpec.reachable`). Small sides allow few distinct mazes (179 of
side 3 with paths over 2 moves), and any side few with paths near the longest:
:func:`generate_distinct` stops as soon as the stream shows that the count is
out of reach (:class:`Supply`), after at most ``CANDIDATE_BUDGET`` candidates.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import attrs
import numpy as np

from trm_core import mix_seed, quiet_worker
from trm_core.taskkit import DRAWS_PER_ITEM, MIN_DRAWS, Shortfall, Supply, Verdict  # noqa: F401

from .augment import canonical
from .grid import GOAL, OPEN, PATH, START, WALL
from .paths import distances, trace_back

BATCH = 4096  # candidates per batch (fixed: the stream of mazes must not depend on it)
MAX_SIDE = 64  # rows are searched as 64-bit masks
HARD_SIDE, HARD_MIN_LENGTH = 30, 110
#: The most candidates one split may take (262,144 batches: hours of work; 1,000 mazes of
#: the 30x30 'hard' kind take about 4 million, of the 11x11 default 90 million).
CANDIDATE_BUDGET = 2**30
EMPTY_BATCHES = 64  # batches without a single maze at side 15 or less: min_length is out of reach
#: The longest induced path (cells) of the side x side grid, searched exhaustively.
_LONGEST_PATH_CELLS = {3: 7, 4: 11, 5: 17, 6: 24, 7: 33, 8: 42}

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # puzzles, labels, path lengths


def default_min_length(side: int) -> int:
    """The Maze-Hard threshold scaled to the side: 110 moves at 30x30, 55 at 15x15, 41 at 11x11."""
    return math.ceil(HARD_MIN_LENGTH * side / HARD_SIDE)


def empty_batches(side: int) -> int:
    """Batches without a single maze after which min_length counts as out of reach: 64
    up to side 15, fewer for larger sides, whose batches take longer (8 from side 42)."""
    return max(8, min(EMPTY_BATCHES, EMPTY_BATCHES * 15 * 15 // (side * side)))


def longest_path(side: int, most_walls: float = 0.5) -> int:
    """An upper bound of the shortest path (moves) of a side x side maze whose wall
    probability is at most ``most_walls``: exact up to side 8 (6 moves at side 3, 16
    at 5, 41 at 8); beyond, a shortest path holds at most 3 cells of each 2x2 square;
    without walls, the grid's diameter 2 x (side - 1)."""
    if most_walls <= 0:
        return 2 * (side - 1)
    cells = _LONGEST_PATH_CELLS.get(side, side * side - (side // 2) ** 2)
    return cells - 1


@attrs.frozen
class MazeSpec:
    side: int = 30
    wall_probability: tuple[float, float] = (0.3, 0.5)
    min_length: int | None = None  # None: default_min_length(side)

    def __attrs_post_init__(self) -> None:
        low, high = self.wall_probability
        if not 3 <= self.side <= MAX_SIDE:
            raise ValueError(f"side {self.side} is outside 3..{MAX_SIDE}")
        if not 0.0 <= low <= high < 1.0:
            raise ValueError(
                f"wall_probability {list(self.wall_probability)} must be [low, high] "
                "with 0 <= low <= high < 1"
            )
        if self.threshold < 1 or self.threshold >= self.side * self.side:
            raise ValueError(f"min_length {self.threshold} is out of range for side {self.side}")

    def reachable(self) -> None:
        """Raise ValueError for a threshold no maze of the side reaches (the data set's
        build checks it; a spec that only names the side, to read or solve mazes, may
        keep the default threshold of a side too small for it)."""
        longest = longest_path(self.side, self.wall_probability[1])
        if self.threshold >= longest:
            raise ValueError(
                f"min_length {self.threshold} is out of reach for side {self.side}: no "
                f"shortest path of a {self.side}x{self.side} maze"
                f"{' without walls' if longest == 2 * (self.side - 1) else ''} is longer "
                f"than {longest} moves; lower min_length to at most {longest - 1}"
            )

    @property
    def threshold(self) -> int:
        return default_min_length(self.side) if self.min_length is None else self.min_length


def _pack(cells: np.ndarray) -> np.ndarray:
    """[B, side, side] bool -> [B, side] uint64, bit c of row r = cell (r, c)."""
    packed = np.packbits(cells, axis=-1, bitorder="little")  # [B, side, ceil(side/8)] bytes
    wide = np.zeros((*cells.shape[:2], 8), dtype=np.uint8)
    wide[..., : packed.shape[-1]] = packed
    return wide.view("<u8")[..., 0].astype(np.uint64)


def _unpack(rows: np.ndarray, side: int) -> np.ndarray:
    """[B, side] uint64 -> [B, side, side] bool."""
    as_bytes = rows.astype("<u8")[..., None].view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=side, bitorder="little").astype(bool)


def far_cells(passable: np.ndarray, start: np.ndarray, threshold: int, side: int) -> np.ndarray:
    """[B, side] packed rows: the cells more than ``threshold`` moves from ``start``.

    A breadth-first search on rows packed as 64-bit masks (a step is a few
    operations on [B, side] integers, ``passable`` and ``start`` packed the
    same way); a maze leaves the batch as soon as its search ends, so the long
    searches of the few hard mazes run alone.
    """
    far = np.zeros_like(passable)
    seen = start & passable
    frontier, near = seen.copy(), np.zeros_like(seen)
    one, inside = np.uint64(1), np.uint64((1 << side) - 1)
    alive = np.arange(len(passable))
    step = 0
    while len(alive):
        grown = frontier | (frontier << one) | (frontier >> one)
        grown[:, 1:] |= frontier[:, :-1]
        grown[:, :-1] |= frontier[:, 1:]
        frontier = grown & inside & passable & ~seen
        seen |= frontier
        step += 1
        if step == threshold:
            near = seen.copy()
        ended = ~frontier.any(1)
        if ended.any():
            if step > threshold:  # these searches went past the threshold: their far cells
                far[alive[ended]] = seen[ended] & ~near[ended]
            going = ~ended
            alive, frontier, seen = alive[going], frontier[going], seen[going]
            passable, near = passable[going], near[going]
    return far


START_DRAWS = 16  # cells drawn for S; the first open one is uniform over the open cells


def candidates(spec: MazeSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch of BATCH candidates: (puzzles [K, side*side], labels, path lengths [K])
    of the K accepted."""
    rng = np.random.default_rng(seed)
    side, cells = spec.side, spec.side * spec.side
    low, high = spec.wall_probability
    p = rng.uniform(low, high, size=(BATCH, 1, 1)).astype(np.float32)
    open_cells = rng.random((BATCH, side, side), dtype=np.float32) >= p
    # S: the first open cell among uniform draws, so uniform over the open cells (a maze
    # whose draws all hit walls, at most 0.5^16 of them, is dropped).
    draws = rng.integers(0, cells, size=(BATCH, START_DRAWS))
    hits = open_cells.reshape(BATCH, -1)[np.arange(BATCH)[:, None], draws]
    start = draws[np.arange(BATCH), hits.argmax(1)]
    found = hits.any(1)
    start_rows, start_cols = np.divmod(start, side)
    packed_start = np.zeros((BATCH, side), dtype=np.uint64)
    packed_start[np.arange(BATCH), start_rows] = np.left_shift(
        found.astype(np.uint64), start_cols.astype(np.uint64)
    )
    far = far_cells(_pack(open_cells), packed_start, spec.threshold, side)
    index = np.flatnonzero(far.any(1))
    count = len(index)
    # G: uniform over the cells more than min_length moves from S; none: the maze is dropped.
    far_cells_kept = _unpack(far[index], side).reshape(count, cells)
    goal = np.where(far_cells_kept, rng.random(far_cells_kept.shape), -1.0).argmax(1)
    grid = np.where(open_cells[index], OPEN, WALL).astype(np.uint8).reshape(count, cells)
    rows = np.arange(count)
    grid[rows, start[index]] = START
    grid[rows, goal] = GOAL
    # Full distances for the few accepted mazes only, to trace their paths.
    sources = np.zeros((count, cells), dtype=bool)
    sources[rows, start[index]] = True
    distance = distances(open_cells[index], sources.reshape(count, side, side))
    path = trace_back(distance, goal).reshape(count, cells)
    labels = np.where(path, PATH, grid).astype(np.uint8)
    lengths = distance.reshape(count, cells)[rows, goal].astype(np.int64)
    return grid, labels, lengths


def _batches(spec: MazeSpec, seed: int, workers: int) -> Iterator[tuple[Batch, int]]:
    """Every candidate batch in order, without end: (its accepted mazes, the number of
    batches run when its round ends). Rounds of 2 x ``workers`` batches run over
    ``workers`` processes; closing the iterator stops them (a round's batches take a
    fraction of a second, so none is left running)."""
    run = partial(candidates, spec)
    pool = ProcessPoolExecutor(workers, initializer=quiet_worker) if workers > 1 else None
    try:
        batch = 0
        while True:
            seeds = [mix_seed(seed, k) for k in range(batch, batch + 2 * workers)]
            batch += len(seeds)
            for made in pool.map(run, seeds) if pool else map(run, seeds):
                yield made, batch
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


def generate(
    spec: MazeSpec,
    count: int,
    seed: int,
    workers: int | None = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``count`` mazes: (puzzles, labels, path lengths, candidates tried).

    Batches run over ``workers`` processes (default: every core), in rounds;
    the accepted mazes are taken in batch order, so the result does not depend
    on the number of processes. Repeats are kept: :func:`generate_distinct`
    drops them.

    Args:
        progress: a label for progress lines on stderr (None: quiet).
    """
    workers = workers or os.cpu_count() or 1
    parts: list[Batch] = []
    found, batch = 0, 0
    started = shown = time.monotonic()
    with contextlib.closing(_batches(spec, seed, workers)) as batches:
        for made, batch in batches:
            parts.append(made)
            found += len(made[0])
            if len(parts) < batch:
                continue  # the round goes on
            if progress and (time.monotonic() - shown > 5 or found >= count):
                shown = time.monotonic()
                print(f"  {progress}: {min(found, count)}/{count} mazes "
                      f"({batch * BATCH} candidates, {shown - started:.0f}s)",
                      file=sys.stderr, flush=True)  # fmt: skip
            if found >= count:
                break
            if found == 0 and batch >= empty_batches(spec.side):
                raise ValueError(
                    f"no maze longer than {spec.threshold} moves in {batch * BATCH} candidates "
                    f"of side {spec.side} with wall probability {list(spec.wall_probability)}: "
                    "lower min_length"
                )
    puzzles, labels, lengths = (
        np.concatenate(column)[:count] for column in zip(*parts, strict=True)
    )
    return puzzles, labels, lengths, batch * BATCH


# -- distinct mazes, and when there are not enough -------------------------------------


# The supply of distinct mazes, judged: trm_core.taskkit.Supply (shared with Sudoku).


def generate_distinct(
    spec: MazeSpec,
    count: int,
    seed: int,
    avoid: set[bytes],
    workers: int | None = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``count`` mazes, none a transform (:func:`~trm_plugin_maze.augment.canonical`) of
    another or of one in ``avoid``: the first such of :func:`generate`'s stream.

    Returns (puzzles, labels, path lengths, candidates tried, mazes of the stream
    taken, repeats included). Raises ValueError for a threshold out of reach
    (:meth:`MazeSpec.reachable`) and :class:`Shortfall` as soon as a
    :class:`Supply` judges the count out of reach (at most ``CANDIDATE_BUDGET``
    candidates). Memory holds the kept mazes and their keys, never the repeats.
    """
    spec.reachable()
    workers = workers or os.cpu_count() or 1
    empty = empty_batches(spec.side) * BATCH
    supply = Supply(count, CANDIDATE_BUDGET, empty, min_window=4096, min_drawn=16)
    seen = set(avoid)
    parts: list[Batch] = []
    kept = drawn = 0
    started = shown = time.monotonic()
    with contextlib.closing(_batches(spec, seed, workers)) as batches:
        for made, batch in batches:
            keep = []
            for index, key in enumerate(canonical(made[0])):
                if key in seen:
                    continue
                seen.add(key)
                keep.append(index)
                if kept + len(keep) == count:
                    drawn += index + 1
                    break
            else:
                drawn += len(made[0])
            parts.append(tuple(column[keep] for column in made))
            kept += len(keep)
            supply.record(len(made[0]), len(keep), BATCH)
            if progress and (time.monotonic() - shown > 5 or kept == count):
                shown = time.monotonic()
                print(f"  {progress}: {kept}/{count} mazes ({len(parts) * BATCH} candidates, "
                      f"{shown - started:.0f}s)", file=sys.stderr, flush=True)  # fmt: skip
            if kept == count:
                tried = batch * BATCH  # whole rounds, as generate() counts them
                break
            if verdict := supply.verdict():
                raise Shortfall(verdict)
    puzzles, labels, lengths = (np.concatenate(column) for column in zip(*parts, strict=True))
    return puzzles, labels, lengths, tried, drawn
