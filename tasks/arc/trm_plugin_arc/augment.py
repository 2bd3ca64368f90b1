"""ARC augmentations (the TRM paper's): a dihedral transform and a colour permutation.

An :class:`Augmentation` is one of the 8 dihedral transforms of the grid plane
together with a permutation of colours 1-9 (colour 0, the background, stays).
Each task gets a fixed, ordered set of distinct augmentations, the identity
first, drawn deterministically from a seed (:func:`augmentation_set`): the same
set on every rank, every resume and every rebuild. Translation (a random offset
on the canvas) is drawn separately for training examples. The dihedral
transforms and their numbering (stored in built data sets) are the task kit's,
:data:`trm_core.DIHEDRAL_NAMES`, which follow the paper's reference code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import permutations

import attrs
import numpy as np

from trm_core import DIHEDRAL_NAMES, INVERSE_DIHEDRAL, dihedral

from .grid import COLOURS

#: Names of the 8 dihedral transforms, by id, and the inverse of each (the task kit's).
DIHEDRAL = DIHEDRAL_NAMES
INVERSE = INVERSE_DIHEDRAL


@attrs.frozen
class Augmentation:
    """A dihedral transform ``k`` and a colour map ``colours`` (``colours[0] == 0``)."""

    k: int = 0
    colours: tuple[int, ...] = tuple(range(COLOURS))

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.k < len(DIHEDRAL):
            raise ValueError(f"dihedral transform {self.k} is not 0-7")
        if self.colours[0] != 0 or sorted(self.colours) != list(range(COLOURS)):
            raise ValueError(f"{self.colours} is not a permutation of 0-9 fixing 0")

    def apply(self, grid: np.ndarray) -> np.ndarray:
        """The augmented grid ([h, w] colours -> [h', w'] colours)."""
        return np.ascontiguousarray(transform(grid, self.k, np.array(self.colours, np.uint8)))

    def invert(self, grid: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply`."""
        inverse = np.argsort(np.asarray(self.colours)).astype(np.uint8)
        return np.ascontiguousarray(inverse[dihedral(np.asarray(grid), INVERSE[self.k])])

    def to_row(self) -> np.ndarray:
        """``[k, colours...]`` (11 int8), the on-disk form."""
        return np.array([self.k, *self.colours], dtype=np.int8)

    @classmethod
    def from_row(cls, row: np.ndarray) -> Augmentation:
        return cls(int(row[0]), tuple(int(c) for c in row[1:]))

    def describe(self) -> str:
        colours = "".join(str(c) for c in self.colours)
        return f"{DIHEDRAL[self.k]}, colours 0123456789 -> {colours}"


IDENTITY = Augmentation()


def transform(grid: np.ndarray, k: int, colours: np.ndarray) -> np.ndarray:
    """:meth:`Augmentation.apply` from its parts (``colours`` a uint8 [10] map), as a view
    where it can be: the trainer's per-row path."""
    return dihedral(colours[np.asarray(grid)], k)


def random_augmentation(rng: np.random.Generator) -> Augmentation:
    """One of the 8 x 9! augmentations, uniformly."""
    k = int(rng.integers(len(DIHEDRAL)))
    return Augmentation(k, (0, *(int(c) + 1 for c in rng.permutation(COLOURS - 1))))


def _fingerprint(grids: Sequence[np.ndarray], augmentation: Augmentation) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for grid in grids:
        out = augmentation.apply(grid)
        digest.update(np.array(out.shape, dtype=np.int32).tobytes())
        digest.update(out.tobytes())
    return digest.digest()


def augmentation_set(grids: Sequence[np.ndarray], count: int, seed: int) -> list[Augmentation]:
    """Up to ``count`` augmentations of a task whose grids are ``grids``, none repeated.

    The identity comes first. Two augmentations that turn the task's grids into
    the same grids are duplicates (colours the task never uses, or a symmetric
    task); only the first is kept. A task using c colours besides 0 has at most
    8 x 9!/(9-c)! distinct ones: when that is at most 2 x ``count``, every
    candidate is enumerated in a seeded order (so few-colour tasks get all they
    have); otherwise candidates are drawn at random until ``count`` distinct ones
    are found (duplicates are then rare). Deterministic in (grids, count, seed).
    """
    rng = np.random.default_rng(seed)
    used = sorted({int(c) for grid in grids for c in np.unique(grid)} - {0})
    keep, seen = [IDENTITY], {_fingerprint(grids, IDENTITY)}

    def consider(augmentation: Augmentation) -> None:
        key = _fingerprint(grids, augmentation)
        if key not in seen:
            seen.add(key)
            keep.append(augmentation)

    distinct_bound = len(DIHEDRAL) * _falling(COLOURS - 1, len(used))
    if distinct_bound <= 2 * count:
        # Every image of the used colours, with the others following in order.
        candidates = []
        for k in range(len(DIHEDRAL)):
            for image in permutations(range(1, COLOURS), len(used)):
                candidates.append((k, image))
        for index in rng.permutation(len(candidates)):
            if len(keep) >= count:
                break
            k, image = candidates[index]
            consider(Augmentation(k, _complete_map(used, image)))
    else:
        for _ in range(20 * count):
            if len(keep) >= count:
                break
            consider(random_augmentation(rng))
    return keep[:count]


def _falling(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out *= n - i
    return out


def _complete_map(used: Sequence[int], image: Sequence[int]) -> tuple[int, ...]:
    """The colour map sending ``used[i]`` to ``image[i]``, the other colours in order."""
    colours = [0] * COLOURS
    for source, target in zip(used, image, strict=True):
        colours[source] = target
    free = iter(c for c in range(1, COLOURS) if c not in set(image))
    for source in range(1, COLOURS):
        if source not in used:
            colours[source] = next(free)
    return tuple(colours)


def translation(shapes: Sequence[tuple[int, int]], canvas: int, seed: int) -> tuple[int, int]:
    """The offset drawn from ``seed`` (a well-mixed 63-bit integer, as ``mix_seed`` makes)
    at which grids of every shape in ``shapes`` fit the canvas: one offset for an
    input and its output. Rows come from the seed's low 32 bits, columns from the
    high ones (a modulo of so few values is uniform to within 1e-8)."""
    rows = max(shape[0] for shape in shapes)
    cols = max(shape[1] for shape in shapes)
    low, high = seed & 0xFFFFFFFF, seed >> 32
    return low % (canvas - rows + 1), high % (canvas - cols + 1)
