"""ARC grids on the model's canvas (as the TRM paper's reference code encodes them).

Tokens: PAD 0, end-of-grid marker 1, colour c -> c + 2 (vocabulary 12). A grid
of h x w colours is placed on a ``canvas`` x ``canvas`` square (30 for ARC) at
an offset (r, c); the marker fills the row just below it (columns c..c+w-1) and
the column just right of it (rows r..r+h-1), where those lie on the canvas.
Everything else is PAD. The marker is what tells a decoder, and the model, the
grid's size.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

import numpy as np

PAD, MARKER, COLOUR0 = 0, 1, 2
COLOURS = 10
VOCAB_SIZE = COLOUR0 + COLOURS  # 12
MAX_SIDE = 30
DIGITS = "0123456789"


class GridError(ValueError):
    """A grid that is not a rectangle of colours 0-9 of at most 30 x 30 cells."""


def check_grid(value: Any, max_side: int = MAX_SIDE) -> np.ndarray:
    """A JSON grid (a list of rows of ints) as a uint8 array, or GridError saying why not."""
    if not isinstance(value, list) or not value:
        raise GridError("a grid must be a non-empty list of rows")
    if len(value) > max_side:
        raise GridError(f"{len(value)} rows, more than {max_side}")
    width = None
    for number, row in enumerate(value, start=1):
        if not isinstance(row, list) or not row:
            raise GridError(f"row {number} is not a non-empty list of colours")
        if width is None:
            width = len(row)
            if width > max_side:
                raise GridError(f"{width} columns, more than {max_side}")
        elif len(row) != width:
            raise GridError(f"ragged rows: row {number} has {len(row)} cells, row 1 has {width}")
        for column, cell in enumerate(row, start=1):
            if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell < COLOURS:
                shown = reprlib.repr(cell)  # a nested list or a long string, cut short
                raise GridError(f"row {number}, column {column}: colour {shown} is not 0-9")
    return np.array(value, dtype=np.uint8)


def encode(
    grid: np.ndarray, canvas: int = MAX_SIDE, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """[h, w] colours -> [canvas * canvas] tokens, the grid at ``offset`` with its markers."""
    grid = np.asarray(grid)
    rows, cols = grid.shape
    top, left = offset
    if not (top >= 0 and left >= 0 and top + rows <= canvas and left + cols <= canvas):
        raise GridError(f"a {rows}x{cols} grid at {offset} does not fit a {canvas}x{canvas} canvas")
    tokens = np.zeros((canvas, canvas), dtype=np.uint8)
    tokens[top : top + rows, left : left + cols] = grid + COLOUR0
    if top + rows < canvas:
        tokens[top + rows, left : left + cols] = MARKER
    if left + cols < canvas:
        tokens[top : top + rows, left + cols] = MARKER
    return tokens.reshape(-1)


def _square(tokens: np.ndarray) -> np.ndarray:
    tokens = np.asarray(tokens)
    side = round(np.sqrt(tokens.size))
    if side * side != tokens.size:
        raise GridError(f"{tokens.size} tokens are not a square canvas")
    return tokens.reshape(side, side)


def decode(tokens: np.ndarray) -> np.ndarray:
    """The grid of an encoded canvas, wherever it was placed: the inverse of :func:`encode`.

    The first colour cell in reading order is the grid's top-left corner (nothing
    is above or left of a grid); its height and width are the runs of colours
    down and right from there, which the markers (or the canvas edge) end.
    """
    canvas = _square(tokens)
    colour = canvas >= COLOUR0
    if not colour.any():
        raise GridError("the canvas holds no grid")
    top, left = np.unravel_index(int(np.argmax(colour)), colour.shape)
    down, right = colour[top:, left], colour[top, left:]
    rows = int(np.argmin(down)) if not down.all() else len(down)
    cols = int(np.argmin(right)) if not right.all() else len(right)
    return (canvas[top : top + rows, left : left + cols] - COLOUR0).astype(np.uint8)


def crop(tokens: np.ndarray) -> np.ndarray | None:
    """A model's answer at the canvas origin, read as the evaluator reads it.

    The answer is the largest rectangle of colour cells anchored at the top-left
    corner whose every row is a run of colours from column 0 (each row's run
    limits the width of the rows below it). None when the corner is not a colour.
    """
    return crop_many(np.asarray(tokens)[None])[0]


def crop_many(tokens: np.ndarray) -> list[np.ndarray | None]:
    """:func:`crop` of each of [N, canvas * canvas] predictions, vectorised."""
    tokens = np.asarray(tokens)
    count = len(tokens)
    if count == 0:
        return []
    side = round(np.sqrt(tokens.shape[1]))
    canvas = tokens.reshape(count, side, side)
    colour = canvas >= COLOUR0
    runs = np.cumprod(colour, axis=2).sum(axis=2)  # [N, rows]: colours from column 0
    widths = np.minimum.accumulate(runs, axis=1)  # a row is no wider than those above
    areas = widths * np.arange(1, side + 1)
    best = np.argmax(areas, axis=1)  # first row of the largest area
    grids: list[np.ndarray | None] = []
    for n in range(count):
        rows, cols = int(best[n]) + 1, int(widths[n, best[n]])
        if cols == 0:
            grids.append(None)
        else:
            grids.append((canvas[n, :rows, :cols] - COLOUR0).astype(np.uint8))
    return grids


def parse_grid(text: str) -> np.ndarray:
    """Rows of digits 0-9 (spaces and commas between them ignored), or a JSON grid.

    Only the ASCII digits are colours (``str.isdigit`` and ``int`` also take '٣' or '²').
    """
    if text.lstrip().startswith("["):
        try:
            return check_grid(json.loads(text))
        except json.JSONDecodeError as error:
            raise GridError(f"not a JSON grid ({error})") from None
        except RecursionError:
            raise GridError("not a JSON grid (nested too deep)") from None
    rows = []
    for number, line in enumerate(text.strip().splitlines(), start=1):
        cells = [ch for ch in line if ch not in " \t,"]
        bad = [ch for ch in cells if ch not in DIGITS]
        if bad:
            raise GridError(f"row {number}: {bad[0]!r} is not a colour 0-9")
        if cells:
            rows.append([int(ch) for ch in cells])
    if not rows:
        raise GridError("no grid: expected rows of digits 0-9")
    return check_grid(rows)


def to_text(grid: np.ndarray | None) -> str:
    """A grid as rows of digits (``(no grid)`` for None)."""
    if grid is None:
        return "(no grid)"
    return "\n".join("".join(str(int(c)) for c in row) for row in np.asarray(grid))
