"""Breadth-first search as array operations, the label tie-break, and path validity."""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trm_plugin_maze.check import problems
from trm_plugin_maze.grid import GOAL, OPEN, PATH, START, WALL, parse_maze
from trm_plugin_maze.paths import distances, shortest_lengths, solve, valid_paths


def python_bfs(passable: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """One maze, one cell at a time: the obvious search, to check the array one against."""
    height, width = passable.shape
    out = np.full(passable.shape, -1)
    if not passable[source]:
        return out
    out[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < height and 0 <= nc < width and passable[nr, nc] and out[nr, nc] < 0:
                out[nr, nc] = out[r, c] + 1
                queue.append((nr, nc))
    return out


@st.composite
def mazes(draw, min_side=2, max_side=12):
    """A random maze with one S and one G (not necessarily connected)."""
    side = draw(st.integers(min_side, max_side))
    density = draw(st.floats(0.0, 0.6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    grid = np.where(rng.random(side * side) < density, WALL, OPEN).astype(np.uint8)
    start, goal = rng.choice(side * side, 2, replace=False)
    grid[start], grid[goal] = START, GOAL
    return grid


@settings(max_examples=60, deadline=None)
@given(mazes())
def test_array_search_equals_the_obvious_search(maze):
    side = int(len(maze) ** 0.5)
    grid = maze.reshape(side, side)
    passable = grid != WALL
    source = divmod(int(np.argmax(maze == START)), side)
    expected = python_bfs(passable, source)
    assert (distances(passable[None], (grid == START)[None])[0] == expected).all()
    goal = divmod(int(np.argmax(maze == GOAL)), side)
    assert shortest_lengths(maze[None])[0] == expected[goal]


@settings(max_examples=60, deadline=None)
@given(mazes())
def test_the_label_is_a_valid_shortest_path(maze):
    if shortest_lengths(maze[None])[0] < 0:
        return
    label = solve(maze[None])[0]
    assert valid_paths(maze[None], label[None])[0]
    assert problems(maze, label) == []
    assert (label == PATH).sum() == shortest_lengths(maze[None])[0] - 1


@settings(max_examples=80, deadline=None)
@given(mazes(max_side=7), st.integers(0, 2**32 - 1))
def test_problems_are_empty_exactly_for_valid_paths(maze, seed):
    """Random markings (often broken) are judged alike by the vectorised and the listing check."""
    if shortest_lengths(maze[None])[0] < 0:
        return
    rng = np.random.default_rng(seed)
    answer = solve(maze[None])[0]
    for _ in range(rng.integers(0, 3)):  # flip a few cells between open and path
        cell = rng.integers(len(maze))
        if answer[cell] in (OPEN, PATH):
            answer[cell] = OPEN if answer[cell] == PATH else PATH
    assert valid_paths(maze[None], answer[None])[0] == (problems(maze, answer) == [])


def test_ties_follow_the_documented_rule_and_both_count_as_valid():
    maze = parse_maze("S...\n.##.\n...G\n....")
    label = solve(maze[None])[0]
    # Traced back from G, the first of up, down, left, right that is closer to S: up first.
    assert "".join("o" if t == PATH else "." for t in label[:4]) == ".ooo"
    other = maze.copy()
    other[[4, 8, 9, 10]] = PATH  # down the left side, then along the bottom row
    assert valid_paths(np.stack([maze, maze]), np.stack([label, other])).all()
    assert not (label == other).all()


def test_invalid_answers_are_named():
    maze = parse_maze("S...\n.##.\n...G\n....")
    label = solve(maze[None])[0]
    long_way = maze.copy()
    long_way[[4, 8, 12, 13, 14, 15]] = PATH  # around the bottom: 7 moves, not 5
    assert not valid_paths(maze[None], long_way[None])[0]
    assert any("takes 7 moves; the shortest takes 5" in p for p in problems(maze, long_way))
    broken = label.copy()
    broken[2] = OPEN
    assert "the marked cells do not connect S to G" in problems(maze, broken)
    walled = label.copy()
    walled[5] = PATH
    assert any(p.startswith("marks a path through walls") for p in problems(maze, walled))
    moved = label.copy()
    moved[0] = OPEN  # S erased
    assert any(p.startswith("changes the maze at r1c1") for p in problems(maze, moved))
    assert not valid_paths(np.stack([maze] * 3), np.stack([broken, walled, moved])).any()
