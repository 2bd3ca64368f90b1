"""Judging a maze answer by the rules alone (what ``trm-solve`` prints under each answer)."""

from __future__ import annotations

import numpy as np

from .grid import OPEN, PATH, side_of
from .paths import path_reach

SHOWN = 5  # cells listed per problem


def _cells(indices: np.ndarray, side: int) -> str:
    named = [f"r{i // side + 1}c{i % side + 1}" for i in indices[:SHOWN]]
    more = f" and {len(indices) - SHOWN} more" if len(indices) > SHOWN else ""
    return ", ".join(named) + more


def problems(inputs: np.ndarray, answer: np.ndarray) -> list[str]:
    """What is wrong with ``answer`` (the maze with a path marked ``o``) for the maze ``inputs``."""
    inputs, answer = np.asarray(inputs), np.asarray(answer)
    side = side_of(len(inputs))
    found = []
    shortest, reached = (int(value[0]) for value in path_reach(inputs[None], answer[None]))
    if shortest < 0:
        return ["G cannot be reached from S in this maze"]
    marked = answer == PATH
    changed = np.flatnonzero(~marked & (answer != inputs))
    if len(changed):
        found.append(f"changes the maze at {_cells(changed, side)}")
    blocked = np.flatnonzero(marked & (inputs != OPEN))
    if len(blocked):
        found.append(f"marks a path through walls, S or G at {_cells(blocked, side)}")
    steps = int(marked.sum()) + 1
    if reached < 0:
        found.append("the marked cells do not connect S to G")
    elif reached > shortest:
        found.append(f"the marked path takes {reached} moves; the shortest takes {shortest}")
    if reached >= 0 and steps != reached:
        found.append(f"marks {steps - 1} cells, but the path from S to G uses {reached - 1}")
    return found
