"""Where Sudoku puzzles come from: Sudoku-Extreme CSV files, plain puzzle lists, the Hub.

Every reader returns :class:`Puzzles` (digits, 0 = blank) and fails on the
first bad row with :class:`PuzzleFileError`, naming the file, the line and the
reason: wrong length, bad characters (only ASCII 1-9 are digits), givens that
repeat a digit in a row, column or box, no solution, several solutions, or an
answer that breaks a rule or changes a given. A file that is missing, a
folder, empty or not UTF-8 text fails the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from trm_core import DataError, csv_rows, hub_file, read_text_file

from .check import invalid_givens
from .grid import keeps_givens, parse_line, valid_solutions
from .parallel import map_chunks
from .solver import solve

#: The Hugging Face dataset of the paper's Sudoku-Extreme experiments.
HUB_REPO = "sapientinc/sudoku-extreme"
CSV_HEADER = ["source", "question", "answer", "rating"]
_RATING = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also reads '٣' and '1_0'


class PuzzleFileError(DataError):
    """A puzzle file with a bad row (the message names file, line and reason)."""


@attrs.frozen(eq=False)
class Puzzles:
    puzzles: np.ndarray  # [N, 81] digits, 0 = blank
    solutions: np.ndarray  # [N, 81] digits
    lines: np.ndarray  # [N] the line each puzzle came from (1-based)
    ratings: np.ndarray | None = None  # [N] the file's difficulty rating, where it has one
    guesses: np.ndarray | None = None  # [N] the solver's guess counts, where it was run

    def __len__(self) -> int:
        return len(self.puzzles)

    def take(self, index: np.ndarray) -> Puzzles:
        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[index]

        return Puzzles(
            self.puzzles[index], self.solutions[index], self.lines[index],
            pick(self.ratings), pick(self.guesses),
        )  # fmt: skip


def _solve_chunk(puzzles: list[list[int]]) -> list[tuple[int, list[int] | None, int]]:
    out = []
    for puzzle in puzzles:
        result = solve(puzzle, limit=2)
        out.append((result.count, result.solutions[0] if result.count else None, result.guesses))
    return out


def solve_all(
    puzzles: list[list[int]], workers: int | None = None
) -> list[tuple[int, list | None, int]]:
    """(solutions found up to 2, the first solution, guesses) for every puzzle, over all cores."""
    if len(puzzles) < 200:
        return _solve_chunk(puzzles)
    return map_chunks(_solve_chunk, puzzles, workers)


def solve_unique(
    source: str | os.PathLike, puzzles: list[list[int]], lines: Sequence[int], workers: int | None
) -> tuple[list[list[int]], list[int]]:
    """Each puzzle's unique solution and guess count; the first that has none or several
    fails naming ``source`` and its line."""
    solutions, guesses = [], []
    for (count, solution, work), line in zip(solve_all(puzzles, workers), lines, strict=True):
        if count != 1:
            reason = "no solution" if count == 0 else "several solutions"
            raise PuzzleFileError(f"{source}, line {line}: the puzzle has {reason}")
        solutions.append(solution)
        guesses.append(work)
    return solutions, guesses


def parse_lines(
    source: str | os.PathLike, lines: Iterable[str]
) -> tuple[list[list[int]], list[int]]:
    """Puzzles of a plain list (one a line; blank and ``#`` lines skipped) and their line
    numbers; a bad or missing puzzle fails naming ``source`` and the line."""
    puzzles, numbers = [], []
    for number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            puzzle = parse_line(text)
        except ValueError as error:
            raise PuzzleFileError(f"{source}, line {number}: {error}") from None
        reason = invalid_givens(puzzle)
        if reason is not None:
            raise PuzzleFileError(f"{source}, line {number}: {reason}")
        puzzles.append(puzzle)
        numbers.append(number)
    if not puzzles:
        raise PuzzleFileError(f"{source}: no puzzles")
    return puzzles, numbers


def read_csv(
    path: str | os.PathLike,
    *,
    min_difficulty: int | None = None,
    verify: bool = True,
    workers: int | None = None,
) -> Puzzles:
    """A CSV in the Sudoku-Extreme format: ``source,question,answer,rating``.

    Args:
        path: the file (a header row naming those columns comes first).
        min_difficulty: keep only rows rated at least this (as the reference recipe).
        verify: also prove with the solver that each puzzle has exactly one
            solution (the given answer is always checked against the rules and
            the givens; proving uniqueness costs a few ms a puzzle).
    """
    puzzles, solutions, lines, ratings = [], [], [], []
    for line, row in csv_rows(path, CSV_HEADER, PuzzleFileError):
        _, question, answer, rating_text = row
        if not _RATING.fullmatch(rating_text.strip()):
            raise PuzzleFileError(f"{path}, line {line}: rating {rating_text!r} is not an integer")
        rating = int(rating_text)
        if min_difficulty is not None and rating < min_difficulty:
            continue
        for name, text in (("question", question), ("answer", answer)):
            try:
                digits = parse_line(text)
            except ValueError as error:
                raise PuzzleFileError(f"{path}, line {line}: {name}: {error}") from None
            (puzzles if name == "question" else solutions).append(digits)
        lines.append(line)
        ratings.append(rating)
    if not puzzles:
        raise PuzzleFileError(f"{path}: no puzzles (after min_difficulty={min_difficulty})")
    found = Puzzles(
        np.asarray(puzzles, dtype=np.uint8),
        np.asarray(solutions, dtype=np.uint8),
        np.asarray(lines),
        np.asarray(ratings),
    )
    valid = valid_solutions(found.solutions)
    kept = keeps_givens(found.puzzles, found.solutions)
    for index in np.flatnonzero(~(valid & kept))[:1]:
        reason = invalid_givens(found.puzzles[index].tolist())  # a valid answer rules it out
        if reason is None:
            reason = (
                "the answer is not a complete valid grid"
                if not valid[index]
                else "the answer is inconsistent with the givens"
            )
        raise PuzzleFileError(f"{path}, line {found.lines[index]}: {reason}")
    if verify:
        _, guesses = solve_unique(path, found.puzzles.tolist(), found.lines, workers)
        found = attrs.evolve(found, guesses=np.asarray(guesses))
    return found


def read_list(path: str | os.PathLike, workers: int | None = None) -> Puzzles:
    """A plain puzzle list: one 81-character puzzle a line (``.`` or ``0`` blank).

    Blank lines and lines starting with ``#`` are skipped. Every puzzle is
    solved by the solver and must have exactly one solution.
    """
    path = Path(path)
    puzzles, lines = parse_lines(path, read_text_file(path, PuzzleFileError).splitlines())
    solutions, guesses = solve_unique(path, puzzles, lines, workers)
    return Puzzles(
        np.asarray(puzzles, dtype=np.uint8),
        np.asarray(solutions, dtype=np.uint8),
        np.asarray(lines),
        guesses=np.asarray(guesses),
    )


def hub_csv(split: str, repo: str = HUB_REPO) -> Path:
    """Download ``<split>.csv`` of a Hub dataset (needs the ``hub`` extra and the network)."""
    return hub_file(repo, f"{split}.csv", "trm-plugin-sudoku")
