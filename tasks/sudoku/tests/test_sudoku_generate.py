"""The generator: unique, minimal, within the givens range, deterministic, disjoint splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trm_core import ConfigError, read_split
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.generate import PuzzleSpec, disjoint, generate, signature
from trm_plugin_sudoku.grid import to_digits
from trm_plugin_sudoku.solver import solve

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def test_minimal_puzzles_are_unique_and_minimal():
    made = generate(PuzzleSpec(), seeds=range(6), workers=1)
    for item in made:
        puzzle = list(item.puzzle)
        result = solve(puzzle, limit=2)
        assert result.unique and tuple(result.solutions[0]) == item.solution
        assert result.guesses == item.guesses
        for cell in np.flatnonzero(puzzle):  # every clue is needed
            fewer = puzzle.copy()
            fewer[cell] = 0
            assert solve(fewer, limit=2).count == 2


def test_givens_range_and_difficulty_floor_are_kept():
    made = generate(PuzzleSpec(givens=(36, 45), minimal=False), seeds=range(20), workers=1)
    assert all(36 <= sum(1 for d in m.puzzle if d) <= 45 for m in made)
    assert all(solve(list(m.puzzle), limit=2).unique for m in made)
    hard = generate(PuzzleSpec(min_guesses=5), seeds=range(4), workers=1)
    assert all(m.guesses >= 5 for m in hard)


def test_generation_is_deterministic_in_the_seed_and_process_count():
    spec = PuzzleSpec(givens=(40, 45), minimal=False)
    one = generate(spec, seeds=[7, 8, 9, 10], workers=1)
    two = generate(spec, seeds=[7, 8, 9, 10], workers=2)
    assert one == two
    assert generate(spec, seeds=[11], workers=1)[0] != one[0]


def test_the_default_source_is_hard_minimal_puzzles():
    spec = SudokuTask.options_from({"train": {"count": 3}}).train.spec()
    assert spec.minimal and spec.min_guesses == 10
    easy = SudokuTask.options_from({"train": {"count": 3, "givens": [36, 45], "minimal": False}})
    assert easy.train.spec().min_guesses == 0


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="givens"):
        PuzzleSpec(givens=(10, 20))
    with pytest.raises(ValueError, match="givens range"):
        PuzzleSpec(minimal=False)


def test_disjoint_drops_transforms_of_kept_puzzles():
    kept = [tuple(int(c) if c != "." else 0 for c in EASY)]
    transposed = tuple(np.array(kept[0]).reshape(9, 9).T.ravel())
    relabelled = tuple((d % 9) + 1 if d else 0 for d in kept[0])
    other = generate(PuzzleSpec(givens=(30, 30), minimal=False), seeds=[3], workers=1)[0].puzzle
    indices, dropped = disjoint(kept, [transposed, other, relabelled, other])
    assert indices == [1] and dropped == 3  # the transforms and the repeat are dropped
    assert signature(transposed) == signature(relabelled) == signature(kept[0])


OPTIONS = {
    "seed": 3,
    "train": {"source": "generate", "count": 30, "givens": [38, 44], "minimal": False},
    "test": {"source": "generate", "count": 12, "givens": [38, 44], "minimal": False},
}


def test_build_writes_disjoint_splits_and_reuses_them(tmp_path, capsys):
    listed = tmp_path / "list.txt"
    listed.write_text(EASY + "\n")
    options = {
        **OPTIONS,
        "extra_tests": {
            "hard": {"source": "generate", "count": 5, "givens": [28, 30], "minimal": False},
            "listed": {"source": "list", "path": str(listed)},
            "absent": {"source": "list", "path": str(tmp_path / "no.txt"), "optional": True},
            "unset": {"source": "list", "optional": True},  # no path given: skipped
        },
    }
    out = SudokuTask().build_dataset(options, tmp_path / "data")
    task = SudokuTask()
    train, test = read_split(out / "train", task), read_split(out / "test", task)
    assert (len(train), len(test)) == (30, 12)
    assert len(read_split(out / "extra" / "hard", task)) == 5
    assert len(read_split(out / "extra" / "listed", task)) == 1
    assert not (out / "extra" / "absent").exists()
    err = capsys.readouterr().err
    assert "absent: skipped" in err and "unset: skipped, no path given" in err
    assert not (out / "extra" / "unset").exists()
    train_signatures = {signature(p) for p in to_digits(train.inputs)}
    assert not train_signatures & {signature(p) for p in to_digits(test.inputs)}
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["splits"]["test"]["givens"]["min"] >= 38
    assert summary["skipped"] == [
        {"name": "absent", "path": str(tmp_path / "no.txt")},
        {"name": "unset", "path": None},
    ]

    stamp = (out / "train" / "inputs.npy").stat().st_mtime_ns
    assert SudokuTask().build_dataset(options, tmp_path / "data") == out  # reused, not rebuilt
    assert (out / "train" / "inputs.npy").stat().st_mtime_ns == stamp
    (tmp_path / "no.txt").write_text(EASY + "\n")  # the optional file appeared: rebuild
    SudokuTask().build_dataset(options, tmp_path / "data")
    assert len(read_split(out / "extra" / "absent", task)) == 1


def test_train_and_test_use_separate_seeds(tmp_path):
    out = SudokuTask().build_dataset(OPTIONS, tmp_path / "data")
    train = read_split(out / "train").inputs
    test = read_split(out / "test").inputs
    assert not {row.tobytes() for row in train} & {row.tobytes() for row in test}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sed": 1}, r"unknown key data.options.sed \(did you mean 'seed'\?\)"),
        ({"train": {"source": "generated", "count": 3}}, "source 'generated' is not one of"),
        ({"train": {"count": 3, "givns": [30, 40]}}, "data.options.train.givns"),
        ({"test": {"source": "csv"}}, "data.options.test: source csv needs path"),
        ({"train": {"source": "generate"}}, "needs count"),
        ({"extra_tests": {"x": {"givens": [5, 6], "count": 1}}}, r"extra_tests\.x\.givens must be"),
        (
            {"train": {"sourc": "csv"}},
            r"unknown key data\.options\.train\.sourc \(did you mean 'source'",
        ),
        (
            {"extra_tests": {"x": {"cont": 1}}},
            r"unknown key data\.options\.extra_tests\.x\.cont \(",
        ),
        (
            {"extra_tests": {"x": 5}},
            r"data\.options\.extra_tests\.x must be a mapping of split options",
        ),
    ],
)
def test_option_mistakes_name_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        SudokuTask.options_from(options)


def test_an_extra_test_set_set_to_null_is_dropped():
    options = {"extra_tests": {"hard": {"count": 2}, "magictour": None}}
    assert list(SudokuTask.options_from(options).extra_tests) == ["hard"]
    assert SudokuTask.options_from({"extra_tests": None}).extra_tests == {}
