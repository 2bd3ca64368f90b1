"""trm-solve's task-neutral parts: where the text comes from, and the Task defaults it uses."""

from __future__ import annotations

import io

import pytest

from trm_core.solve import main, read_text

from .tiny_task import ReverseTask


def test_read_text_takes_stdin_a_file_or_the_argument_itself(tmp_path, monkeypatch):
    path = tmp_path / "p.txt"
    path.write_text("01234012\n")
    assert read_text(str(path)) == ("01234012\n", str(path), False)
    monkeypatch.setattr("sys.stdin", io.StringIO("43210432\n"))
    assert read_text("-") == ("43210432\n", "<stdin>", False)
    assert read_text("01234012") == ("01234012", "the puzzle", True)


def test_the_default_reader_takes_one_puzzle_and_names_the_source():
    task = ReverseTask()
    [(where, tokens)] = task.read_puzzles("01234012\n", "p.txt")
    assert where == "p.txt" and tokens.tolist() == [1, 2, 3, 4, 5, 1, 2, 3]
    with pytest.raises(ValueError, match=r"^p.txt: expected 8 digits 0-4, got '0123'"):
        task.read_puzzles("0123", "p.txt")
    assert task.check_answer(tokens, tokens) is None  # no checker: trm-solve says so


def test_a_folder_that_is_not_a_run_is_an_error(tmp_path, capsys):
    assert main(["--run", str(tmp_path), "01234012"]) == 2
    assert "error:" in capsys.readouterr().err
