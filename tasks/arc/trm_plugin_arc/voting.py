"""ARC scoring as the TRM paper (arXiv:2510.04871) scores it, and ARC Prize submissions.

Every test input is predicted once per augmentation of its task. Each
prediction is cropped at its markers (:func:`trm_plugin_arc.grid.crop_many`),
mapped back by the inverse augmentation, and the answers of one test input
vote: candidates rank by vote count, ties by mean halt confidence
(sigmoid of the halt logit). pass@k counts a test input solved when its
answer is among its top k candidates; a task scores the share of its test
inputs solved (partial credit), and pass@k is the mean over tasks. The top
two candidates are the submission's ``attempt_1`` and ``attempt_2``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import atomic_write_text

from .augment import Augmentation
from .grid import COLOURS, MAX_SIDE, crop_many

PASS_KS = (1, 2, 5, 10, 100, 1000)
#: The placeholder answer a submission gives a test input with no valid prediction.
EMPTY_ANSWER = [[0]]


@attrs.define
class Candidate:
    """One distinct answer to a test input, with its votes."""

    grid: np.ndarray
    votes: int = 0
    confidence_sum: float = 0.0

    @property
    def confidence(self) -> float:
        return self.confidence_sum / max(1, self.votes)


def _key(grid: np.ndarray) -> bytes:
    return np.array(grid.shape, dtype=np.int32).tobytes() + np.ascontiguousarray(grid).tobytes()


def rank(answers: Iterable[tuple[np.ndarray | None, float]]) -> list[Candidate]:
    """Distinct answers ranked by votes, then mean halt confidence (ties keep first-seen order).

    ``answers``: (grid in the task's original frame, or None when the prediction
    had no grid; halt logit) per augmentation.
    """
    candidates: dict[bytes, Candidate] = {}
    for grid, halt_logit in answers:
        if grid is None:
            continue
        candidate = candidates.setdefault(_key(grid), Candidate(grid))
        candidate.votes += 1
        candidate.confidence_sum += float(1.0 / (1.0 + np.exp(-float(halt_logit))))
    ordered = list(candidates.values())
    ordered.sort(key=lambda c: (-c.votes, -c.confidence))
    return ordered


def answers_of(
    predictions: np.ndarray,
    halt_logits: np.ndarray,
    augmentations: Sequence[Augmentation],
) -> list[tuple[np.ndarray | None, float]]:
    """Each prediction cropped and mapped back by its augmentation's inverse."""
    return restored(crop_many(predictions), halt_logits, augmentations)


def restored(
    grids: Sequence[np.ndarray | None],
    halt_logits: np.ndarray,
    augmentations: Sequence[Augmentation],
) -> list[tuple[np.ndarray | None, float]]:
    """:func:`answers_of` for predictions already cropped (None: no grid)."""
    return [
        (None if grid is None else augmentation.invert(grid), float(halt))
        for grid, halt, augmentation in zip(grids, halt_logits, augmentations, strict=True)
    ]


@attrs.define
class Ranking:
    """The ranked candidates of one test input and the rank of the true answer."""

    task: str
    index: int
    candidates: list[Candidate]
    solution: np.ndarray | None
    predicted: int  # augmentations evaluated

    @property
    def answer_rank(self) -> int | None:
        """1-based rank of the true answer among the candidates (None: not among them)."""
        if self.solution is None:
            return None
        key = _key(self.solution)
        for position, candidate in enumerate(self.candidates, start=1):
            if _key(candidate.grid) == key:
                return position
        return None


def pass_at_k(results: Sequence[Ranking], ks: Sequence[int] = PASS_KS) -> dict[str, float]:
    """pass@k per test input with partial credit per task, averaged over tasks.

    Only test inputs with a known solution count; a task scores the share of
    its (scored) test inputs whose answer ranks within k.
    """
    by_task: dict[str, list[Ranking]] = {}
    for result in results:
        if result.solution is not None:
            by_task.setdefault(result.task, []).append(result)
    if not by_task:
        return {}
    metrics = {}
    for k in ks:
        scores = []
        for tests in by_task.values():
            solved = [r.answer_rank is not None and r.answer_rank <= k for r in tests]
            scores.append(sum(solved) / len(tests))
        metrics[f"pass@{k}"] = float(np.mean(scores))
    return metrics


def submission(results: Sequence[Ranking], tasks: Mapping[str, int]) -> dict[str, list]:
    """The ARC Prize submission: every task of ``tasks`` ({id: test inputs}), two attempts each.

    A test input with one candidate repeats it; one with none (not evaluated, or
    no prediction held a grid) gets :data:`EMPTY_ANSWER`.
    """
    found = {(r.task, r.index): r for r in results}
    out: dict[str, list] = {}
    for task_id, count in tasks.items():
        attempts = []
        for index in range(count):
            result = found.get((task_id, index))
            grids = [c.grid.tolist() for c in result.candidates[:2]] if result else []
            grids = (grids or [EMPTY_ANSWER]) * 2
            attempts.append({"attempt_1": grids[0], "attempt_2": grids[1]})
        out[task_id] = attempts
    return out


def submission_problems(payload: Any, tasks: Mapping[str, int]) -> list[str]:
    """What keeps ``payload`` from being a valid ARC Prize submission for ``tasks``.

    The ARC Prize structure: an object with exactly the test set's task ids; for
    each, a list with one entry per test input, in order; each entry an object
    with exactly ``attempt_1`` and ``attempt_2``; each attempt a non-empty
    rectangular list of rows of integers 0-9, at most 30 x 30. Empty: valid.
    """
    if not isinstance(payload, Mapping):
        return ["a submission must be a JSON object of task id -> attempts"]
    problems = []
    missing = [t for t in tasks if t not in payload]
    unknown = [t for t in payload if t not in tasks]
    problems += [f"task {t}: missing" for t in missing]
    problems += [f"task {t}: not a task of the test set" for t in unknown]
    for task_id, count in tasks.items():
        entries = payload.get(task_id)
        if entries is None:
            continue
        if not isinstance(entries, list) or len(entries) != count:
            problems.append(f"task {task_id}: expected a list of {count} test entries")
            continue
        for index, entry in enumerate(entries):
            where = f"task {task_id}, test {index}"
            if not isinstance(entry, Mapping) or set(entry) != {"attempt_1", "attempt_2"}:
                problems.append(f"{where}: expected exactly attempt_1 and attempt_2")
                continue
            for name in ("attempt_1", "attempt_2"):
                issue = _grid_problem(entry[name])
                if issue:
                    problems.append(f"{where}, {name}: {issue}")
    return problems


def _grid_problem(grid: Any) -> str | None:
    if not isinstance(grid, list) or not grid or len(grid) > MAX_SIDE:
        return f"expected 1 to {MAX_SIDE} rows"
    width = len(grid[0]) if isinstance(grid[0], list) else 0
    if not 1 <= width <= MAX_SIDE:
        return f"expected 1 to {MAX_SIDE} columns"
    for row in grid:
        if not isinstance(row, list) or len(row) != width:
            return "ragged rows"
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < COLOURS for c in row):
            return "a cell that is not a colour 0-9"
    return None


def write_submission(path: Path, payload: dict[str, list]) -> Path:
    """Write ``submission.json`` atomically (a crash leaves the previous one whole)."""
    return atomic_write_text(path, json.dumps(payload))
