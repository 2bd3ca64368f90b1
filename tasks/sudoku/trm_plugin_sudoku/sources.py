"""Where Sudoku puzzles come from: Sudoku-Extreme CSV files, plain puzzle lists, the Hub.

Every reader returns :class:`Puzzles` (digits, 0 = blank) and fails on the
first bad row with :class:`PuzzleFileError`, naming the file, the line and the
reason: wrong length, bad characters (only ASCII 1-9 are digits), givens that
repeat a digit in a row, column or box, no solution, several solutions, or an
answer that breaks a rule or changes a given. A file that is missing, a
folder, empty or not UTF-8 text fails the same way. :func:`read_file` reads
either format, telling them apart by their content (``trm-eval --data FILE``).
"""

from __future__ import annotations

import csv
import io
import os
import re
import reprlib
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
#: The formats :func:`read_file` reads, as its errors name them.
FORMATS = (
    "a Sudoku-Extreme CSV (header source,question,answer,rating) or a puzzle list "
    "(one 81-character puzzle a line, '.' or '0' blank)"
)
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
        after = "" if min_difficulty is None else f" (after min_difficulty={min_difficulty})"
        raise PuzzleFileError(f"{path}: no puzzles{after}")
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
    return _solved_list(path, read_text_file(path, PuzzleFileError), workers)


def _solved_list(path: Path, text: str, workers: int | None) -> Puzzles:
    """The puzzles of a plain list's ``text``, each with its unique solution."""
    puzzles, lines = parse_lines(path, text.splitlines())
    solutions, guesses = solve_unique(path, puzzles, lines, workers)
    return Puzzles(
        np.asarray(puzzles, dtype=np.uint8),
        np.asarray(solutions, dtype=np.uint8),
        np.asarray(lines),
        guesses=np.asarray(guesses),
    )


def read_file(
    path: str | os.PathLike, *, verify: bool = False, workers: int | None = None
) -> Puzzles:
    """A Sudoku-Extreme CSV (:func:`read_csv`) or a plain puzzle list (:func:`read_list`),
    told apart by the file's first line that is neither blank nor a ``#`` comment: the CSV
    header, or a puzzle (81 characters, or only digits and ``.``: a puzzle of another
    length then fails naming its line, as in a list).

    A CSV's answers are checked against the rules and the givens; ``verify`` also proves
    each puzzle unique (off by default, as the presets read Sudoku-Extreme's test split:
    hours for its 423,168 puzzles). A list has no answers: each puzzle is solved, and
    must have exactly one solution.

    Raises :class:`PuzzleFileError` naming the file (and the line) for a file that is
    missing, not UTF-8 text or empty, a first line of neither format (naming both), or
    a bad row of either.
    """
    path = Path(path)
    text = read_text_file(path, PuzzleFileError)
    stripped = (  # newline=None: any line ends
        (n, raw.strip()) for n, raw in enumerate(io.StringIO(text, newline=None), start=1)
    )
    number, line = next(((n, t) for n, t in stripped if t and not t.startswith("#")), (0, ""))
    if not line:
        what = "no puzzles, only comments" if text.strip() else "an empty file"
        raise PuzzleFileError(f"{path}: {what}; expected {FORMATS}")
    try:
        fields = [field.strip() for field in next(csv.reader([line]))]
    except csv.Error:  # a field over the csv module's limit: not the header
        fields = []
    if fields == CSV_HEADER:
        return read_csv(path, verify=verify, workers=workers)
    if len(line) == 81 or set(line) <= set("0123456789."):
        return _solved_list(path, text, workers)
    raise PuzzleFileError(
        f"{path}, line {number}: not a Sudoku file: expected {FORMATS}, got {reprlib.repr(line)}"
    )


def hub_csv(split: str, repo: str = HUB_REPO) -> Path:
    """Download ``<split>.csv`` of a Hub dataset (needs the ``hub`` extra and the network)."""
    return hub_file(repo, f"{split}.csv", "trm-plugin-sudoku")
