"""Maze tokens and text (those of the paper's Maze-Hard data).

A maze is a square grid over the charset ``# SGo``: wall, open, start, goal and
path. Tokens are the charset index + 1 (PAD is 0), so the vocabulary is 6. A
puzzle holds walls, open cells, one S and one G; its answer marks the cells of
a shortest S-G path (S and G excluded) with ``o``.
"""

from __future__ import annotations

import math

import numpy as np

CHARSET = "# SGo"
VOCAB_SIZE = len(CHARSET) + 1  # 6, with PAD
PAD, WALL, OPEN, START, GOAL, PATH = range(6)
#: Characters accepted for an open cell when a maze is typed (editors strip trailing spaces).
OPEN_ALIASES = " ."


def side_of(length: int) -> int:
    """The side of a square grid of ``length`` cells (ValueError if not square)."""
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"{length} cells is not a square grid")
    return side


def to_text(tokens: np.ndarray) -> str:
    """[side*side] tokens -> rows of ``# SGo`` (PAD drawn as ``?``)."""
    tokens = np.asarray(tokens)
    side = side_of(tokens.shape[-1])
    chars = np.array(["?", *CHARSET])[np.clip(tokens, 0, VOCAB_SIZE - 1)]
    return "\n".join("".join(row) for row in chars.reshape(side, side))


def encode_row(text: str) -> np.ndarray:
    """A CSV field (all rows in one string) -> tokens; ValueError names a bad character."""
    table = np.zeros(256, dtype=np.uint8)
    for index, char in enumerate(CHARSET):
        table[ord(char)] = index + 1
    data = text.encode("latin-1", errors="replace")
    tokens = table[np.frombuffer(data, dtype=np.uint8)]
    bad = np.flatnonzero(tokens == 0)
    if len(bad):
        raise ValueError(
            f"unknown character {text[bad[0]]!r} at position {bad[0] + 1} "
            f"(the charset is {CHARSET!r})"
        )
    return tokens


def parse_maze(text: str) -> np.ndarray:
    """A maze typed as rows of ``#`` (wall), space or ``.`` (open), ``S`` and ``G``.

    Blank lines before and after are ignored. The rows must form a square with
    exactly one S and one G. Returns [side*side] tokens; ValueError names the row
    and column of the first problem.
    """
    lines = text.replace("\r", "").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError("no maze: expected rows of '#', ' ' (or '.'), 'S' and 'G'")
    side = len(lines)
    rows = []
    for number, line in enumerate(lines, start=1):
        if len(line) != side:
            raise ValueError(
                f"row {number} has {len(line)} cells, but a maze of {side} rows needs {side} "
                "(write open cells as '.' where an editor strips trailing spaces)"
            )
        row = []
        for column, char in enumerate(line, start=1):
            if char in OPEN_ALIASES:
                row.append(OPEN)
            elif char in "#SG":
                row.append(CHARSET.index(char) + 1)
            else:
                what = (
                    "a path cell is the answer, not part of the puzzle"
                    if char == "o"
                    else ("expected '#', ' ' or '.', 'S' or 'G'")
                )
                raise ValueError(f"row {number}, column {column}: {char!r}: {what}")
        rows.append(row)
    tokens = np.asarray(rows, dtype=np.uint8).ravel()
    check_ends(tokens, "the maze")
    return tokens


def check_ends(tokens: np.ndarray, what: str) -> None:
    """ValueError unless ``tokens`` hold exactly one S and one G (``what`` names the grid)."""
    for token, name in ((START, "S"), (GOAL, "G")):
        count = int((tokens == token).sum())
        if count != 1:
            raise ValueError(f"{what} has {count} {name} cells, expected exactly one")
