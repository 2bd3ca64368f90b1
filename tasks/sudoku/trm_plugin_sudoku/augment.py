"""Sudoku augmentations (those of the TRM paper, arXiv:2510.04871) and their exact inverses.

One augmentation is a digit relabelling (a permutation of 1..9; blanks and PAD
stay), an optional transpose, a permutation of the three bands and of the rows
inside each band, and a permutation of the three stacks and of the columns
inside each stack. The same map applies to puzzle and solution. Everything is
drawn from one integer seed, so the trainer's (seed, puzzle, augmentation
index) picks it again whenever needed: nothing is stored.

On the [81] token sequence, an augmentation is a position gather followed by a
token table: ``out = table[tokens[positions]]``; its inverse is
``inverse_table[tokens][inverse_positions]``.
"""

from __future__ import annotations

import attrs
import numpy as np

from .grid import VOCAB_SIZE


@attrs.frozen(eq=False)
class Augmentation:
    positions: np.ndarray  # [81]: output cell i takes input cell positions[i]
    table: np.ndarray  # [VOCAB_SIZE]: token relabelling (PAD and blank fixed)

    @classmethod
    def from_seed(cls, seed: int) -> Augmentation:
        rng = np.random.default_rng(seed)
        digits = rng.permutation(9)  # digit d+1 -> digits[d]+1
        transpose = bool(rng.integers(2))
        bands, stacks = rng.permutation(3), rng.permutation(3)
        rows = np.concatenate([band * 3 + rng.permutation(3) for band in bands])
        cols = np.concatenate([stack * 3 + rng.permutation(3) for stack in stacks])
        return cls.build(digits, transpose, rows, cols)

    @classmethod
    def build(
        cls, digits: np.ndarray, transpose: bool, rows: np.ndarray, cols: np.ndarray
    ) -> Augmentation:
        """From its parts: a digit permutation of 0..8, a transpose flag, row and column orders.

        The grid is transposed first (if asked), then output cell (r, c) takes
        cell (rows[r], cols[c]) of it, then digits are relabelled.
        """
        source = np.arange(81).reshape(9, 9)
        if transpose:
            source = source.T
        positions = source[np.ix_(rows, cols)].ravel()
        table = np.arange(VOCAB_SIZE)
        table[2:] = np.asarray(digits) + 2  # tokens 2..10 are the digits 1..9
        return cls(positions=positions, table=table)

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        """[..., 81] tokens -> the augmented tokens."""
        return self.table[np.asarray(tokens)[..., self.positions]]

    def invert(self, tokens: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply` on [..., 81] tokens."""
        inverse_table = np.argsort(self.table)
        inverse_positions = np.argsort(self.positions)
        return inverse_table[np.asarray(tokens)][..., inverse_positions]
