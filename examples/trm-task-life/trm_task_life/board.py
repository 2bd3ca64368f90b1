"""Boards of Conway's Game of Life on a torus: the rule, the text format, the symmetries.

A board is a square [side, side] grid of tokens, DEAD or ALIVE (0 is PAD, which a
board never holds). The torus wraps around: the neighbours of a cell on the
top row include cells of the bottom row.
"""

from __future__ import annotations

import math

import numpy as np

from trm_core import dihedral, inverse_dihedral

DEAD, ALIVE = 1, 2
VOCAB_SIZE = 3  # PAD, DEAD, ALIVE
SYMBOLS = {".": DEAD, "#": ALIVE}


def step(boards: np.ndarray) -> np.ndarray:
    """The next generation of [..., side, side] boards: a live cell with 2 or 3 live
    neighbours lives on, a dead cell with exactly 3 comes alive, every other cell is dead."""
    alive = (np.asarray(boards) == ALIVE).astype(np.int8)
    neighbours = sum(
        np.roll(alive, (dr, dc), axis=(-2, -1))
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if (dr, dc) != (0, 0)
    )
    lives = (neighbours == 3) | ((alive == 1) & (neighbours == 2))
    return np.where(lives, ALIVE, DEAD).astype(np.uint8)


def side_of(length: int) -> int:
    """The side of a square board of ``length`` cells."""
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"{length} cells do not make a square board")
    return side


def to_text(tokens: np.ndarray) -> str:
    """[S] tokens -> rows of ``.`` (dead) and ``#`` (alive); anything else shows as ``?``."""
    tokens = np.asarray(tokens)
    side = side_of(tokens.size)
    symbol = {DEAD: ".", ALIVE: "#"}
    rows = tokens.reshape(side, side)
    return "\n".join("".join(symbol.get(int(t), "?") for t in row) for row in rows)


def parse(text: str, side: int) -> np.ndarray:
    """Rows of ``.`` and ``#``, one a line (or separated by ``/``) -> [side * side] tokens."""
    rows = [row.strip() for row in text.replace("/", "\n").splitlines() if row.strip()]
    if len(rows) != side or any(len(row) != side for row in rows):
        shape = f"{len(rows)} rows of {sorted({len(row) for row in rows})} cells"
        raise ValueError(f"a board is {side} rows of {side} cells, got {shape}")
    for number, row in enumerate(rows, start=1):
        bad = set(row) - set(SYMBOLS)
        if bad:
            raise ValueError(f"row {number} has {''.join(sorted(bad))!r}; cells are . or #")
    return np.array([SYMBOLS[cell] for row in rows for cell in row], dtype=np.uint8)


def symmetry(seed: int, side: int) -> tuple[int, int, int]:
    """The symmetry of the torus a seed picks: a dihedral transform (0..7) and a shift.

    Rotating, reflecting or shifting a board commutes with the rule, so a
    transformed board's next generation is the transformed next generation.
    """
    seed = int(seed)
    return seed % 8, (seed // 8) % side, (seed // (8 * side)) % side


def transform(tokens: np.ndarray, seed: int) -> np.ndarray:
    """[S] tokens of a board -> the board under :func:`symmetry` ``(seed)``, [S]."""
    side = side_of(np.asarray(tokens).size)
    k, down, right = symmetry(seed, side)
    board = dihedral(np.asarray(tokens).reshape(side, side), k)
    return np.roll(board, (down, right), axis=(0, 1)).ravel()


def untransform(tokens: np.ndarray, seed: int) -> np.ndarray:
    """Undo :func:`transform` with the same seed."""
    side = side_of(np.asarray(tokens).size)
    k, down, right = symmetry(seed, side)
    board = np.roll(np.asarray(tokens).reshape(side, side), (-down, -right), axis=(0, 1))
    return dihedral(board, inverse_dihedral(k)).ravel()
