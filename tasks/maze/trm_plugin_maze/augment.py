"""The 8 dihedral transforms of a square maze (TRM_SPEC section 4), with exact inverses.

Transform k (0..7) rotates the grid a quarter turn counter-clockwise k % 4
times, then transposes it if k >= 4; 0 is the identity. On a [side*side]
token sequence a transform is a gather of positions, and its inverse the
gather by the inverse permutation. Walls, S, G and path cells move together,
so a shortest path stays a shortest path of the transformed maze.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .grid import side_of

TRANSFORMS = 8


@lru_cache(maxsize=64)
def positions(side: int, transform: int) -> np.ndarray:
    """[side*side]: output cell i takes input cell positions[i]."""
    if not 0 <= transform < TRANSFORMS:
        raise ValueError(f"transform {transform} is not in 0..7")
    grid = np.rot90(np.arange(side * side).reshape(side, side), transform % 4)
    if transform >= 4:
        grid = grid.T
    out = np.ascontiguousarray(grid).ravel()
    out.setflags(write=False)
    return out


def transform_of(seed: int) -> int:
    """The transform an augmentation seed picks (seeds are well mixed: uniform over 8)."""
    return int(seed) % TRANSFORMS


def apply(tokens: np.ndarray, transform: int) -> np.ndarray:
    """[..., side*side] tokens -> transformed tokens."""
    tokens = np.asarray(tokens)
    return tokens[..., positions(side_of(tokens.shape[-1]), transform)]


def invert(tokens: np.ndarray, transform: int) -> np.ndarray:
    """Undo :func:`apply` on [..., side*side] tokens."""
    tokens = np.asarray(tokens)
    order = positions(side_of(tokens.shape[-1]), transform)
    return tokens[..., np.argsort(order)]


def canonical(tokens: np.ndarray) -> list[bytes]:
    """One key per [N, side*side] maze, equal for a maze and all its transforms."""
    tokens = np.asarray(tokens, dtype=np.uint8)
    views = [apply(tokens, k) for k in range(TRANSFORMS)]
    return [min(view[i].tobytes() for view in views) for i in range(len(tokens))]
