"""The 8 dihedral transforms of a square maze, with exact inverses.

The transforms and their numbering are the task kit's (:data:`trm_core.DIHEDRAL_NAMES`:
0 the identity, 1-3 the rotations counter-clockwise, 4-7 the reflections), the
same as ARC's. On a [side*side] token sequence a transform is a gather of
positions, and its inverse the gather by the inverse transform. Walls, S, G and
path cells move together, so a shortest path stays a shortest path of the
transformed maze. They serve ``data.augmentations`` up to 7 (the ``paper``
preset uses none) and the check that no test maze is a transform of a training
maze.
"""

from __future__ import annotations

import numpy as np

from trm_core import DIHEDRAL_NAMES, dihedral_flat, dihedral_permutation

TRANSFORMS = len(DIHEDRAL_NAMES)


def _checked(transform: int) -> int:
    if not 0 <= transform < TRANSFORMS:
        raise ValueError(f"transform {transform} is not in 0..7")
    return transform


def positions(side: int, transform: int) -> np.ndarray:
    """[side*side]: output cell i takes input cell positions[i]."""
    return dihedral_permutation(side, _checked(transform))


def transform_of(seed: int) -> int:
    """The transform an augmentation seed picks (seeds are well mixed: uniform over 8)."""
    return int(seed) % TRANSFORMS


def apply(tokens: np.ndarray, transform: int) -> np.ndarray:
    """[..., side*side] tokens -> transformed tokens."""
    return dihedral_flat(tokens, _checked(transform))


def invert(tokens: np.ndarray, transform: int) -> np.ndarray:
    """Undo :func:`apply` on [..., side*side] tokens."""
    return dihedral_flat(tokens, _checked(transform), inverse=True)


def canonical(tokens: np.ndarray) -> list[bytes]:
    """One key per [N, side*side] maze, equal for a maze and all its transforms."""
    tokens = np.asarray(tokens, dtype=np.uint8)
    views = [apply(tokens, k) for k in range(TRANSFORMS)]
    return [min(view[i].tobytes() for view in views) for i in range(len(tokens))]
