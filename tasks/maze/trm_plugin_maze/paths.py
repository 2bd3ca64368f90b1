"""Shortest paths in many mazes at once: breadth-first search as array operations.

Each step of the search grows every maze's frontier by one cell in the four
directions with shifted boolean arrays, so one pass over a batch of B mazes
costs (longest distance) x a few array operations on [B, side, side], not a
Python loop per cell.

Labels use one fixed tie-break, because shortest paths are usually not unique:
the path is traced back from G, each step going to the first of up, down,
left, right that is one step closer to S.
"""

from __future__ import annotations

import numpy as np

from .grid import GOAL, OPEN, PATH, START, WALL, side_of

#: (row, column) offsets in tie-break order: up, down, left, right.
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))


def distances(passable: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Steps from the nearest source cell to every cell; -1 where unreachable.

    Args:
        passable: [B, H, W] bool, the cells one may stand on.
        sources: [B, H, W] bool, where the search starts (only passable ones count).

    Returns:
        [B, H, W] int32.
    """
    passable = np.asarray(passable, dtype=bool)
    distance = np.full(passable.shape, -1, dtype=np.int32)
    frontier = np.asarray(sources, dtype=bool) & passable
    unseen = passable & ~frontier
    step = 0
    while frontier.any():
        distance[frontier] = step
        grown = np.zeros_like(frontier)
        grown[:, 1:] |= frontier[:, :-1]
        grown[:, :-1] |= frontier[:, 1:]
        grown[:, :, 1:] |= frontier[:, :, :-1]
        grown[:, :, :-1] |= frontier[:, :, 1:]
        frontier = grown & unseen
        unseen &= ~frontier
        step += 1
    return distance


def trace_back(distance: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """The tie-broken shortest path to each goal, as [B, H, W] bool (goal and source excluded).

    Args:
        distance: [B, H, W] steps from the source (from :func:`distances`).
        goals: [B] flat index of each maze's goal cell, reachable.
    """
    count, _, width = distance.shape
    rows, cols = np.divmod(np.asarray(goals, dtype=np.int64), width)
    batch = np.arange(count)
    left = distance[batch, rows, cols].astype(np.int64)
    if (left < 0).any():
        raise ValueError("trace_back: a goal is unreachable")
    path = np.zeros(distance.shape, dtype=bool)
    padded = np.pad(distance, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    while True:
        moving = left > 1  # the next cell back is not the source
        if not moving.any():
            return path
        wanted = left - 1
        candidates = np.stack(
            [padded[batch, rows + 1 + dr, cols + 1 + dc] == wanted for dr, dc in MOVES], axis=1
        )
        choice = candidates.argmax(1)  # the first closer neighbour in MOVES order
        offsets = np.asarray(MOVES)[choice]
        rows = np.where(moving, rows + offsets[:, 0], rows)
        cols = np.where(moving, cols + offsets[:, 1], cols)
        path[batch[moving], rows[moving], cols[moving]] = True
        left = np.where(moving, wanted, left)


def shortest_lengths(tokens: np.ndarray) -> np.ndarray:
    """[N] moves on a shortest S-G path of each [N, side*side] maze; -1 if none (or no S/G)."""
    tokens = np.asarray(tokens)
    count, length = tokens.shape
    side = side_of(length)
    grid = tokens.reshape(count, side, side)
    passable = (grid != WALL) & (grid != 0)
    distance = distances(passable, grid == START)
    goal = (grid == GOAL).reshape(count, -1)
    has_goal = goal.any(1)
    at_goal = distance.reshape(count, -1)[np.arange(count), goal.argmax(1)]
    return np.where(has_goal & ((grid == START).sum((1, 2)) == 1), at_goal, -1)


def solve(tokens: np.ndarray) -> np.ndarray:
    """The labels of [N, side*side] mazes: each with its tie-broken shortest path marked ``o``."""
    tokens = np.asarray(tokens)
    count, length = tokens.shape
    side = side_of(length)
    grid = tokens.reshape(count, side, side)
    distance = distances(grid != WALL, grid == START)
    goals = (grid == GOAL).reshape(count, -1).argmax(1)
    path = trace_back(distance, goals).reshape(count, -1)
    return np.where(path, PATH, tokens).astype(tokens.dtype)


def path_reach(inputs: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For N mazes and answers: (moves on a shortest S-G path of the maze, moves from S to
    G stepping only on the answer's ``o`` cells that are open in the maze); -1 for none.
    """
    inputs, answers = np.asarray(inputs), np.asarray(answers)
    count, length = inputs.shape
    side = side_of(length)
    grid = inputs.reshape(count, side, side)
    marked = (answers == PATH) & (inputs == OPEN)
    on_path = marked.reshape(count, side, side) | (grid == START) | (grid == GOAL)
    along = distances(on_path, grid == START).reshape(count, -1)
    reached = along[np.arange(count), (inputs == GOAL).argmax(1)]
    return shortest_lengths(inputs), reached


def valid_paths(inputs: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """[N] bool: the answer is the maze with a shortest S-G path marked, whatever tie it takes.

    Every cell not marked ``o`` must equal the puzzle's; the ``o`` cells must be
    open cells of the puzzle that, with S and G, hold a path from S to G of the
    shortest length (so exactly length - 1 of them, all on that path).
    """
    inputs, answers = np.asarray(inputs), np.asarray(answers)
    marked = answers == PATH
    keeps = np.where(marked, inputs == OPEN, answers == inputs).all(1)
    shortest, reached = path_reach(inputs, answers)
    return keeps & (shortest > 0) & (reached == shortest) & (marked.sum(1) == shortest - 1)
