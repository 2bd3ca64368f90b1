"""trm-plugin-maze: Maze-Hard as a trm task, as in the TRM paper (arXiv:2510.04871).

Registers the task ``maze`` through the ``trm`` entry-point group. Mazes come
from the offline generator by default (any square side), or from Maze-Hard CSV
files and the Hugging Face Hub (see :mod:`trm_plugin_maze.dataset`);
``trm-eval --data FILE`` scores a model on a Maze-Hard CSV (:meth:`MazeTask.read_data`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trm_core import Split, Task, hookimpl, make_split

from . import augment, dataset
from .check import problems
from .grid import VOCAB_SIZE, parse_maze, side_of, to_text
from .paths import valid_paths
from .presets import PRESETS
from .render import COLOURS, draw_maze
from .sources import read_file

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

__all__ = ["MazeTask"]


class MazeTask(Task):
    """Mark a shortest path from S to G through a square maze.

    Tokens: PAD 0, then ``# SGo`` as 1..5 (vocabulary 6); every cell is
    scored, one puzzle identifier for all mazes. The side (30 for Maze-Hard)
    comes from ``data.options.side``.
    """

    Options = dataset.MazeOptions

    def __init__(self) -> None:
        self.side = dataset.MazeOptions().side

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.side, self.side)

    def configure(self, options: Mapping[str, Any]) -> None:
        self.side = self.options_from(options).side

    def presets(self) -> dict[str, dict[str, Any]]:
        return PRESETS

    def build_dataset(self, options: Mapping[str, Any], out_dir: Path) -> Path:
        return dataset.build(self.options_from(options), Path(out_dir))

    def augment(self, inputs: np.ndarray, labels: np.ndarray, seed: int):
        transform = augment.transform_of(seed)
        return augment.apply(inputs, transform), augment.apply(labels, transform)

    def inverse_augment(self, tokens: np.ndarray, seed: int) -> np.ndarray:
        return augment.invert(tokens, augment.transform_of(seed))

    def metrics(self, inputs, labels, predictions) -> dict[str, float]:
        """``valid_path_accuracy``: a shortest S-G path marked, whatever tie it takes.

        Exact accuracy (equal to the label, whose tie-break is fixed) and token
        accuracy come from the engine.
        """
        if len(inputs) == 0:
            return {"valid_path_accuracy": 0.0}
        return {"valid_path_accuracy": float(valid_paths(inputs, predictions).mean())}

    def render_text(self, tokens: np.ndarray) -> str:
        return to_text(tokens)

    def token_style(self) -> list[tuple[str, str]]:
        """Walls dark, open cells white, S green, G red, the path blue (as ``render_image``)."""
        colour = {name: "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in COLOURS.items()}
        return [
            ("", "#ffffff"), ("", colour["wall"]), ("", colour["open"]),
            ("S", colour["start"]), ("G", colour["goal"]), ("", colour["path"]),
        ]  # fmt: skip

    def render_image(self, inputs, prediction, target) -> np.ndarray:
        return draw_maze(inputs, prediction, target)

    def example_puzzles(self) -> list[tuple[str, str]]:
        """Four generated mazes of the configured side (the same every time): two with a
        shorter shortest path and two with a longer one."""
        return list(_examples(self.side))

    def parse_puzzle(self, text: str) -> np.ndarray:
        tokens = parse_maze(text)
        side = side_of(len(tokens))
        if side != self.side:
            raise ValueError(f"a {side}x{side} maze, but this task's mazes are "
                             f"{self.side}x{self.side}")  # fmt: skip
        return tokens

    def read_puzzles(self, text: str, source: str) -> list[tuple[str, np.ndarray]]:
        """Mazes as rows of ``#``, space or ``.``, ``S``, ``G``, separated by empty lines."""
        lines = text.replace("\r", "").split("\n")
        blocks, first = [], None
        for number, line in enumerate([*lines, ""], start=1):
            if line == "" and first is not None:
                blocks.append((first, "\n".join(lines[first - 1 : number - 1])))
                first = None
            elif line != "" and first is None:
                first = number
        if not blocks:
            raise ValueError(f"{source}: no maze")
        mazes = []
        for index, (line, block) in enumerate(blocks, start=1):
            where = f"{source}, maze {index} (line {line})"
            try:
                mazes.append((where, self.parse_puzzle(block)))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        return mazes

    def read_data(self, path: Path) -> Split:
        """A Maze-Hard CSV (``source,question,answer,rating``), its answers the labels, as
        the built splits store a CSV (``source_lines``: each maze's line in the file).

        Every maze must be this task's side x side (``data.options.side`` of the model):
        a file of another side fails in one line naming both sides, and one that is not a
        Maze-Hard CSV (no header first) naming the format; a bad row names its line
        (see :func:`trm_plugin_maze.sources.read_file`).
        """
        found = read_file(path, self.side)
        return make_split(
            path, found.puzzles, found.labels, task="maze", side=self.side,
            source_lines=found.lines.tolist(),
        )  # fmt: skip

    def check_answer(self, inputs: np.ndarray, prediction: np.ndarray) -> list[str]:
        """Changed cells, path cells on walls, a path that breaks or is not the shortest."""
        return problems(inputs, prediction)


@functools.cache
def _examples(side: int) -> tuple[tuple[str, str], ...]:
    from .generate import MazeSpec, default_min_length, generate, longest_path

    longer = max(1, min(default_min_length(side), longest_path(side) // 2))
    made = []
    for kind, least in (("shorter", max(1, longer // 2)), ("longer", longer)):
        puzzles, _, lengths, _ = generate(MazeSpec(side=side, min_length=least), 2, 1, workers=1)
        for number, (puzzle, length) in enumerate(zip(puzzles, lengths, strict=True), 1):
            text = to_text(puzzle).replace(" ", ".")  # open cells survive an editor's trim
            made.append((f"{kind} #{number} ({int(length)} moves)", text))
    return tuple(made)


@hookimpl
def register_tasks(register):
    register("maze", MazeTask)
