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
"""

from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import attrs
import numpy as np

from trm_core import mix_seed

from .grid import GOAL, OPEN, PATH, START, WALL
from .paths import distances, trace_back

BATCH = 4096  # candidates per batch (fixed: the stream of mazes must not depend on it)
MAX_SIDE = 64  # rows are searched as 64-bit masks
HARD_SIDE, HARD_MIN_LENGTH = 30, 110


def default_min_length(side: int) -> int:
    """The Maze-Hard threshold scaled to the side: 110 moves at 30x30, 55 at 15x15, 41 at 11x11."""
    return math.ceil(HARD_MIN_LENGTH * side / HARD_SIDE)


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
    on the number of processes.

    Args:
        progress: a label for progress lines on stderr (None: quiet).
    """
    workers = workers or os.cpu_count() or 1
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    found, batch = 0, 0
    started = shown = time.monotonic()
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        while found < count:
            seeds = [mix_seed(seed, k) for k in range(batch, batch + 2 * workers)]
            batch += len(seeds)
            run = partial(candidates, spec)
            for made in pool.map(run, seeds) if pool else map(run, seeds):
                parts.append(made)
                found += len(made[0])
            if progress and (time.monotonic() - shown > 5 or found >= count):
                shown = time.monotonic()
                print(f"  {progress}: {min(found, count)}/{count} mazes "
                      f"({batch * BATCH} candidates, {shown - started:.0f}s)",
                      file=sys.stderr, flush=True)  # fmt: skip
            if found == 0 and batch >= 64:
                raise ValueError(
                    f"no maze longer than {spec.threshold} moves in {batch * BATCH} candidates "
                    f"of side {spec.side} with wall probability {list(spec.wall_probability)}: "
                    "lower min_length"
                )
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    puzzles, labels, lengths = (
        np.concatenate(column)[:count] for column in zip(*parts, strict=True)
    )
    return puzzles, labels, lengths, batch * BATCH
