"""An offline generator of unique-solution Sudoku puzzles.

Each puzzle starts from a random solved grid and loses its clues one at a time,
in a random order, keeping a removal only while the puzzle still has exactly
one solution. A full pass over the 81 cells leaves a *minimal* puzzle (no clue
can be removed without losing uniqueness: a clue that was needed when there
were more clues is still needed with fewer). Stopping the pass once a target
number of givens is reached gives easier, non-minimal puzzles instead.

A puzzle is kept only when its difficulty (the solver's guess count, see
:func:`trm_plugin_sudoku.solver.rate`) reaches ``min_guesses``. Everything is
drawn from ``(seed, index)``, so the same options give the same puzzles, in
one process or many.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterable, Sequence
from functools import partial

import attrs
import numpy as np

from trm_core import mix_seed

from .parallel import map_chunks
from .solver import UNITS, random_solution, solve

#: Tries per puzzle before the generator gives up on the requested kind.
MAX_TRIES = 2000


@attrs.frozen
class PuzzleSpec:
    """What kind of puzzle to make."""

    givens: tuple[int, int] | None = None  # inclusive range; None: as few as minimality gives
    minimal: bool = True  # remove every removable clue; False: stop at a count in ``givens``
    min_guesses: int = 0  # difficulty floor

    def __attrs_post_init__(self) -> None:
        if self.givens is not None:
            low, high = self.givens
            if not 17 <= low <= high <= 81:
                raise ValueError(f"givens must be a range within 17..81, got {list(self.givens)}")
        if not self.minimal and self.givens is None:
            raise ValueError("a non-minimal puzzle needs a givens range to stop at")
        if self.min_guesses < 0:
            raise ValueError(f"min_guesses must be >= 0, got {self.min_guesses}")


@attrs.frozen
class Generated:
    puzzle: tuple[int, ...]
    solution: tuple[int, ...]
    guesses: int


def _unique(grid: list[int]) -> bool:
    return solve(grid, limit=2).count == 1


def make_puzzle(spec: PuzzleSpec, rng: random.Random) -> tuple[list[int], list[int]] | None:
    """One unique-solution puzzle and its solution, or None if this try missed ``spec``."""
    solution = random_solution(rng)
    puzzle = solution[:]
    # A minimal puzzle takes the full pass; otherwise stop at a target drawn from the range.
    target = 0 if spec.minimal or spec.givens is None else rng.randint(*spec.givens)
    givens = 81
    order = list(range(81))
    rng.shuffle(order)
    for cell in order:
        if givens <= target:
            break
        puzzle[cell] = 0
        if _unique(puzzle):
            givens -= 1
        else:
            puzzle[cell] = solution[cell]
    if spec.givens is not None and not spec.givens[0] <= givens <= spec.givens[1]:
        return None
    return puzzle, solution


def generate_one(spec: PuzzleSpec, seed: int) -> Generated:
    """The puzzle for ``seed``: tries seeded (seed, try) until one meets ``spec``."""
    for attempt in range(MAX_TRIES):
        made = make_puzzle(spec, random.Random(mix_seed(seed, attempt)))
        if made is None:
            continue
        puzzle, solution = made
        guesses = solve(puzzle, limit=2).guesses
        if guesses >= spec.min_guesses:
            return Generated(tuple(puzzle), tuple(solution), guesses)
    raise RuntimeError(
        f"no puzzle met {spec} in {MAX_TRIES} tries (seed {seed}); relax givens or min_guesses"
    )


def _generate_chunk(spec: PuzzleSpec, seeds: list[int]) -> list[Generated]:
    return [generate_one(spec, seed) for seed in seeds]


def generate(
    spec: PuzzleSpec,
    seeds: Sequence[int],
    workers: int | None = None,
    progress: str | None = None,
) -> list[Generated]:
    """One puzzle per seed, in order, over ``workers`` processes (default: all cores).

    ``progress``: a label to print progress lines under (to stderr), or None.
    """
    started = last_report = time.monotonic()

    def report(done: int) -> None:
        nonlocal last_report
        now = time.monotonic()
        if progress and (done == len(seeds) or now - last_report > 5):
            print(
                f"  {progress}: {done}/{len(seeds)} puzzles ({now - started:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
            last_report = now

    workers = workers or os.cpu_count() or 1
    chunk = max(1, min(50, len(seeds) // (workers * 4) or 1))
    return map_chunks(partial(_generate_chunk, spec), seeds, workers, chunk, done=report)


# -- telling puzzles apart up to the augmentation group -----------------------------


def signature(puzzle: Sequence[int]) -> tuple:
    """A fingerprint that every transform of ``puzzle`` shares.

    Invariant under digit relabelling, transposition, band/row and
    stack/column permutations (the training augmentations): two puzzles
    with different signatures are certainly not transforms of each other.
    Used to keep any transform of a training puzzle out of the test set.
    """
    grid = np.asarray(puzzle).reshape(9, 9) != 0
    rows, cols = grid.sum(1), grid.sum(0)
    row_part = tuple(sorted(tuple(sorted(rows[b * 3 : b * 3 + 3])) for b in range(3)))
    col_part = tuple(sorted(tuple(sorted(cols[s * 3 : s * 3 + 3])) for s in range(3)))
    boxes = grid.reshape(3, 3, 3, 3).sum((1, 3))  # [band, stack] givens per box
    box_part = tuple(sorted(int(v) for v in boxes.ravel()))
    digits = np.bincount(np.asarray(puzzle)[np.asarray(puzzle) > 0], minlength=10)[1:]
    digit_part = tuple(sorted(int(v) for v in digits))
    unit_part = tuple(sorted(int(grid.ravel()[unit].sum()) for unit in UNITS))
    return (tuple(sorted([row_part, col_part])), box_part, digit_part, unit_part)


def disjoint(
    kept: Iterable[Sequence[int]], candidates: Iterable[Sequence[int]]
) -> tuple[list[int], int]:
    """Indices of ``candidates`` that share no signature with ``kept`` or each other.

    Returns (indices kept, number dropped).
    """
    seen = {signature(p) for p in kept}
    out, dropped = [], 0
    for index, puzzle in enumerate(candidates):
        sig = signature(puzzle)
        if sig in seen:
            dropped += 1
            continue
        seen.add(sig)
        out.append(index)
    return out, dropped
