"""What a model folder keeps of the ARC data, and scoring a new ARC file with it.

A trained model knows each task by its puzzle identifiers: task g (numbered over
all sets of its data) under augmentation a is ``1 + g * augmentations + a``
(:mod:`trm_plugin_arc.dataset`), and a model folder keeps the embedding rows of
its test set's tasks alone. To answer those tasks from a file, without the data
they were built from, the model folder keeps (:func:`export`):

- ``groups``: int32 [G], each test-set task's number g;
- ``counts``: int32 [G], how many distinct augmentations it has;
- ``augmentation_sets``: int8 [G, W, 11], its augmentations as ``[k, colours...]``
  rows (W the largest count; rows past a task's count are zeros);
- ``task_ids`` (JSON, G strings, in the order of ``groups``), ``test_set`` (the
  set's name), ``augmentations`` (per task, what identifiers count in),
  ``canvas``, ``num_puzzle_identifiers`` (of the whole data set) and ``format`` (1).

G is the test set's task count: 400 for ARC-AGI-1's evaluation set, whose
augmentation sets are 400 x 1,000 x 11 bytes (4.4 MB) at 1,000 augmentations.

:meth:`ArcState.read` builds a file's split exactly as the data build builds the
test split (:func:`trm_plugin_arc.dataset.augmented_test_rows`), so that
evaluation votes over augmentations and scores pass@k as for the run's own test
split. It reads an ARC Prize challenges file ``{task id: {"train": [...],
"test": [...]}}`` with its solutions from ``X_solutions.json`` beside
``X_challenges.json``, or test outputs given inline, or one task ``{"train",
"test"}`` (its id the file's stem, as in the ARC repositories). Test inputs
whose output is unknown (a hidden test set, or no solutions file beside the
challenges) are scored as the build scores a hidden set: PAD labels, no pass@k,
a ``submission.json`` still written; a line on stderr says so and names the
solutions file looked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import DataError, Split, make_split, read_split, read_text_file, say

from .augment import Augmentation
from .dataset import Tables, _task_json, augmented_test_rows
from .sources import ArcDataError, Puzzle, _shown, load_json, parse_tasks

#: The layout of the state (``format``); another is refused on import.
FORMAT = 1
#: How many unknown task ids an error names.
SHOWN_IDS = 3


def export(data_dir: Path) -> dict[str, Any]:
    """The state of the data folder ``data_dir``: the test set's tasks alone."""
    data_dir = Path(data_dir)
    tables = Tables(data_dir)
    meta = read_split(data_dir / "test").metadata
    where = data_dir / "test" / "metadata.json"
    for key in ("test_set", "augmentations", "canvas", "num_puzzle_identifiers"):
        if key not in meta:
            raise DataError(f"{where}: no {key}: not the test split of an ARC data set")
    try:
        tasks = tables.test_tasks
    except (OSError, ValueError) as error:
        raise DataError(f"{data_dir / 'arc' / 'test_tasks.json'}: unreadable ({error})") from None
    ids = sorted(tasks, key=lambda task_id: tasks[task_id]["group"])
    groups = np.array([tasks[task_id]["group"] for task_id in ids], dtype=np.int32)
    counts = np.asarray(tables.counts)[groups].astype(np.int32)
    width = int(counts.max(initial=1))
    return {
        "format": FORMAT,
        "task_ids": ids,
        "test_set": str(meta["test_set"]),
        "augmentations": int(meta["augmentations"]),
        "canvas": int(meta["canvas"]),
        "num_puzzle_identifiers": int(meta["num_puzzle_identifiers"]),
        "groups": groups,
        "counts": counts,
        "augmentation_sets": np.ascontiguousarray(tables.augmentations[groups, :width], np.int8),
    }


@attrs.frozen(eq=False)
class ArcState:
    """A model's ARC state (:func:`export`'s, checked by :meth:`load`)."""

    task_ids: tuple[str, ...]
    groups: np.ndarray  # int32 [G]
    counts: np.ndarray  # int32 [G]
    augmentation_sets: np.ndarray  # int8 [G, W, 11]
    test_set: str
    augmentations: int
    canvas: int
    num_puzzle_identifiers: int
    index: dict[str, int]  # task id -> its row

    @classmethod
    def load(cls, state: Mapping[str, Any], canvas: int) -> ArcState:
        """Check ``state`` against its layout and the task's ``canvas``; DataError
        naming the first key that does not fit."""
        where = "the model's ARC state"
        values = {}
        for key in ("format", "augmentations", "canvas", "num_puzzle_identifiers"):
            value = _get(state, key, where)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"{where}: {key} is {value!r}, not a positive integer")
            values[key] = value
        if values["format"] != FORMAT:
            raise DataError(
                f"{where}: format {values['format']}, this version of trm-plugin-arc reads "
                f"{FORMAT}: make the model folder again with this version"
            )
        if values["canvas"] != canvas:
            raise DataError(
                f"{where}: canvas {values['canvas']}, but the task is configured for "
                f"{canvas} (data.options.canvas): configure it with the model's data options"
            )
        count = values["augmentations"]
        test_set = _get(state, "test_set", where)
        if not isinstance(test_set, str):
            raise DataError(f"{where}: test_set is {test_set!r}, not a set name")
        ids = _get(state, "task_ids", where)
        if not isinstance(ids, list | tuple) or not ids or not all(isinstance(i, str) for i in ids):
            raise DataError(f"{where}: task_ids is not a non-empty list of task ids (strings)")
        if len(set(ids)) != len(ids):
            raise DataError(f"{where}: task_ids names a task twice")
        tasks = len(ids)
        groups = _integers(state, "groups", (tasks,), where)
        counts = _integers(state, "counts", (tasks,), where)
        sets = _integers(state, "augmentation_sets", (tasks, None, 11), where)
        if (groups < 0).any() or len(np.unique(groups)) != tasks:
            raise DataError(f"{where}: groups are not distinct task numbers >= 0")
        if int(groups.max()) * count + count >= values["num_puzzle_identifiers"]:
            raise DataError(
                f"{where}: task {int(groups.max())} has identifiers past "
                f"num_puzzle_identifiers {values['num_puzzle_identifiers']}"
            )
        if (counts < 1).any() or int(counts.max()) > min(count, sets.shape[1]):
            raise DataError(
                f"{where}: counts must be 1..{min(count, sets.shape[1])} (augmentations, "
                "and the width of augmentation_sets)"
            )
        held = np.arange(sets.shape[1]) < counts[:, None]  # [G, W]: a task's own rows
        colours = sets[..., 1:]
        valid = ((sets[..., 0] >= 0) & (sets[..., 0] < 8) & (colours[..., 0] == 0)
                 & (np.sort(colours, axis=-1) == np.arange(10)).all(-1))  # fmt: skip
        if not valid[held].all():
            g, a = np.argwhere(held & ~valid)[0]
            raise DataError(
                f"{where}: augmentation_sets[{g}, {a}] is {sets[g, a].tolist()}, not a "
                "dihedral transform 0-7 and a permutation of colours 0-9 fixing 0"
            )
        return cls(
            tuple(ids), groups.astype(np.int32), counts.astype(np.int32),
            sets.astype(np.int8), test_set, count, values["canvas"],
            values["num_puzzle_identifiers"], {task_id: i for i, task_id in enumerate(ids)},
        )  # fmt: skip

    def read(self, path: Path) -> tuple[Split, Tables]:
        """The split of the ARC file ``path`` and the tables its evaluation votes with.

        Raises ArcDataError (a DataError) naming the file: not ARC JSON; a bad task,
        grid or solutions file (as the data build names them); tasks this model never
        learned; a test grid larger than the canvas.
        """
        path = Path(path)
        puzzles, solutions = _puzzles(path)
        unknown = [p.id for p in puzzles if p.id not in self.index]
        if unknown:
            shown = ", ".join(_shown(task_id) for task_id in unknown[:SHOWN_IDS])
            more = f" and {len(unknown) - SHOWN_IDS} more" if len(unknown) > SHOWN_IDS else ""
            raise ArcDataError(
                f"{path}: {len(unknown)} of its {len(puzzles)} tasks are unknown to this model "
                f"({shown}{more}): ARC puzzle embeddings are per task, and a model keeps those "
                f"of its test set's tasks alone (the {len(self.task_ids)} tasks of "
                f"{self.test_set!r}), so a task must be trained on its demonstrations first: "
                "add the file as a set in data.options.sets (source: json, challenges: FILE) "
                "and train"
            )
        for puzzle in puzzles:
            _check_canvas(puzzle, self.canvas, path)
        puzzles.sort(key=lambda p: int(self.groups[self.index[p.id]]))
        inputs: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        identifiers: list[int] = []
        tasks: dict[str, Any] = {}
        for puzzle in puzzles:
            i = self.index[puzzle.id]
            g = int(self.groups[i])
            augmentations = [
                Augmentation.from_row(r) for r in self.augmentation_sets[i, : self.counts[i]]
            ]
            base = 1 + g * self.augmentations
            rows = augmented_test_rows(
                puzzle, base, augmentations, self.canvas, inputs, labels, identifiers
            )
            tasks[puzzle.id] = {"group": g, "rows": rows, **_task_json(puzzle)}
        hidden = sum(pair.output is None for p in puzzles for pair in p.test)
        if hidden:
            say(_hidden_note(path, solutions, hidden, sum(len(p.test) for p in puzzles)))
        split = make_split(
            path, np.stack(inputs), np.stack(labels), np.array(identifiers, dtype=np.int32),
            task="arc", canvas=self.canvas, augmentations=self.augmentations,
            num_puzzle_identifiers=self.num_puzzle_identifiers, test_set=self.test_set,
        )  # fmt: skip
        tables = Tables.from_arrays(
            self.augmentation_sets, self.counts, self.augmentations, self.groups, tasks
        )
        return split, tables


def _get(state: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in state:
        raise DataError(
            f"{where}: no {key} (the state ArcTask.export_state gives; keys: "
            f"{', '.join(sorted(map(str, state))) or 'none'})"
        )
    return state[key]


def _integers(
    state: Mapping[str, Any], key: str, shape: tuple[int | None, ...], where: str
) -> np.ndarray:
    """The integer array ``state[key]`` of ``shape`` (None: any length)."""
    value = np.asarray(_get(state, key, where))
    fits = len(value.shape) == len(shape) and all(
        want is None or got == want for got, want in zip(value.shape, shape, strict=True)
    )
    if not np.issubdtype(value.dtype, np.integer) or not fits:
        wanted = ", ".join("N" if n is None else str(n) for n in shape)
        raise DataError(
            f"{where}: {key} is {value.dtype} {list(value.shape)}, not integers [{wanted}]"
        )
    return value.astype(np.int64)


def solutions_file(challenges: Path) -> Path | None:
    """The ARC Prize solutions file of ``challenges`` (``X_challenges.json`` ->
    ``X_solutions.json`` in the same folder), or None for another name."""
    name = challenges.name
    if not name.endswith("challenges.json"):
        return None
    return challenges.with_name(name[: -len("challenges.json")] + "solutions.json")


def _puzzles(path: Path) -> tuple[list[Puzzle], Path | None]:
    """The tasks of an ARC file (their known test outputs filled in) and the solutions
    file looked for (None: the name is no ``X_challenges.json``)."""
    loaded = load_json(read_text_file(path, ArcDataError), str(path))
    if isinstance(loaded, dict) and isinstance(loaded.get("train"), list) and "test" in loaded:
        return parse_tasks({path.stem: loaded}, None, str(path)), None  # one task
    if not (
        isinstance(loaded, dict)
        and any(isinstance(t, Mapping) and "train" in t and "test" in t for t in loaded.values())
    ):
        raise ArcDataError(
            f"{path}: not an ARC challenges file: expected an object of task id -> "
            '{"train": [pairs], "test": [pairs]} (or one task {"train", "test"})'
        )
    solutions = solutions_file(path)
    if solutions is None or not solutions.is_file():
        return parse_tasks(loaded, None, str(path)), solutions
    answers = load_json(read_text_file(solutions, ArcDataError), str(solutions))
    return parse_tasks(loaded, answers, str(path), str(solutions)), solutions


def _check_canvas(puzzle: Puzzle, canvas: int, path: Path) -> None:
    """Every test grid of ``puzzle`` fits the model's canvas (the demonstrations are
    shown, not encoded)."""
    for number, pair in enumerate(puzzle.test, start=1):
        for what, grid in (("input", pair.input), ("output", pair.output)):
            if grid is not None and max(grid.shape) > canvas:
                raise ArcDataError(
                    f"{path}: task {_shown(puzzle.id)}: test {what} {number} is "
                    f"{grid.shape[0]}x{grid.shape[1]}, larger than the model's "
                    f"{canvas}x{canvas} canvas (data.options.canvas): the model cannot take it"
                )


def _hidden_note(path: Path, solutions: Path | None, hidden: int, total: int) -> str:
    if solutions is not None and not solutions.is_file():
        why = f"no solutions file {solutions.name} beside it"
    else:
        why = "no inline outputs; a file named X_challenges.json reads X_solutions.json beside it"
    return (
        f"{path}: {hidden} of {total} test inputs have no known output ({why}): scored as a "
        "hidden test set: submission.json is written, pass@k is not"
    )
