"""trm-plugin-sudoku: Sudoku as a trm task, as in the TRM paper (arXiv:2510.04871).

Registers the task ``sudoku`` through the ``trm`` entry-point group. Data come
from the offline generator by default, or from Sudoku-Extreme CSV files, the
Hugging Face Hub, or plain puzzle lists (see :mod:`trm_plugin_sudoku.dataset`);
``trm-eval --data FILE`` scores a model on a CSV or a list (:meth:`SudokuTask.read_data`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from trm_core import DataError, Split, Task, hookimpl, make_split

from . import dataset
from .augment import Augmentation
from .check import check, invalid_givens
from .grid import VOCAB_SIZE, board, keeps_givens, parse_line, to_digits, to_tokens, valid_solutions
from .presets import PRESETS
from .render import draw_board
from .sources import parse_lines, read_file

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

__all__ = ["SudokuTask"]


class SudokuTask(Task):
    """Fill a 9x9 grid so every row, column and box holds 1..9 once.

    Tokens: PAD 0, blank 1, digit d as d + 1 (vocabulary 11); every cell is
    scored, one puzzle identifier for all puzzles.
    """

    Options = dataset.SudokuOptions

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (9, 9)

    def presets(self) -> dict[str, dict[str, Any]]:
        return PRESETS

    def build_dataset(self, options: dict[str, Any], out_dir: Path) -> Path:
        return dataset.build(self.options_from(options), Path(out_dir))

    def augment(self, inputs: np.ndarray, labels: np.ndarray, seed: int):
        augmentation = Augmentation.from_seed(seed)
        return augmentation.apply(inputs), augmentation.apply(labels)

    def inverse_augment(self, tokens: np.ndarray, seed: int) -> np.ndarray:
        return Augmentation.from_seed(seed).invert(tokens)

    def metrics(self, inputs, labels, predictions) -> dict[str, float]:
        """Accuracy on the blank cells, and validity: a complete valid grid keeping every given.

        Exact and token accuracy (over all 81 cells) come from the engine.
        """
        if len(inputs) == 0:
            return {"blank_accuracy": 0.0, "valid_fraction": 0.0}
        puzzles, solutions = to_digits(inputs), to_digits(labels)
        answers = to_digits(predictions)
        blank = puzzles == 0
        correct = (answers == solutions) & blank
        blank_accuracy = correct.sum(-1) / np.maximum(blank.sum(-1), 1)
        valid = valid_solutions(answers) & keeps_givens(puzzles, answers)
        return {
            "blank_accuracy": float(blank_accuracy.mean()),
            "valid_fraction": float(valid.mean()),
        }

    def render_text(self, tokens: np.ndarray) -> str:
        return board(to_digits(tokens))

    def token_style(self) -> list[tuple[str, str]]:
        """PAD and blank cells empty, the digits 1-9 in black on white."""
        return [("", "#ffffff"), ("", "#ffffff")] + [(str(d), "#ffffff") for d in range(1, 10)]

    def render_image(self, inputs, prediction, target) -> np.ndarray:
        return draw_board(inputs, prediction, target)

    def typed_puzzle(self, cells: list[list[str]]) -> str:
        """A 9x9 grid typed cell by cell (a digit 1-9; empty, ``.`` or ``0`` blank) as
        one 81-character line."""
        digits = []
        for r, row in enumerate(cells, start=1):
            for c, cell in enumerate(row, start=1):
                cell = str(cell).strip()
                if cell in ("", ".", "0"):
                    digits.append(".")
                elif len(cell) == 1 and cell in "123456789":
                    digits.append(cell)
                else:
                    raise ValueError(f"row {r}, column {c}: {cell!r} is not a digit 1-9")
        if len(digits) != 81:
            raise ValueError(f"a Sudoku grid has 9 rows of 9 cells, got {len(digits)} cells")
        return "".join(digits)

    def example_puzzles(self) -> list[tuple[str, str]]:
        """Four generated puzzles (the same every time): two like the ``cpu`` preset's
        (40-45 givens) and two like its hard set (26-30)."""
        return list(_examples())

    def parse_puzzle(self, text: str) -> np.ndarray:
        """An 81-character puzzle; refused when its givens repeat a digit in a unit."""
        digits = parse_line(text)
        reason = invalid_givens(digits)
        if reason is not None:
            raise ValueError(reason)
        return to_tokens(digits)

    def read_puzzles(self, text: str, source: str) -> list[tuple[str, np.ndarray]]:
        """One 81-character puzzle a line (``.`` or ``0`` blank; ``#`` lines skipped); a
        puzzle whose givens repeat a digit in a row, column or box is refused, naming the
        line and the repeat (no answer could be valid)."""
        try:
            puzzles, numbers = parse_lines(source, text.splitlines())
        except DataError as error:
            raise ValueError(str(error)) from None
        return [
            (f"{source}, line {n}", to_tokens(p)) for n, p in zip(numbers, puzzles, strict=True)
        ]

    def read_data(self, path: Path) -> Split:
        """A Sudoku-Extreme CSV or a plain puzzle list, told apart by their content (see
        :func:`trm_plugin_sudoku.sources.read_file`), as a split tokenised as the built
        ones (``source_lines``: each puzzle's line in the file).

        A CSV's answers are the labels, checked against the rules and the givens but not
        proved unique (``verify: false``, as the presets read Sudoku-Extreme's test
        split: proving 423,168 puzzles unique takes hours). A list's labels are the
        solver's solutions, each puzzle having to have exactly one. A file of neither
        format, or a bad row, fails naming the file and the line.
        """
        found = read_file(path)
        return make_split(
            path, to_tokens(found.puzzles), to_tokens(found.solutions), task="sudoku",
            source_lines=found.lines.tolist(),
        )  # fmt: skip

    def check_answer(self, inputs: np.ndarray, prediction: np.ndarray) -> list[str]:
        """Blanks left, givens changed, digits repeated in a row, column or box; first of
        all, the puzzle's own fault when it has one (repeated givens, no solution)."""
        return check(to_digits(inputs).tolist(), to_digits(prediction).tolist())


@functools.cache
def _examples() -> tuple[tuple[str, str], ...]:
    from .generate import PuzzleSpec, generate_one

    made = []
    for kind, givens in (("easy", (40, 45)), ("hard", (26, 30))):
        for number in (1, 2):
            puzzle = generate_one(PuzzleSpec(givens=givens, minimal=False), number).puzzle
            text = "".join(str(d) if d else "." for d in puzzle)
            made.append((f"{kind} #{number} ({81 - text.count('.')} givens)", text))
    return tuple(made)


@hookimpl
def register_tasks(register):
    register("sudoku", SudokuTask)
