"""Property tests: every Sudoku augmentation is invertible and keeps puzzles valid."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.augment import Augmentation
from trm_plugin_sudoku.generate import signature
from trm_plugin_sudoku.grid import BLANK, keeps_givens, to_digits, to_tokens, valid_solutions
from trm_plugin_sudoku.solver import random_solution

TASK = SudokuTask()
SEEDS = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def puzzles(draw):
    """A valid solved grid (any of them: drawn by a random search) and a puzzle from it."""
    solution = np.array(random_solution(random.Random(draw(SEEDS))))
    blanks = np.array(draw(st.lists(st.booleans(), min_size=81, max_size=81)))
    puzzle = np.where(blanks, 0, solution)
    return to_tokens(puzzle), to_tokens(solution)


@st.composite
def augmentations(draw):
    """Any element of the augmentation group, built from its parts (not only from seeds)."""
    digits = np.array(draw(st.permutations(range(9))))
    transpose = draw(st.booleans())
    bands, stacks = draw(st.permutations(range(3))), draw(st.permutations(range(3)))
    rows = np.concatenate([b * 3 + np.array(draw(st.permutations(range(3)))) for b in bands])
    cols = np.concatenate([s * 3 + np.array(draw(st.permutations(range(3)))) for s in stacks])
    return Augmentation.build(digits, transpose, rows, cols)


@settings(max_examples=200, deadline=None)
@given(puzzles(), augmentations())
def test_augment_then_inverse_is_the_identity(example, augmentation):
    puzzle, solution = example
    assert np.array_equal(augmentation.invert(augmentation.apply(puzzle)), puzzle)
    assert np.array_equal(augmentation.invert(augmentation.apply(solution)), solution)


@settings(max_examples=200, deadline=None)
@given(puzzles(), augmentations())
def test_augmented_solution_is_valid_and_solves_the_augmented_puzzle(example, augmentation):
    puzzle, solution = example
    new_puzzle, new_solution = augmentation.apply(puzzle), augmentation.apply(solution)
    assert valid_solutions(to_digits(new_solution)).all()
    assert keeps_givens(to_digits(new_puzzle), to_digits(new_solution)).all()


@settings(max_examples=200, deadline=None)
@given(puzzles(), augmentations())
def test_relabelling_never_moves_a_blank(example, augmentation):
    puzzle, _ = example
    moved = augmentation.apply(puzzle)
    # Blanks go exactly where the cell permutation sends them, and stay blank.
    assert np.array_equal(moved == BLANK, (puzzle == BLANK)[augmentation.positions])
    assert augmentation.table[0] == 0 and augmentation.table[BLANK] == BLANK
    assert sorted(augmentation.table[2:]) == list(range(2, 11))


@settings(max_examples=100, deadline=None)
@given(puzzles(), SEEDS)
def test_task_augment_round_trips_through_its_seed(example, seed):
    puzzle, solution = example
    new_puzzle, new_solution = TASK.augment(puzzle, solution, seed)
    assert np.array_equal(TASK.inverse_augment(new_puzzle, seed), puzzle)
    assert np.array_equal(TASK.inverse_augment(new_solution, seed), solution)
    again = TASK.augment(puzzle, solution, seed)  # deterministic in the seed
    assert np.array_equal(again[0], new_puzzle) and np.array_equal(again[1], new_solution)


@settings(max_examples=100, deadline=None)
@given(puzzles(), augmentations())
def test_signature_is_shared_by_every_transform(example, augmentation):
    puzzle, _ = example
    digits = to_digits(puzzle)
    assert signature(to_digits(augmentation.apply(puzzle))) == signature(digits)


def test_seeds_draw_many_different_augmentations():
    puzzle = to_tokens(random_solution(random.Random(0)))
    seen = {TASK.augment(puzzle, puzzle, seed)[0].tobytes() for seed in range(200)}
    assert len(seen) == 200
