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

Limits. Few puzzles can be told apart from each other's transforms when
almost every cell is given (:func:`most_signatures`: 1 with 80 or 81 givens);
and some kinds are out of this generator's reach (minimal puzzles come out
with about 20 to 30 givens; puzzles with many givens need no guess).
:func:`generate_distinct` tries the first puzzles here (``PILOT_TRIES``) and
stops as soon as the stream shows that the count is out of reach
(:class:`Supply`), after at most ``TRY_BUDGET`` tries.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import cache, partial

import attrs
import numpy as np

from trm_core import mix_seed
from trm_core.taskkit import DRAWS_PER_ITEM, MIN_DRAWS, Shortfall, Supply, Verdict  # noqa: F401

from .parallel import imap_chunks, map_chunks
from .solver import UNITS, random_solution, solve

#: Tries per puzzle before the generator gives up on the requested kind.
MAX_TRIES = 2000
#: The first puzzles of a split are made here, try after try, until PILOT_PUZZLES are
#: made or PILOT_TRIES tried (a few seconds at most); none made: the kind is out of reach.
PILOT_TRIES, PILOT_PUZZLES = 200, 8
#: The most tries one split may take (some hours of work: 1,000 minimal puzzles of the
#: default difficulty take about 5,000).
TRY_BUDGET = 2**20
ROUND = 4096  # puzzles handed to the worker processes at once, at most


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
    low, high = spec.givens if spec.givens is not None else (0, 81)
    for visited, cell in enumerate(order):
        if givens <= target:
            break
        if givens < low or givens - (81 - visited) > high:
            return None  # it can no longer end within the range: the same miss, sooner
        puzzle[cell] = 0
        if _unique(puzzle):
            givens -= 1
        else:
            puzzle[cell] = solution[cell]
    if spec.givens is not None and not spec.givens[0] <= givens <= spec.givens[1]:
        return None
    return puzzle, solution


def attempt(
    spec: PuzzleSpec, seed: int, stop: int = MAX_TRIES, start: int = 0
) -> tuple[Generated | None, int]:
    """The puzzle for ``seed`` if one of its tries ``start`` to ``stop - 1`` (seeded
    (seed, try)) meets ``spec``, else None; and the number of tries taken."""
    for number in range(start, stop):
        made = make_puzzle(spec, random.Random(mix_seed(seed, number)))
        if made is None:
            continue
        puzzle, solution = made
        guesses = solve(puzzle, limit=2).guesses
        if guesses >= spec.min_guesses:
            return Generated(tuple(puzzle), tuple(solution), guesses), number + 1 - start
    return None, max(0, stop - start)


def generate_one(spec: PuzzleSpec, seed: int) -> Generated:
    """The puzzle for ``seed``: tries seeded (seed, try) until one meets ``spec``."""
    made, _ = attempt(spec, seed)
    if made is None:
        raise RuntimeError(
            f"no puzzle met {spec} in {MAX_TRIES} tries (seed {seed}); relax givens or min_guesses"
        )
    return made


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


# -- distinct puzzles, and when there are not enough ---------------------------


# The supply of distinct items, judged: trm_core.taskkit.Supply (shared with Maze).


def most_signatures(low: int, high: int) -> int:
    """An upper bound of the number of :func:`signature`\\ s of puzzles with ``low`` to
    ``high`` givens: how many such puzzles can be told apart from each other's
    transforms. With m cells empty, the pair of row and column parts (each a
    multiset of three bands' multisets of three counts), the box part and the digit
    part (partitions of m into at most 9 parts of at most 9) determine a signature:
    1 with 80 or 81 givens, 24 with 79, 189 with 78, 1,950 with 77."""
    return sum(_signatures(81 - givens) for givens in range(low, high + 1))


@cache
def _signatures(empty: int) -> int:
    if empty > 15:
        return 2**40  # more than any count the generator may be asked for
    bands = [
        (a, b, c) for a in range(10) for b in range(a, 10) for c in range(b, 10)
        if a + b + c <= empty
    ]  # fmt: skip
    sums = [sum(band) for band in bands]
    structures = sum(
        sums[i] + sums[j] + sums[k] == empty
        for i in range(len(bands))
        for j in range(i, len(bands))
        for k in range(j, len(bands))
    )
    parts = _partitions(empty, 9, 9)
    return structures * (structures + 1) // 2 * parts * parts


@cache
def _partitions(total: int, parts: int, largest: int) -> int:
    """Partitions of ``total`` into at most ``parts`` parts of at most ``largest``."""
    if total == 0:
        return 1
    if parts == 0:
        return 0
    return sum(
        _partitions(total - part, parts - 1, part) for part in range(1, min(largest, total) + 1)
    )


def _attempt_chunk(
    spec: PuzzleSpec, items: list[tuple[int, int]]
) -> list[tuple[Generated | None, int]]:
    """:func:`attempt` for each (seed, first try) of ``items`` (a worker's chunk)."""
    return [attempt(spec, seed, MAX_TRIES, start) for seed, start in items]


def generate_distinct(
    spec: PuzzleSpec,
    count: int,
    seed_of: Callable[[int], int],
    avoid: Iterable[Sequence[int]] = (),
    workers: int | None = None,
    progress: str | None = None,
) -> tuple[list[Generated], int]:
    """``count`` puzzles, none sharing a :func:`signature` with another or with a puzzle
    of ``avoid``: the first such of the stream of puzzles for seeds ``seed_of(0)``,
    ``seed_of(1)``... (each as :func:`generate_one` makes it). Returns them and the
    number of puzzles of the stream dropped before the last one kept.

    The first puzzles are made here (``PILOT_TRIES``, ``PILOT_PUZZLES``), the rest
    over ``workers`` processes (default: every core) in rounds. Raises
    :class:`Shortfall` as soon as a :class:`Supply` judges the count out of reach
    (nothing in the pilot's tries, too few distinct puzzles, more than
    ``TRY_BUDGET`` tries), or a puzzle takes more than ``MAX_TRIES`` tries; the
    workers are stopped at once. Memory holds the kept puzzles and signatures.
    """
    workers = workers or os.cpu_count() or 1
    supply = Supply(count, TRY_BUDGET, PILOT_TRIES, min_window=64, min_drawn=8)
    seen = {signature(p) for p in avoid}
    kept: list[Generated] = []
    drawn = 0
    started = shown = time.monotonic()

    def take(results: list[tuple[Generated | None, int]]) -> bool:
        """Add results in stream order; True once ``count`` are kept."""
        nonlocal drawn, shown
        made = new = tries = 0
        for puzzle, used in results:
            tries += used
            if puzzle is None:  # a puzzle missed the kind in all its tries
                supply.record(made, new, tries)
                raise Shortfall(_verdict(supply, "stuck"))
            made += 1
            drawn += 1
            key = signature(puzzle.puzzle)
            if key in seen:
                continue
            seen.add(key)
            kept.append(puzzle)
            new += 1
            if len(kept) == count:
                break
        supply.record(made, new, tries)
        if progress and (time.monotonic() - shown > 5 or len(kept) == count):
            shown = time.monotonic()
            print(f"  {progress}: {len(kept)}/{count} puzzles ({shown - started:.0f}s)",
                  file=sys.stderr, flush=True)  # fmt: skip
        if len(kept) == count:
            return True
        if verdict := supply.verdict():
            raise Shortfall(verdict)
        return False

    # The pilot: try after try here, so that a kind out of reach is refused in seconds.
    index, pilot, tries, resume = 0, [], 0, 0
    while len(pilot) < min(count, PILOT_PUZZLES) and tries < PILOT_TRIES:
        made, used = attempt(spec, seed_of(index), min(MAX_TRIES, PILOT_TRIES - tries))
        tries += used
        if made is None:
            resume = used  # this seed's first tries missed: the workers go on from there
            break
        pilot.append((made, used))
        index += 1
    if pilot and take(pilot):
        return kept, drawn - count
    if resume:
        supply.record(0, 0, resume)  # the tries of the seed left unfinished
        if verdict := supply.verdict():
            raise Shortfall(verdict)

    while True:
        size = min(max(count - len(kept), workers), ROUND)
        items = [(seed_of(i), resume if i == index else 0) for i in range(index, index + size)]
        index, resume = index + size, 0
        # Chunks of some 200 tries at most (a rare kind takes many a puzzle), so that the
        # verdicts come soon; how the work is cut changes nothing in the stream.
        per_puzzle = supply.cost / max(1, supply.drawn[-1])
        chunk = max(1, min(50, size // (workers * 4) or 1, int(200 / per_puzzle)))
        run = partial(_attempt_chunk, spec)
        with contextlib.closing(imap_chunks(run, items, workers, chunk)) as parts:
            for part in parts:
                if take(part):
                    return kept, drawn - count


def _verdict(supply: Supply, kind: str) -> Verdict:
    n, y = supply.drawn[-1], supply.found[-1]
    return Verdict(kind, supply.wanted, y, n, supply.cost, supply.budget, 0)
