"""read_data (``trm-eval --data FILE``): a Maze-Hard CSV tokenised as the built splits;
a file of another side, of another format or with a bad row named in one line."""

from __future__ import annotations

import numpy as np
import pytest

from trm_core import DataError, read_split
from trm_plugin_maze import MazeTask
from trm_plugin_maze.generate import MazeSpec, generate
from trm_plugin_maze.grid import CHARSET

HEADER = "source,question,answer,rating\n"
# A valid 30x30 maze (Maze-Hard's side): open, S and G at the ends of the top row.
OPEN_30 = "S" + " " * 28 + "G" + " " * 870
PATH_30 = "S" + "o" * 28 + "G" + " " * 870


def as_text(tokens: np.ndarray) -> str:
    return "".join(CHARSET[t - 1] for t in tokens)


def task_of(side: int) -> MazeTask:
    task = MazeTask()
    task.configure({"side": side})  # as trm-eval configures it with the model's options
    return task


@pytest.fixture(scope="module")
def rows() -> list[str]:
    puzzles, labels, lengths, _ = generate(MazeSpec(side=9, min_length=12), 4, seed=5, workers=1)
    return [
        f"gen,{as_text(p)},{as_text(a)},{n}"
        for p, a, n in zip(puzzles, labels, lengths, strict=True)
    ]


def write(tmp_path, text: str | bytes, name: str = "mazes.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def csv_text(rows: list[str]) -> str:
    return HEADER + "".join(f"{row}\n" for row in rows)


def test_a_split_read_equals_the_split_built_from_the_same_file(tmp_path, rows):
    path = write(tmp_path, csv_text(rows))
    options = {"side": 9, "train": {"source": "csv", "path": str(path)},
               "test": {"source": "csv", "path": str(path)}}  # fmt: skip
    out = MazeTask().build_dataset(options, tmp_path / "data")
    task = task_of(9)
    stored, read = read_split(out / "test", task), task.read_data(path)
    assert read.path == path and len(read) == 4
    for name in ("inputs", "labels", "puzzle_identifiers"):
        assert np.array_equal(getattr(read, name), getattr(stored, name)), name
        assert getattr(read, name).dtype == getattr(stored, name).dtype, name
    assert read.metadata == stored.metadata
    assert read.metadata["source_lines"] == [2, 3, 4, 5] and read.metadata["side"] == 9


def test_mazes_of_another_side_name_the_files_side_and_the_models(tmp_path, rows):
    hard = write(tmp_path, csv_text([f"web,{OPEN_30},{PATH_30},0"]), "hard.csv")
    assert task_of(30).read_data(hard).inputs.shape == (1, 900)  # a good 30x30 file
    with pytest.raises(DataError) as error:
        task_of(9).read_data(hard)
    assert str(error.value) == (
        f"{hard}, line 2: a 30x30 maze, but the model takes 9x9 mazes (its "
        "data.options.side); score this file with a model trained on 30x30 mazes"
    )
    with pytest.raises(DataError, match=r"small.csv, line 2: a 9x9 maze, .* takes 30x30 mazes"):
        MazeTask().read_data(write(tmp_path, csv_text(rows), "small.csv"))  # the default 30


@pytest.mark.parametrize(
    "text",
    [
        "S..#\n.#..\n...#\n#.G.\n",  # mazes typed for trm-solve: no answers
        "question,answer\nS..#.#.....##.G.,So.#o#..oo.##.G.\n",
        f"\n\n{'53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79'}\n",
    ],
)
def test_a_file_that_is_not_a_maze_hard_csv_names_the_format(tmp_path, text):
    path = write(tmp_path, text, "mazes.txt")
    with pytest.raises(DataError) as error:
        task_of(4).read_data(path)
    line = 3 if text.startswith("\n") else 1
    assert str(error.value).startswith(
        f"{path}, line {line}: expected a Maze-Hard CSV (header "
        "source,question,answer,rating, one maze a row), got "
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda rows: [rows[0], f"gen,{'#' * 49},{'#' * 49},0"],  # a 7x7 maze after a 9x9
            "line 3: question has 49 characters, expected 81 (9x9)",
        ),
        (lambda rows: ["gen," + "#" * 80 + ",x,0"], "line 2: question: 80 cells is not a square"),
        (lambda rows: [rows[0].replace("o", " ", 1)], "line 2: the answer's 'o' cells are not"),
        (lambda rows: [rows[0] + ",extra"], "line 2: expected 4 fields, got 5"),
        (lambda rows: [], ": no mazes"),
    ],
)
def test_a_bad_row_names_the_file_the_line_and_what_is_wrong(tmp_path, rows, change, message):
    path = write(tmp_path, csv_text(change(rows)))
    with pytest.raises(DataError) as error:
        task_of(9).read_data(path)
    assert str(error.value).startswith(f"{path}")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ": an empty file; expected a Maze-Hard CSV"),
        (" \n\n", ": an empty file; expected a Maze-Hard CSV"),
        (b"source,question\xff", ", line 1: not UTF-8 text (byte 0xff)"),
    ],
)
def test_an_empty_or_binary_file_is_named(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as error:
        task_of(9).read_data(path)
    assert str(error.value).startswith(f"{path}{message}")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        task_of(9).read_data(tmp_path / "nope.csv")
