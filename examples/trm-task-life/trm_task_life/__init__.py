"""trm-task-life: Conway's Game of Life on a small torus, as a trm task.

Input: one generation of a side x side torus (8x8 by default); answer: the next
generation. Registered as the task ``life`` through the ``trm`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trm_core import Split, Task, hookimpl, make_split

from . import board, data
from .presets import PRESETS

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

__all__ = ["LifeTask"]


class LifeTask(Task):
    """Predict the next generation of a Life board. Tokens: PAD 0, dead 1, alive 2."""

    #: Bump it when the same options would build different data.
    data_version: ClassVar[str | None] = "1"
    #: ``data.options``, read strictly by ``options_from`` (a typo names the nearest key).
    Options = data.LifeOptions

    def __init__(self) -> None:
        self.side = data.LifeOptions().side

    # -- required ----------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return board.VOCAB_SIZE

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.side, self.side)

    def presets(self) -> dict[str, dict[str, Any]]:
        return PRESETS

    def build_dataset(self, options: Mapping[str, Any], out_dir: Path) -> Path:
        return data.build(self.options_from(options), Path(out_dir))

    def metrics(self, inputs, labels, predictions) -> dict[str, float]:
        """Accuracy on the cells the rule changes (born or dying) and on those it keeps.

        Copying the input scores 1 on kept cells and 0 on changed ones; the
        engine adds token and exact (whole-board) accuracy.
        """
        changed = labels != inputs
        right = predictions == labels
        return {
            "changed_cell_accuracy": float(right[changed].mean()) if changed.any() else 1.0,
            "kept_cell_accuracy": float(right[~changed].mean()) if (~changed).any() else 1.0,
        }

    # -- optional capabilities ----------------------------------------------------

    def configure(self, options: Mapping[str, Any]) -> None:
        """The board's side comes from ``data.options.side``."""
        self.side = self.options_from(options).side

    def augment(self, inputs: np.ndarray, labels: np.ndarray, seed: int):
        """Rotate, reflect and shift the torus: the rule commutes with all of these."""
        return board.transform(inputs, seed), board.transform(labels, seed)

    def inverse_augment(self, tokens: np.ndarray, seed: int) -> np.ndarray:
        return board.untransform(tokens, seed)

    def render_text(self, tokens: np.ndarray) -> str:
        return board.to_text(tokens)

    def token_style(self) -> list[tuple[str, str]]:
        """PAD white, dead cells light, live cells dark (trm-demo draws boards with it)."""
        return [("", "#ffffff"), ("", "#f4f4f4"), ("", "#202020")]

    def example_puzzles(self) -> list[tuple[str, str]]:
        """A glider, a blinker and a random board, of the configured side."""
        side = self.side
        shapes = {
            "glider": [(0, 1), (1, 2), (2, 0), (2, 1), (2, 2)],
            "blinker": [(1, 0), (1, 1), (1, 2)],
        }
        made = []
        for name, cells in shapes.items():
            grid = np.full((side, side), board.DEAD)
            for r, c in cells:
                grid[r % side, c % side] = board.ALIVE
            made.append((name, board.to_text(grid.reshape(-1))))
        alive = np.random.default_rng(0).random((side, side)) < 0.35
        made.append(("random", board.to_text(np.where(alive, board.ALIVE, board.DEAD).reshape(-1))))
        return made

    def parse_puzzle(self, text: str) -> np.ndarray:
        """Rows of ``.`` (dead) and ``#`` (alive), one a line or separated by ``/``."""
        return board.parse(text, self.side)

    def read_data(self, path: Path) -> Split:
        """A file of boards, one a line (``trm-eval --data FILE``; see ``data``), each
        labelled with its next generation by the rule, as the generated splits are."""
        inputs, lines = data.read_boards(Path(path), self.side)
        labels = board.step(inputs.reshape(-1, self.side, self.side)).reshape(len(inputs), -1)
        return make_split(path, inputs, labels, task="life", side=self.side, source_lines=lines)

    def check_answer(self, inputs: np.ndarray, prediction: np.ndarray) -> list[str]:
        """Every cell where the answer differs from the rule applied to the input."""
        grid = np.asarray(inputs).reshape(self.side, self.side)
        answer = np.asarray(prediction).reshape(self.side, self.side)
        truth = board.step(grid)
        state = {board.DEAD: "dead", board.ALIVE: "alive"}
        return [
            f"row {r + 1}, column {c + 1}: the answer has it "
            f"{state.get(int(answer[r, c]), 'blank')}, the rule makes it {state[int(truth[r, c])]}"
            for r, c in np.argwhere(truth != answer)
        ]


@hookimpl
def register_tasks(register):
    register("life", LifeTask)
