"""Judging a Sudoku answer (what ``trm-solve`` prints under each answer).

The answer is checked against the rules and the givens; the solver only says
whether the puzzle itself has a solution. It never produces the answer.
"""

from __future__ import annotations

from .solver import UNITS, solve

UNIT_NAMES = (
    [f"row {i + 1}" for i in range(9)]
    + [f"column {i + 1}" for i in range(9)]
    + [f"box {i + 1}" for i in range(9)]
)


def _cell(index: int) -> str:
    return f"r{index // 9 + 1}c{index % 9 + 1}"


def repeats(grid: list[int]) -> list[str]:
    """Every digit a row, column or box of ``grid`` holds more than once (blanks aside)."""
    found = []
    for name, unit in zip(UNIT_NAMES, UNITS, strict=True):
        for digit in range(1, 10):
            cells = [i for i in unit if grid[i] == digit]
            if len(cells) > 1:
                found.append(
                    f"{name} has {digit} {len(cells)} times ({', '.join(map(_cell, cells))})"
                )
    return found


def invalid_givens(puzzle: list[int]) -> str | None:
    """Why ``puzzle`` cannot have a valid answer because of its own givens, or None."""
    found = repeats(puzzle)
    if not found:
        return None
    more = f" (and {len(found) - 1} more repeats)" if len(found) > 1 else ""
    return f"the puzzle is invalid: its givens repeat a digit: {found[0]}{more}"


def problems(puzzle: list[int], answer: list[int]) -> list[str]:
    """What is wrong with ``answer`` for ``puzzle``: blanks, changed givens, broken rules."""
    found = []
    blanks = [i for i in range(81) if not answer[i]]
    if blanks:
        found.append(f"leaves {len(blanks)} cell(s) blank: {', '.join(map(_cell, blanks))}")
    for i in range(81):
        if puzzle[i] and answer[i] != puzzle[i]:
            found.append(f"changes the given {puzzle[i]} at {_cell(i)} to {answer[i] or 'blank'}")
    return found + repeats(answer)


def check(puzzle: list[int], answer: list[int]) -> list[str]:
    """:func:`problems`, after the puzzle's own faults when an answer has problems: the
    puzzle's repeated givens (every one), else a note that it has no solution. The
    real cause comes first, so a cut-down list still shows it."""
    found = problems(puzzle, answer)
    if not found:
        return found
    own = [f"the puzzle itself is invalid: its {line}" for line in repeats(puzzle)]
    if not own and solve(puzzle, limit=1).count == 0:
        own = ["the puzzle itself has no solution"]
    return own + found
