"""Reading Sudoku-Extreme CSV files and plain puzzle lists, good rows and bad."""

from __future__ import annotations

import sys

import pytest

from trm_core import DataError
from trm_plugin_sudoku.sources import PuzzleFileError, hub_csv, read_csv, read_list

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
HARD = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
HEADER = "source,question,answer,rating\n"


def _csv(tmp_path, *rows: str, header: str = HEADER):
    path = tmp_path / "puzzles.csv"
    path.write_text(header + "".join(row + "\n" for row in rows))
    return path


def test_reads_the_sudoku_extreme_format(tmp_path):
    path = _csv(tmp_path, f"web,{EASY},{SOLUTION},0", f"web,{EASY.replace('.', '0')},{SOLUTION},7")
    found = read_csv(path)
    assert len(found) == 2
    assert found.puzzles[0, 2] == 0 and found.puzzles[0, 0] == 5
    assert "".join(map(str, found.solutions[1])) == SOLUTION
    assert found.lines.tolist() == [2, 3] and found.ratings.tolist() == [0, 7]


def test_min_difficulty_keeps_only_harder_rows(tmp_path):
    path = _csv(tmp_path, f"a,{EASY},{SOLUTION},3", f"b,{EASY},{SOLUTION},20")
    found = read_csv(path, min_difficulty=10)
    assert found.ratings.tolist() == [20] and found.lines.tolist() == [3]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f"web,{EASY[:-1]},{SOLUTION},0", "line 3: question: expected 81 characters, got 80"),
        (f"web,{EASY[:-1]}x,{SOLUTION},0", "line 3: question: unexpected character(s) 'x'"),
        (f"web,{EASY},{SOLUTION[:-2]}97,0", "line 3: the answer is not a complete valid grid"),
        (
            f"web,{'1' + EASY[1:]},{SOLUTION},0",
            "line 3: the answer is inconsistent with the givens",
        ),
        (f"web,{EASY},{SOLUTION},hard", "line 3: rating 'hard' is not an integer"),
        (f"web,{EASY},{SOLUTION}", "line 3: expected 4 fields, got 3"),
        (f"web,{'.' * 9 + EASY[9:]},{SOLUTION},0", "line 3: the puzzle has several solutions"),
    ],
)
def test_a_bad_row_names_file_line_and_reason(tmp_path, row, reason):
    path = _csv(tmp_path, f"web,{EASY},{SOLUTION},0", row)
    with pytest.raises(PuzzleFileError) as error:
        read_csv(path)
    assert str(error.value).startswith(f"{path}, ")
    assert reason in str(error.value)


def test_a_wrong_header_is_named(tmp_path):
    path = _csv(tmp_path, f"web,{EASY},{SOLUTION},0", header="q,a\n")
    with pytest.raises(PuzzleFileError, match="line 1: expected the header"):
        read_csv(path)


def test_uniqueness_is_only_proved_when_asked(tmp_path):
    path = _csv(tmp_path, f"web,{'.' * 9 + EASY[9:]},{SOLUTION},0")
    assert len(read_csv(path, verify=False)) == 1


def test_reads_a_plain_list_and_solves_it(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text(f"# a comment\n\n{EASY}\n{HARD.replace('.', '0')}\n")
    found = read_list(path)
    assert found.lines.tolist() == [3, 4]
    assert "".join(map(str, found.solutions[0])) == SOLUTION
    assert (found.puzzles[1] > 0).sum() == 21


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (EASY + "1", "line 2: expected 81 characters, got 82"),
        (EASY[:2] + "1" + EASY[3:], "line 2: the puzzle has no solution"),
        ("11" + EASY[2:], "line 2: the puzzle is invalid: its givens repeat a digit: row 1 has 1"),
        ("." * 9 + EASY[9:], "line 2: the puzzle has several solutions"),
        (EASY[:-1] + "?", "line 2: unexpected character(s) '?'"),
    ],
)
def test_a_bad_list_line_names_file_line_and_reason(tmp_path, line, reason):
    path = tmp_path / "list.txt"
    path.write_text(f"{EASY}\n{line}\n")
    with pytest.raises(PuzzleFileError) as error:
        read_list(path)
    assert str(error.value).startswith(f"{path}, {reason}")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(PuzzleFileError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(PuzzleFileError, match="no such file"):
        read_list(tmp_path / "nope.txt")


def test_the_hub_without_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(DataError, match=r"pip install 'trm-plugin-sudoku\[hub\]'"):
        hub_csv("train")
