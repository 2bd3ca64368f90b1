"""Maze-Hard CSV files: good rows load, every bad row names the file, the line and the reason."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from trm_core import DataError
from trm_plugin_maze import MazeTask
from trm_plugin_maze.generate import MazeSpec, generate
from trm_plugin_maze.grid import CHARSET
from trm_plugin_maze.sources import MazeFileError, read_csv

HEADER = "source,question,answer,rating\n"


def as_text(tokens: np.ndarray) -> str:
    return "".join(CHARSET[t - 1] for t in tokens)


@pytest.fixture(scope="module")
def made():
    puzzles, labels, lengths, _ = generate(MazeSpec(side=9, min_length=12), 4, seed=5, workers=1)
    return puzzles, labels, lengths


def write(tmp_path, rows: list[str]):
    path = tmp_path / "mazes.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    return path


def rows_of(made) -> list[str]:
    puzzles, labels, lengths = made
    return [
        f"gen,{as_text(p)},{as_text(a)},{n}"
        for p, a, n in zip(puzzles, labels, lengths, strict=True)
    ]


def test_a_good_file_loads_with_its_lines_and_lengths(tmp_path, made):
    found = read_csv(write(tmp_path, rows_of(made)))
    assert len(found) == 4
    assert (found.puzzles == made[0]).all() and (found.labels == made[1]).all()
    assert found.lines.tolist() == [2, 3, 4, 5]
    assert (found.lengths == made[2]).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda q, a: (q[:-1], a), "question has 80 characters, expected 81 (9x9)"),
        (lambda q, a: (q, a + " "), "answer has 82 characters, expected 81 (9x9)"),
        (lambda q, a: ("x" + q[1:], a), "question: unknown character 'x' at position 1"),
        (lambda q, a: (q.replace("S", " "), a), "question has 0 S cells, expected exactly one"),
        (lambda q, a: (q.replace("#", "G", 1), a), "question has 2 G cells, expected exactly one"),
        (lambda q, a: (q.replace(" ", "o", 1), a), "question has a path cell 'o' at row"),
        (lambda q, a: (q, a.replace("#", " ", 1)), "answer changes the maze at row"),
        (
            lambda q, a: (q, a.replace("o", " ", 1)),
            "the answer's 'o' cells are not a shortest path",
        ),
    ],
)
def test_a_malformed_row_names_file_line_and_reason(tmp_path, made, change, message):
    rows = rows_of(made)
    _, question, answer, rating = rows[2].split(",")
    question, answer = change(question, answer)
    rows[2] = f"gen,{question},{answer},{rating}"
    path = write(tmp_path, rows)
    with pytest.raises(MazeFileError) as error:
        read_csv(path)
    assert str(error.value).startswith(f"{path}, line 4: ")
    assert message in str(error.value)


def test_header_field_count_side_and_reachability_are_checked(tmp_path, made):
    path = tmp_path / "bad.csv"
    path.write_text("question,answer\n")
    with pytest.raises(MazeFileError, match=r"bad.csv, line 1: expected the header"):
        read_csv(path)
    rows = rows_of(made)
    rows[1] += ",extra"
    with pytest.raises(MazeFileError, match=r"line 3: expected 4 fields, got 5"):
        read_csv(write(tmp_path, rows))
    with pytest.raises(MazeFileError, match=r"line 2: question has 81 characters, expected 900"):
        read_csv(write(tmp_path, rows_of(made)), side=30)
    walled = "S#" + "#" * 78 + "G"
    with pytest.raises(MazeFileError, match=r"line 2: G cannot be reached from S"):
        read_csv(write(tmp_path, [f"x,{walled},{walled},0"]))
    with pytest.raises(MazeFileError, match="no such file"):
        read_csv(tmp_path / "missing.csv")


def test_a_csv_source_builds_a_data_set(tmp_path, made):
    path = write(tmp_path, rows_of(made))
    options = {"side": 9, "train": {"source": "csv", "path": str(path)},
               "test": {"source": "csv", "path": str(path), "count": 2}}  # fmt: skip
    out = MazeTask().build_dataset(options, tmp_path / "data")
    inputs = np.load(out / "test" / "inputs.npy")
    assert inputs.shape == (2, 81)


def test_the_hub_without_huggingface_hub_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    options = {"train": {"source": "hub"}, "test": {"source": "hub"}}
    with pytest.raises(DataError, match=r"pip install 'trm-plugin-maze\[hub\]'"):
        MazeTask().build_dataset(options, tmp_path / "data")
