"""Drawing a maze as an RGB image (for TensorBoard).

Walls are dark grey and open cells white; S is green and G red. The model's
path cells are blue where the target path has them too and orange where it
does not; target path cells the model left out are pale blue. A valid path
that takes another tie than the label shows as orange and pale blue cells of
equal number.
"""

from __future__ import annotations

import numpy as np

from .grid import GOAL, PATH, START, WALL, side_of

COLOURS = {
    "wall": (50, 50, 50),
    "open": (255, 255, 255),
    "start": (40, 170, 70),
    "goal": (215, 45, 45),
    "path": (40, 100, 230),  # predicted and in the target
    "extra": (245, 150, 30),  # predicted, not in the target
    "missed": (185, 210, 250),  # in the target, not predicted
    "line": (200, 200, 200),
}
IMAGE = 300  # about this many pixels a side


def draw_maze(inputs, prediction, target) -> np.ndarray:
    """[H, W, 3] uint8 of the maze with the predicted and target paths compared.

    Args:
        inputs, prediction, target: [side*side] tokens.
    """
    inputs, prediction, target = (np.asarray(a) for a in (inputs, prediction, target))
    side = side_of(len(inputs))
    cell = max(4, IMAGE // side)
    colour = np.empty((side * side, 3), dtype=np.uint8)
    colour[:] = COLOURS["open"]
    predicted, wanted = prediction == PATH, target == PATH
    colour[wanted & ~predicted] = COLOURS["missed"]
    colour[predicted & ~wanted] = COLOURS["extra"]
    colour[predicted & wanted] = COLOURS["path"]
    colour[inputs == WALL] = COLOURS["wall"]
    colour[inputs == START] = COLOURS["start"]
    colour[inputs == GOAL] = COLOURS["goal"]
    image = np.repeat(np.repeat(colour.reshape(side, side, 3), cell, 0), cell, 1)
    if cell >= 8:  # thin grid lines between open cells
        image[::cell, :] = np.minimum(image[::cell, :], COLOURS["line"])
        image[:, ::cell] = np.minimum(image[:, ::cell], COLOURS["line"])
    return np.ascontiguousarray(image)
