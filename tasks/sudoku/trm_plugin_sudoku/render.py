"""Drawing a Sudoku board as an RGB image (for TensorBoard), with no imaging library.

Digits are drawn from a built-in 5x7 bitmap font. Colours tell cells apart:
givens in black, digits the model filled in correctly in blue, wrong digits in
red on a pink cell.
"""

from __future__ import annotations

import numpy as np

from .grid import to_digits

GLYPHS = {
    1: ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    2: (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    3: ("####.", "....#", "....#", ".###.", "....#", "....#", "####."),
    4: ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    5: ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    6: (".###.", "#....", "#....", "####.", "#...#", "#...#", ".###."),
    7: ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    8: (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    9: (".###.", "#...#", "#...#", ".####", "....#", "....#", ".###."),
}
FONT = {d: np.array([[ch == "#" for ch in row] for row in rows]) for d, rows in GLYPHS.items()}

GIVEN = (20, 20, 20)
FILLED = (30, 90, 220)
WRONG = (210, 30, 30)
WRONG_BACKGROUND = (255, 215, 215)
BACKGROUND = (255, 255, 255)
THIN, THICK = (190, 190, 190), (40, 40, 40)
COLOURS = {"given": GIVEN, "filled": FILLED, "wrong": WRONG}

CELL, SCALE = 24, 3  # pixels per cell; glyph pixels are SCALE x SCALE


def draw_board(inputs, prediction, target) -> np.ndarray:
    """[H, W, 3] uint8: the givens, the model's digits, and its mistakes marked.

    Args:
        inputs, prediction, target: [81] tokens (the puzzle, the model's answer,
            the solution). A blank left in the prediction is drawn as a wrong cell.
    """
    given = to_digits(inputs)
    guess = to_digits(prediction)
    truth = to_digits(target)
    size = 9 * CELL + 1
    image = np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
    for cell in range(81):
        r, c = divmod(cell, 9)
        top, left = r * CELL, c * CELL
        if given[cell]:
            digit, colour = given[cell], GIVEN
        else:
            digit = guess[cell]
            colour = FILLED if digit and digit == truth[cell] else WRONG
            if colour == WRONG:
                image[top + 1 : top + CELL, left + 1 : left + CELL] = WRONG_BACKGROUND
        if digit:
            glyph = np.kron(FONT[int(digit)], np.ones((SCALE, SCALE), dtype=bool))
            gy, gx = (CELL - glyph.shape[0]) // 2 + 1, (CELL - glyph.shape[1]) // 2 + 1
            patch = image[
                top + gy : top + gy + glyph.shape[0], left + gx : left + gx + glyph.shape[1]
            ]
            patch[glyph] = colour
    for i in range(10):
        colour = THICK if i % 3 == 0 else THIN
        image[i * CELL, :] = colour
        image[:, i * CELL] = colour
    for i in (0, 3, 6, 9):  # thick lines are two pixels wide inside the image
        image[min(i * CELL + 1, size - 1), :] = THICK
        image[:, min(i * CELL + 1, size - 1)] = THICK
    return image
