"""The exact solver: correct answers, uniqueness, contradictions, guess counts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from trm_plugin_sudoku.grid import parse_line, to_line
from trm_plugin_sudoku.solver import (
    SudokuError,
    conflicts,
    is_complete_valid,
    random_solution,
    rate,
    solve,
    solve_one,
)

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "sudoku"

# An easy newspaper puzzle (naked and hidden singles suffice) and its solution.
EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
EASY_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
# Arto Inkala's "world's hardest Sudoku": needs guessing.
HARD = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."


def test_solves_an_easy_puzzle_by_propagation_alone():
    result = solve(parse_line(EASY))
    assert result.unique
    assert to_line(result.solutions[0]) == EASY_SOLUTION
    assert result.guesses == 0 and result.backtracks == 0


def test_hard_puzzle_needs_guesses_and_is_unique():
    puzzle = parse_line(HARD)
    solution = solve_one(puzzle)
    assert is_complete_valid(solution)
    assert all(p in (0, s) for p, s in zip(puzzle, solution, strict=True))
    result = solve(puzzle)
    assert result.guesses > 0 and result.backtracks > 0
    assert rate(puzzle) == result.guesses


def test_several_solutions_are_found():
    # The easy puzzle with its first row's givens blanked as well: no longer unique.
    puzzle = parse_line("." * 9 + EASY[9:])
    result = solve(puzzle, limit=2)
    assert result.count == 2
    assert result.solutions[0] != result.solutions[1]
    assert all(is_complete_valid(s) for s in result.solutions)
    with pytest.raises(SudokuError, match="several"):
        solve_one(puzzle)


def test_contradictions_have_no_solution():
    clash = parse_line("11" + "." * 79)  # two 1s in a row
    assert solve(clash).count == 0
    # No clash between givens, but r1c9 can hold nothing: 1-8 in its row, 9 in its column.
    subtle = list("12345678." + "........9" + "." * 63)
    result = solve(parse_line("".join(subtle)))
    assert result.count == 0
    with pytest.raises(SudokuError, match="no solution"):
        solve_one(parse_line("".join(subtle)))


def test_random_solutions_are_valid_and_differ():
    grids = [random_solution(random.Random(seed)) for seed in range(5)]
    assert all(is_complete_valid(g) for g in grids)
    assert len({tuple(g) for g in grids}) == 5


def test_conflicts_name_the_clashing_cells():
    grid = [int(c) for c in EASY_SOLUTION]
    assert conflicts(grid) == []
    grid[1] = grid[0]  # r1c2 now repeats r1c1
    assert (0, 1) in conflicts(grid)
    assert not is_complete_valid(grid)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the project")
def test_solves_a_sample_of_magictour_top1465():
    lines = [
        line.strip()
        for line in (SHARED / "magictour_top1465.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for text in lines[::15]:  # ~100 of the 1465; the whole file is timed by the benchmark
        puzzle = parse_line(text)
        result = solve(puzzle, limit=2)
        assert result.unique, text
        assert is_complete_valid(result.solutions[0])
        assert all(p in (0, s) for p, s in zip(puzzle, result.solutions[0], strict=True))


def test_rejects_a_short_grid():
    with pytest.raises(SudokuError, match="81 cells"):
        solve([0] * 80)
