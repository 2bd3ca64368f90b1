"""The 8 dihedral transforms: exact inverses, and shortest paths stay shortest."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_maze_paths import mazes

from trm_core import dihedral
from trm_plugin_maze import MazeTask
from trm_plugin_maze.augment import TRANSFORMS, apply, canonical, invert, positions
from trm_plugin_maze.generate import MazeSpec, generate
from trm_plugin_maze.paths import shortest_lengths, solve, valid_paths


@st.composite
def grids(draw):
    side = draw(st.integers(1, 30))
    return draw(arrays(np.uint8, side * side, elements=st.integers(0, 5)))


@settings(max_examples=200, deadline=None)
@given(grids(), st.integers(0, TRANSFORMS - 1))
def test_every_transform_composed_with_its_inverse_is_the_identity(grid, transform):
    assert (invert(apply(grid, transform), transform) == grid).all()
    assert (apply(invert(grid, transform), transform) == grid).all()


@settings(max_examples=100, deadline=None)
@given(mazes(min_side=3, max_side=12), st.integers(0, TRANSFORMS - 1))
def test_a_transformed_path_is_a_shortest_path_of_the_transformed_maze(maze, transform):
    if shortest_lengths(maze[None])[0] < 0:
        return  # G unreachable: no path to move
    label = solve(maze[None])[0]
    moved_maze, moved_path = apply(maze, transform), apply(label, transform)
    assert valid_paths(moved_maze[None], moved_path[None])[0]


def test_transformed_generated_mazes_keep_valid_paths():
    puzzles, labels, _, _ = generate(MazeSpec(side=15, min_length=30), 20, seed=3, workers=1)
    for transform in range(TRANSFORMS):
        assert valid_paths(apply(puzzles, transform), apply(labels, transform)).all()


def test_the_eight_transforms_are_distinct_and_zero_is_the_identity():
    grid = np.arange(25)
    moved = {tuple(apply(grid, k)) for k in range(TRANSFORMS)}
    assert len(moved) == 8
    assert (positions(5, 0) == grid).all()
    with pytest.raises(ValueError, match="not in 0..7"):
        positions(5, 8)


def test_the_numbering_is_the_task_kits():
    grid = np.arange(20).reshape(4, 5)[:, :4]  # a 4x4 grid of distinct cells
    for k in range(TRANSFORMS):
        np.testing.assert_array_equal(apply(grid.ravel(), k), dihedral(grid, k).ravel())
    np.testing.assert_array_equal(apply(grid.ravel(), 1), np.rot90(grid).ravel())
    np.testing.assert_array_equal(apply(grid.ravel(), 6), grid.T.ravel())


def test_canonical_keys_ignore_transforms_only():
    puzzles, _, _, _ = generate(MazeSpec(side=9, min_length=12), 10, seed=1, workers=1)
    keys = canonical(puzzles)
    assert len(set(keys)) == len(puzzles)
    for transform in range(TRANSFORMS):
        assert canonical(apply(puzzles, transform)) == keys


@settings(max_examples=50, deadline=None)
@given(mazes(min_side=3, max_side=12), st.integers(0, 2**63 - 1))
def test_the_task_inverts_its_own_augmentation(maze, seed):
    task = MazeTask()
    label = maze.copy()
    label[maze == 2] = np.random.default_rng(seed % 1000).choice([2, 5], (maze == 2).sum())
    inputs, labels = task.augment(maze, label, seed)
    assert (task.inverse_augment(inputs, seed) == maze).all()
    assert (task.inverse_augment(labels, seed) == label).all()
