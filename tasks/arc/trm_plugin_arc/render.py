"""Drawing ARC grids in the standard ARC palette, for TensorBoard and the terminal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The ARC palette, colour 0-9: black, blue, red, green, yellow, grey, magenta,
#: orange, azure, maroon.
PALETTE = np.array(
    [
        [0x00, 0x00, 0x00], [0x00, 0x74, 0xD9], [0xFF, 0x41, 0x36], [0x2E, 0xCC, 0x40],
        [0xFF, 0xDC, 0x00], [0xAA, 0xAA, 0xAA], [0xF0, 0x12, 0xBE], [0xFF, 0x85, 0x1B],
        [0x7F, 0xDB, 0xFF], [0x87, 0x0C, 0x25],
    ],
    dtype=np.uint8,
)  # fmt: skip
BACKGROUND = np.array([0x40, 0x40, 0x40], dtype=np.uint8)  # between panels
GRID_LINE = np.array([0x55, 0x55, 0x55], dtype=np.uint8)  # between cells
MISSING = np.array([0xFF, 0xFF, 0xFF], dtype=np.uint8)  # a panel with no grid: white
CELL = 6  # pixels per cell, one of them the grid line


def draw_grid(grid: np.ndarray | None, cell: int = CELL) -> np.ndarray:
    """[h, w] colours -> an RGB image [h*cell+1, w*cell+1, 3]; None -> a white 1x1 panel."""
    if grid is None:
        return np.broadcast_to(MISSING, (cell + 1, cell + 1, 3)).copy()
    grid = np.asarray(grid)
    rows, cols = grid.shape
    image = np.broadcast_to(GRID_LINE, (rows * cell + 1, cols * cell + 1, 3)).copy()
    image[1:, 1:] = np.repeat(np.repeat(PALETTE[grid], cell, axis=0), cell, axis=1)
    image[::cell], image[:, ::cell] = GRID_LINE, GRID_LINE  # one line between cells
    return image


def compose(rows: Sequence[Sequence[np.ndarray]], gap: int = 6) -> np.ndarray:
    """Panels laid out in rows, left-aligned, ``gap`` pixels apart, on the background."""
    heights = [max(p.shape[0] for p in row) for row in rows]
    widths = [sum(p.shape[1] for p in row) + gap * (len(row) - 1) for row in rows]
    height = sum(heights) + gap * (len(rows) + 1)
    width = max(widths) + 2 * gap
    image = np.broadcast_to(BACKGROUND, (height, width, 3)).copy()
    top = gap
    for row, row_height in zip(rows, heights, strict=True):
        left = gap
        for panel in row:
            image[top : top + panel.shape[0], left : left + panel.shape[1]] = panel
            left += panel.shape[1] + gap
        top += row_height + gap
    return image


def draw_task(
    demonstrations: Sequence[tuple[np.ndarray, np.ndarray]],
    test_input: np.ndarray,
    prediction: np.ndarray | None,
    target: np.ndarray | None,
) -> np.ndarray:
    """One picture of a test input: the demonstration pairs on top (input, output, ...),
    then the test input, the prediction and the target."""
    top = [draw_grid(g) for pair in demonstrations for g in pair]
    bottom = [draw_grid(test_input), draw_grid(prediction), draw_grid(target)]
    return compose([top, bottom] if top else [bottom])
