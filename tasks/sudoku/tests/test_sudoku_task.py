"""The task: registration, metrics, rendering, parsing, presets."""

from __future__ import annotations

import numpy as np
import pytest

from trm_core import ConfigError, get_registry
from trm_core.config import build_run_config
from trm_core.run import resolve
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.grid import parse_line, to_tokens
from trm_plugin_sudoku.render import CELL, FILLED, GIVEN, WRONG_BACKGROUND, draw_board

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
TASK = SudokuTask()
PUZZLE, ANSWER = to_tokens(parse_line(EASY)), to_tokens(parse_line(SOLUTION))


def test_registered_through_the_entry_point():
    assert get_registry().get("task", "sudoku") is SudokuTask
    assert (TASK.vocab_size, TASK.seq_len, TASK.ignore_label_id) == (11, 81, 0)


def test_metrics_report_blank_accuracy_and_validity_separately():
    swapped = ANSWER.copy()
    swapped[[2, 3]] = swapped[[3, 2]]  # two blank cells swapped: wrong and breaks columns
    changed_given = ANSWER.copy()
    changed_given[0] = ANSWER[1]  # a given overwritten
    predictions = np.stack([ANSWER, swapped, changed_given])
    inputs, labels = np.stack([PUZZLE] * 3), np.stack([ANSWER] * 3)
    metrics = TASK.metrics(inputs, labels, predictions)
    blanks = (PUZZLE == 1).sum()
    assert metrics["valid_fraction"] == pytest.approx(1 / 3)
    expected = (1 + (blanks - 2) / blanks + 1) / 3  # the given change does not touch blanks
    assert metrics["blank_accuracy"] == pytest.approx(expected)


def test_a_different_valid_grid_keeping_the_givens_counts_as_valid():
    # Blank both cells of a 2x2 "deadly pattern" would need a non-unique puzzle; instead use
    # the solution itself relabelled as a puzzle with no givens: any valid grid is valid.
    empty = np.ones(81, dtype=np.uint8)
    other = to_tokens([(int(d) % 9) + 1 for d in SOLUTION])
    metrics = TASK.metrics(empty[None], ANSWER[None], other[None])
    assert metrics["valid_fraction"] == 1.0 and metrics["blank_accuracy"] == 0.0


def test_render_uses_distinct_colours_for_givens_filled_and_wrong():
    wrong = ANSWER.copy()
    wrong[2] = ANSWER[3]
    image = draw_board(PUZZLE, wrong, ANSWER)
    size = 9 * CELL + 1
    assert image.dtype == np.uint8 and image.shape == (size, size, 3)
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert {GIVEN, FILLED, WRONG_BACKGROUND} <= colours
    cell = image[1:CELL, 2 * CELL + 1 : 3 * CELL]  # r1c3, the wrong one
    assert (cell == WRONG_BACKGROUND).all(-1).any()
    assert TASK.render_image(PUZZLE, ANSWER, ANSWER).shape == (size, size, 3)


def test_render_text_draws_a_board():
    text = TASK.render_text(PUZZLE)
    assert text.splitlines()[0] == "5 3 . | . 7 . | . . ."
    assert len(text.splitlines()) == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [("123", "expected 81 characters, got 3"), (EASY[:-1] + "x", "unexpected character")],
)
def test_parse_puzzle_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        TASK.parse_puzzle(text)
    assert TASK.parse_puzzle(EASY.replace(".", "0")).tolist() == PUZZLE.tolist()


@pytest.mark.parametrize("name", ["cpu", "paper-mlp", "paper-attention"])
def test_presets_are_valid_run_configs(name):
    mapping, _, _ = resolve("sudoku", preset=name)
    mapping["model"].update(vocab_size=11, seq_len=81)
    config = build_run_config(mapping)
    assert config.task == "sudoku"
    if name.startswith("paper"):
        # 50,000 reference epochs of 1,000 puzzles (one augmented variant each) at batch 768.
        assert (config.train.global_batch_size, config.train.steps) == (768, 65105)
        assert config.eval.interval_steps == 6511  # every 5,000 reference epochs
        assert (config.train.lr, config.train.weight_decay, config.train.lr_warmup_steps) == (
            1e-4, 1.0, 2000,
        )  # fmt: skip
        assert (config.model.cycles, config.model.think_steps) == (3, 6)
        assert config.data.augmentations == 1000
        assert config.data.options["train"]["count"] == 1000
        positions = config.model.options["grid"]["positions"]
        assert positions == ("none" if name == "paper-mlp" else "rope")


def test_cpu_is_the_default_without_cuda_and_paper_with_it():
    _, _, chosen = resolve("sudoku", mixer="mlp", cuda=False)
    assert chosen == "preset cpu (the default off CUDA)"
    _, _, chosen = resolve("sudoku", mixer="attention", cuda=True)
    assert chosen.startswith("preset paper-attention")


def test_a_config_typo_names_the_key():
    with pytest.raises(ConfigError, match="preset"):
        resolve("sudoku", preset="paper-mpl")
