"""read_data (``trm-eval --data FILE``): a CSV or a list, told apart by content, tokenised
as the built splits; every bad file named with its line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trm_core import DataError, read_split
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.grid import keeps_givens, parse_line, to_digits, to_line, valid_solutions
from trm_plugin_sudoku.solver import solve

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "sudoku"
EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
HARD = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
HARD_SOLUTION = to_line(solve(parse_line(HARD)).solutions[0])
SEVERAL = "." * 9 + EASY[9:]  # the first row blanked: its answer is no longer unique
HEADER = "source,question,answer,rating\n"
TASK = SudokuTask()


def write(tmp_path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def csv_text(*rows: tuple[str, str]) -> str:
    return HEADER + "".join(f"web,{q},{a},{n}\n" for n, (q, a) in enumerate(rows))


def test_a_split_read_equals_the_split_built_from_the_same_file(tmp_path):
    extreme = write(tmp_path, "extreme.csv", csv_text((EASY, SOLUTION), (HARD, HARD_SOLUTION)))
    listed = write(tmp_path, "list.txt", f"# two puzzles\n{HARD}\n\n{EASY.replace('.', '0')}\n")
    options = {
        "train": {"source": "csv", "path": str(extreme)},
        "test": {"source": "csv", "path": str(extreme)},
        "extra_tests": {"listed": {"source": "list", "path": str(listed)}},
    }
    out = SudokuTask().build_dataset(options, tmp_path / "data")
    TASK.configure(options)
    for built, path in ((out / "test", extreme), (out / "extra" / "listed", listed)):
        stored, read = read_split(built, TASK), TASK.read_data(path)
        assert read.path == path and len(read) == 2
        for name in ("inputs", "labels", "puzzle_identifiers"):
            assert np.array_equal(getattr(read, name), getattr(stored, name)), (path, name)
            assert getattr(read, name).dtype == getattr(stored, name).dtype, (path, name)
        assert read.metadata == stored.metadata
    assert TASK.read_data(listed).metadata["source_lines"] == [2, 4]
    assert to_line(to_digits(TASK.read_data(listed).labels[1])) == SOLUTION


def test_the_format_is_told_by_the_content_not_the_name(tmp_path):
    extreme = write(tmp_path, "puzzles.txt", csv_text((HARD, HARD_SOLUTION)))
    listed = write(tmp_path, "puzzles.csv", f"{HARD}\r\n")
    assert np.array_equal(TASK.read_data(extreme).labels, TASK.read_data(listed).labels)
    assert TASK.read_data(extreme).metadata["source_lines"] == [2]


def test_a_csv_is_scored_against_its_own_answers_without_proving_them_unique(tmp_path):
    # As the presets read Sudoku-Extreme's test split (verify: false); a list must be
    # unique, having no answer but the solver's.
    read = TASK.read_data(write(tmp_path, "several.csv", csv_text((SEVERAL, SOLUTION))))
    assert to_line(to_digits(read.labels[0])) == SOLUTION
    with pytest.raises(DataError, match="line 1: the puzzle has several solutions"):
        TASK.read_data(write(tmp_path, "several.txt", SEVERAL + "\n"))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pairs.csv", f"puzzle,solution\n{EASY},{SOLUTION}\n"),
        ("grid.txt", "5 3 . . 7 . . . .\n6 . . 1 9 5 . . .\n"),
        ("data.json", '{"puzzles": []}\n'),
    ],
)
def test_a_file_of_neither_format_names_both(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as error:
        TASK.read_data(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line 1: not a Sudoku file: expected a Sudoku-Extreme CSV")
    assert "(header source,question,answer,rating) or a puzzle list" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ": an empty file; expected a Sudoku-Extreme CSV"),
        ("# nothing but a comment\n\n", ": no puzzles, only comments; expected a Sudoku-Extreme"),
        (b"\xff\xfe5\x003\x00", ", line 1: not UTF-8 text (byte 0xff)"),
        (f"{EASY}\n{EASY[:-1]}\n", ", line 2: expected 81 characters, got 80"),
        ("1234" * 4 + "\n", ", line 1: expected 81 characters, got 16"),  # a 4x4 Sudoku
        (f"{EASY}\n{EASY[:2]}1{EASY[3:]}\n", ", line 2: the puzzle has no solution"),
        (csv_text((EASY, SOLUTION), (EASY, SOLUTION[:-2] + "97")), ", line 3: the answer is not"),
        (HEADER + f"web,{EASY},{SOLUTION}\n", ", line 2: expected 4 fields, got 3"),
    ],
)
def test_a_bad_file_names_itself_the_line_and_what_is_wrong(tmp_path, text, message):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(DataError) as error:
        TASK.read_data(path)
    assert str(error.value).startswith(f"{path}{message}")
    assert "\n" not in str(error.value)


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        TASK.read_data(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="a folder, not a file"):
        TASK.read_data(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the project")
@pytest.mark.parametrize("name", ["forum_hardest_1106.txt", "magictour_top1465.txt"])
def test_reads_the_head_of_the_real_collections(tmp_path, name):
    # The file's first 10 puzzles, its comments and line numbers kept (the whole files take
    # 5-10 s to solve; bench_sudoku.py times them).
    lines = (SHARED / name).read_text().splitlines(keepends=True)
    head = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#")) + 10]
    read = TASK.read_data(write(tmp_path, name, "".join(head)))
    assert read.inputs.shape == read.labels.shape == (10, 81)
    numbers = read.metadata["source_lines"]
    puzzles = np.asarray([parse_line(lines[n - 1]) for n in numbers])
    assert np.array_equal(to_digits(read.inputs), puzzles)
    answers = to_digits(read.labels)
    assert valid_solutions(answers).all() and keeps_givens(puzzles, answers).all()
    assert (puzzles > 0).sum(1).max() < 30  # hard puzzles: few givens
