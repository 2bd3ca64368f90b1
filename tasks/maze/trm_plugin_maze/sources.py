"""Maze-Hard CSV files: ``source,question,answer,rating``, one maze a row.

``question`` and ``answer`` are the grid's rows concatenated (900 characters
for 30x30) over the charset ``# SGo``. Every bad row fails with
:class:`MazeFileError` naming the file, the line and the reason: field count,
length, an unknown character, S or G missing or repeated, an answer that
changes the maze, or an answer whose ``o`` cells are not a shortest S-G path.
:func:`read_file` reads one for a model of a given side (``trm-eval --data FILE``).
"""

from __future__ import annotations

import csv
import os
import reprlib
from contextlib import closing
from pathlib import Path

import attrs
import numpy as np

from trm_core import DataError, csv_rows, read_text_file

from .grid import OPEN, PATH, check_ends, encode_row, side_of
from .paths import shortest_lengths, valid_paths

CSV_HEADER = ["source", "question", "answer", "rating"]
#: The format :func:`read_file` reads, as its errors name it.
FORMAT = "a Maze-Hard CSV (header source,question,answer,rating, one maze a row)"


class MazeFileError(DataError):
    """A maze file with a bad row (the message names file, line and reason)."""


@attrs.frozen(eq=False)
class Mazes:
    puzzles: np.ndarray  # [N, side*side] tokens
    labels: np.ndarray  # [N, side*side] tokens, the path marked
    lines: np.ndarray  # [N] the line each maze came from (1-based; generated: 1..N)
    lengths: np.ndarray  # [N] moves on a shortest S-G path
    candidates: int = 0  # generated: candidate mazes tried

    def __len__(self) -> int:
        return len(self.puzzles)

    def take(self, index: np.ndarray) -> Mazes:
        return Mazes(
            self.puzzles[index], self.labels[index], self.lines[index], self.lengths[index]
        )


def _cell(index: int, side: int) -> str:
    return f"row {index // side + 1}, column {index % side + 1}"


def check_row(question: str, answer: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A row's (puzzle, label) tokens for a side x side maze; ValueError says what is wrong."""
    cells = side * side
    tokens = []
    for name, text in (("question", question), ("answer", answer)):
        if len(text) != cells:
            raise ValueError(f"{name} has {len(text)} characters, expected {cells} ({side}x{side})")
        try:
            tokens.append(encode_row(text))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    puzzle, label = tokens
    check_ends(puzzle, "question")
    if (puzzle == PATH).any():
        where = _cell(int(np.argmax(puzzle == PATH)), side)
        raise ValueError(f"question has a path cell 'o' at {where}")
    changed = np.flatnonzero(np.where(label == PATH, puzzle != OPEN, label != puzzle))
    if len(changed):
        raise ValueError(f"answer changes the maze at {_cell(int(changed[0]), side)}")
    return puzzle, label


def read_csv(path: str | os.PathLike, side: int | None = None) -> Mazes:
    """A Maze-Hard-format CSV (a header row naming the columns comes first).

    Args:
        side: every maze must be side x side (None: the first row's size, which
            must be a square).
    """
    puzzles, labels, lines = [], [], []
    for line, row in csv_rows(path, CSV_HEADER, MazeFileError):
        try:
            if side is None:
                side = side_of(len(row[1]))
            puzzle, label = check_row(row[1], row[2], side)
        except ValueError as error:
            raise MazeFileError(f"{path}, line {line}: {error}") from None
        puzzles.append(puzzle)
        labels.append(label)
        lines.append(line)
    if not puzzles:
        raise MazeFileError(f"{path}: no mazes")
    puzzles, labels, lines = np.stack(puzzles), np.stack(labels), np.asarray(lines)
    lengths = shortest_lengths(puzzles)
    for index in np.flatnonzero(lengths < 0)[:1]:
        raise MazeFileError(f"{path}, line {lines[index]}: G cannot be reached from S")
    for index in np.flatnonzero(~valid_paths(puzzles, labels))[:1]:
        raise MazeFileError(
            f"{path}, line {lines[index]}: the answer's 'o' cells are not a shortest path "
            f"from S to G ({lengths[index]} moves)"
        )
    return Mazes(puzzles, labels, lines, lengths)


def read_file(path: str | os.PathLike, side: int) -> Mazes:
    """A Maze-Hard CSV to score a model of ``side`` x ``side`` mazes: :func:`read_csv`,
    after two checks that say what the file is rather than what its first row lacks.

    Raises :class:`MazeFileError` naming the file: one whose first line is not the CSV
    header is not a Maze-Hard CSV (naming the format); one whose first maze has another
    side names that side and the model's. Then every row is checked as by
    :func:`read_csv`, all of them ``side`` x ``side``.
    """
    path = Path(path)
    text = read_text_file(path, MazeFileError)  # missing, a folder, not UTF-8, binary
    body = text.lstrip()
    if not body:
        raise MazeFileError(f"{path}: an empty file; expected {FORMAT}")
    first = body.partition("\n")[0].strip()
    try:
        fields = [field.strip() for field in next(csv.reader([first]))]
    except csv.Error:  # a field over the csv module's limit: not the header
        fields = []
    if fields != CSV_HEADER:
        line = text[: len(text) - len(body)].count("\n") + 1
        raise MazeFileError(f"{path}, line {line}: expected {FORMAT}, got {reprlib.repr(first)}")
    with closing(csv_rows(path, CSV_HEADER, MazeFileError)) as rows:
        line, row = next(rows, (0, None))
    if row is not None:
        try:
            found = side_of(len(row[1]))
        except ValueError as error:
            raise MazeFileError(f"{path}, line {line}: question: {error}") from None
        if found != side:
            raise MazeFileError(
                f"{path}, line {line}: a {found}x{found} maze, but the model takes "
                f"{side}x{side} mazes (its data.options.side); score this file with a model "
                f"trained on {found}x{found} mazes"
            )
    return read_csv(path, side=side)
