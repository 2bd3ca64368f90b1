"""An exact Sudoku solver: bit masks, constraint propagation, fewest-candidates branching.

A grid is 81 ints in row-major order, 0 for a blank and 1..9 for a digit.
Each cell keeps a 9-bit mask of its candidates. Propagation repeats two rules
until nothing changes: a cell with one candidate removes it from its 20 peers
(naked single), and a digit with one possible cell in a row, column or box goes
there (hidden single). When propagation stalls, the search branches on a cell
with the fewest candidates, trying each in turn.

The solver counts its work: ``guesses`` is the number of trial assignments at
branch points (0 for a puzzle that propagation alone solves) and
``backtracks`` the number of those that led to a contradiction. Counting all
solutions (up to a limit) explores the whole search tree, so the guess count of
:func:`rate` does not depend on the order digits are tried in: it is the
difficulty rating used to filter generated puzzles.

Pure Python, no dependencies; the module is used to label data, validate
answers, prove uniqueness, rate difficulty and generate puzzles.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

ALL = 0x1FF  # the nine candidate bits
ROWS = [[r * 9 + c for c in range(9)] for r in range(9)]
COLS = [[r * 9 + c for r in range(9)] for c in range(9)]
BOXES = [
    [(br * 3 + r) * 9 + bc * 3 + c for r in range(3) for c in range(3)]
    for br in range(3)
    for bc in range(3)
]
UNITS = ROWS + COLS + BOXES
PEERS = [tuple(sorted({j for unit in UNITS if i in unit for j in unit} - {i})) for i in range(81)]
BIT = [0] + [1 << (d - 1) for d in range(1, 10)]  # digit -> its bit (0 -> no bit)
POPCOUNT = [bin(m).count("1") for m in range(512)]
DIGIT = {1 << (d - 1): d for d in range(1, 10)}  # single bit -> digit


@attrs.define
class SolveResult:
    """What :func:`solve` found, and the work it took."""

    solutions: list[list[int]]  # up to ``limit`` complete grids, in the order found
    guesses: int  # trial assignments at branch points
    backtracks: int  # trial assignments that led to a contradiction

    @property
    def count(self) -> int:
        return len(self.solutions)

    @property
    def unique(self) -> bool:
        return len(self.solutions) == 1


class SudokuError(ValueError):
    """A puzzle that is malformed, contradicts itself, or has no single solution."""


def _propagate(cands: list[int], queue: list[int]) -> bool:
    """Apply naked and hidden singles in place; False on a contradiction."""
    while True:
        while queue:
            cell = queue.pop()
            bit = cands[cell]
            for peer in PEERS[cell]:
                mask = cands[peer]
                if mask & bit:
                    mask ^= bit
                    if not mask:
                        return False
                    cands[peer] = mask
                    if not mask & (mask - 1):
                        queue.append(peer)
        for unit in UNITS:
            once = twice = 0
            for cell in unit:
                mask = cands[cell]
                twice |= once & mask
                once |= mask
            if once != ALL:
                return False  # some digit has no place left in this unit
            hidden = once & ~twice
            if not hidden:
                continue
            for cell in unit:
                mask = cands[cell]
                only_here = mask & hidden
                if only_here and mask != only_here:
                    if only_here & (only_here - 1):
                        return False  # two digits can only go in this one cell
                    cands[cell] = only_here
                    queue.append(cell)
        if not queue:
            return True


def _initial(grid: Sequence[int]) -> list[int] | None:
    """Candidate masks for a grid, propagated; None when the givens contradict."""
    cands = [ALL] * 81
    queue = []
    for cell, digit in enumerate(grid):
        if digit:
            cands[cell] = BIT[digit]
            queue.append(cell)
    for cell in queue:  # a given that clashes with another given
        bit = cands[cell]
        if any(cands[p] == bit for p in PEERS[cell] if grid[p]):
            return None
    return cands if _propagate(cands, queue) else None


def solve(grid: Sequence[int], limit: int = 2, rng: random.Random | None = None) -> SolveResult:
    """Find up to ``limit`` solutions of ``grid`` (81 ints, 0 = blank).

    Args:
        grid: the puzzle.
        limit: stop after this many solutions (2 proves uniqueness).
        rng: try candidates in a random order (to build random grids); None
            tries them from 1 to 9.
    """
    if len(grid) != 81:
        raise SudokuError(f"a grid has 81 cells, got {len(grid)}")
    result = SolveResult([], 0, 0)
    cands = _initial(grid)
    if cands is None:
        return result
    stack = [cands]
    while stack:
        cands = stack.pop()
        best, fewest = -1, 10
        for cell in range(81):
            mask = cands[cell]
            if mask & (mask - 1):
                n = POPCOUNT[mask]
                if n < fewest:
                    best, fewest = cell, n
                    if n == 2:
                        break
        if best < 0:
            result.solutions.append([DIGIT[m] for m in cands])
            if len(result.solutions) >= limit:
                break
            continue
        mask = cands[best]
        bits = [1 << d for d in range(9) if mask >> d & 1]
        if rng is not None:
            rng.shuffle(bits)
        children = []
        for bit in bits:
            result.guesses += 1
            child = cands[:]
            child[best] = bit
            if _propagate(child, [best]):
                children.append(child)
            else:
                result.backtracks += 1
        stack.extend(reversed(children))  # depth first, first candidate on top
    return result


def solve_one(grid: Sequence[int]) -> list[int]:
    """The unique solution of ``grid``; SudokuError when it has none or several."""
    result = solve(grid, limit=2)
    if result.count == 0:
        raise SudokuError("no solution")
    if result.count > 1:
        raise SudokuError("several solutions")
    return result.solutions[0]


def rate(grid: Sequence[int]) -> int:
    """Difficulty: the guesses needed to find every solution (0 = propagation alone)."""
    return solve(grid, limit=2).guesses


def is_complete_valid(grid: Sequence[int]) -> bool:
    """True when every row, column and box holds 1..9 exactly once."""
    if len(grid) != 81:
        return False
    return all(sorted(grid[i] for i in unit) == list(range(1, 10)) for unit in UNITS)


def conflicts(grid: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs of cells (i < j) in one unit holding the same digit."""
    found = set()
    for unit in UNITS:
        for a in range(9):
            for b in range(a + 1, 9):
                i, j = unit[a], unit[b]
                if grid[i] and grid[i] == grid[j]:
                    found.add((i, j))
    return sorted(found)


def random_solution(rng: random.Random) -> list[int]:
    """A uniformly shuffled complete grid (random search order from an empty grid)."""
    return solve([0] * 81, limit=1, rng=rng).solutions[0]
