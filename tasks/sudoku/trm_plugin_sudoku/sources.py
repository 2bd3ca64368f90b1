"""Where Sudoku puzzles come from: Sudoku-Extreme CSV files, plain puzzle lists, the Hub.

Every reader returns :class:`Puzzles` (digits, 0 = blank) and fails on the
first bad row with :class:`PuzzleFileError`, naming the file, the line and the
reason: wrong length, bad characters, no solution, several solutions, or an
answer that breaks a rule or changes a given.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import attrs
import numpy as np

from trm_core import DataError

from .grid import keeps_givens, parse_line, valid_solutions
from .solver import solve

#: The reference recipe's Hugging Face dataset (TRM_SPEC section 4).
HUB_REPO = "sapientinc/sudoku-extreme"
CSV_HEADER = ["source", "question", "answer", "rating"]


class PuzzleFileError(DataError):
    """A puzzle file with a bad row (the message names file, line and reason)."""


@attrs.frozen(eq=False)
class Puzzles:
    puzzles: np.ndarray  # [N, 81] digits, 0 = blank
    solutions: np.ndarray  # [N, 81] digits
    lines: np.ndarray  # [N] the line each puzzle came from (1-based)
    ratings: np.ndarray | None = None  # [N] the file's difficulty rating, where it has one

    def __len__(self) -> int:
        return len(self.puzzles)

    def take(self, index: np.ndarray) -> Puzzles:
        ratings = None if self.ratings is None else self.ratings[index]
        return Puzzles(self.puzzles[index], self.solutions[index], self.lines[index], ratings)


def _solve_chunk(puzzles: list[list[int]]) -> list[tuple[int, list[int] | None]]:
    out = []
    for puzzle in puzzles:
        result = solve(puzzle, limit=2)
        out.append((result.count, result.solutions[0] if result.count else None))
    return out


def solve_all(
    puzzles: list[list[int]], workers: int | None = None
) -> list[tuple[int, list | None]]:
    """(number of solutions up to 2, first solution) for every puzzle, over all cores."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(puzzles) < 200:
        return _solve_chunk(puzzles)
    size = max(50, len(puzzles) // (workers * 8))
    chunks = [puzzles[i : i + size] for i in range(0, len(puzzles), size)]
    with ProcessPoolExecutor(workers) as pool:
        return [item for part in pool.map(_solve_chunk, chunks) for item in part]


def _check_unique(path: Path, puzzles: Puzzles, workers: int | None) -> None:
    results = solve_all(puzzles.puzzles.tolist(), workers)
    for (count, _), line in zip(results, puzzles.lines, strict=True):
        if count != 1:
            reason = "no solution" if count == 0 else "several solutions"
            raise PuzzleFileError(f"{path}, line {line}: the puzzle has {reason}")


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
    path = Path(path)
    if not path.is_file():
        raise PuzzleFileError(f"{path}: no such file")
    puzzles, solutions, lines, ratings = [], [], [], []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != CSV_HEADER:
            raise PuzzleFileError(
                f"{path}, line 1: expected the header {','.join(CSV_HEADER)}, got {header}"
            )
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != 4:
                raise PuzzleFileError(f"{path}, line {line}: expected 4 fields, got {len(row)}")
            _, question, answer, rating_text = row
            try:
                rating = int(rating_text)
            except ValueError:
                raise PuzzleFileError(
                    f"{path}, line {line}: rating {rating_text!r} is not an integer"
                ) from None
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
        reason = (
            "the answer is not a complete valid grid"
            if not valid[index]
            else "the answer is inconsistent with the givens"
        )
        raise PuzzleFileError(f"{path}, line {found.lines[index]}: {reason}")
    if verify:
        _check_unique(path, found, workers)
    return found


def read_list(path: str | os.PathLike, workers: int | None = None) -> Puzzles:
    """A plain puzzle list: one 81-character puzzle a line (``.`` or ``0`` blank).

    Blank lines and lines starting with ``#`` are skipped. Every puzzle is
    solved by the solver and must have exactly one solution.
    """
    path = Path(path)
    if not path.is_file():
        raise PuzzleFileError(f"{path}: no such file")
    puzzles, lines = [], []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            puzzles.append(parse_line(text))
        except ValueError as error:
            raise PuzzleFileError(f"{path}, line {line}: {error}") from None
        lines.append(line)
    if not puzzles:
        raise PuzzleFileError(f"{path}: no puzzles")
    solutions = []
    for (count, solution), line in zip(solve_all(puzzles, workers), lines, strict=True):
        if count != 1:
            reason = "no solution" if count == 0 else "several solutions"
            raise PuzzleFileError(f"{path}, line {line}: the puzzle has {reason}")
        solutions.append(solution)
    return Puzzles(
        np.asarray(puzzles, dtype=np.uint8),
        np.asarray(solutions, dtype=np.uint8),
        np.asarray(lines),
    )


def hub_csv(split: str, repo: str = HUB_REPO) -> Path:
    """Download ``<split>.csv`` of a Hub dataset (needs the ``hub`` extra and the network)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            f"reading {repo} from the Hugging Face Hub needs huggingface_hub: "
            "pip install 'trm-plugin-sudoku[hub]', or download the CSV files and set "
            "source: csv with path: FILE (or use source: generate, which works offline)"
        ) from None
    try:
        return Path(hf_hub_download(repo, f"{split}.csv", repo_type="dataset"))
    except Exception as error:  # network, auth or a missing file: say which and what to do
        raise DataError(
            f"cannot download {split}.csv of {repo} from the Hub ({type(error).__name__}: "
            f"{error}); download it elsewhere and set source: csv with path: FILE"
        ) from error
