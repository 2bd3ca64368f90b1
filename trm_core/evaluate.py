"""Evaluation: every sample unrolled to ``halt_max_steps``, the final answer scored.

This is the paper's evaluation (Jolicoeur-Martineau, "Less is More: Recursive
Reasoning with Tiny Networks", arXiv:2510.04871: deep supervision, where each
supervision step refines the answer of the last): at test time every sample runs
all ``halt_max_steps`` supervision steps and the answer after the last is the
prediction. :func:`unroll` is that loop; evaluation, ``LoadedRun.predict`` and
``trm-solve`` all go through it.

With ``eval.early_halting`` (not the paper's behaviour) a sample's answer is
the one at the first step its halt logit turns positive, and accuracy is also
reported after each number of supervision steps: accuracy against compute.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .config import RunConfig
from .data import Split, eval_batches
from .distributed import World, all_gather_objects
from .interfaces import Task
from .losses import IGNORE_LABEL
from .model import TRMModel

#: ``on_step(step, out)``: called by :func:`unroll` after each supervision step (1-based).
StepHook = Callable[[int, dict[str, torch.Tensor]], None]


@torch.no_grad()
def unroll(
    model: TRMModel,
    batch: Mapping[str, torch.Tensor],
    steps: int | None = None,
    on_step: StepHook | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Answer ``batch`` from a fresh carry: ``steps`` supervision steps, then the argmax.

    The one unroll loop of inference: every slot starts from the initial state and
    runs every step (in eval mode no slot halts before ``halt_max_steps``).

    Args:
        model: in eval mode (in training mode slots would halt and restart on their
            halt logits, and explore).
        batch: ``inputs`` [B, S], ``puzzle_identifiers`` [B], and any other
            per-example tensors (``labels``), on the model's device.
        steps: supervision steps, 1..``halt_max_steps`` (default ``halt_max_steps``).
        on_step: called as ``on_step(step, out)`` after each step with the model's
            outputs (``logits`` [B, S, V], ``halt_logits`` [B]); to keep the host from
            waiting for the device it should only queue device work.

    Returns:
        ``(predictions [B, S] tokens, halt_logits [B] float32)`` after the last step,
        on the batch's device (nothing is read back).
    """
    if model.training:
        raise RuntimeError("unroll needs the model in eval mode (call model.eval() first)")
    max_steps = model.config.halt_max_steps
    steps = max_steps if steps is None else steps
    if not 1 <= steps <= max_steps:
        raise ValueError(f"steps must lie in 1..halt_max_steps ({max_steps}), got {steps}")
    carry = model.initial_carry(batch)
    for step in range(1, steps + 1):
        carry, out = model(carry, batch)
        if on_step is not None:
            on_step(step, out)
    return out["logits"].argmax(-1), out["halt_logits"].float()


class EarlyHalting:
    """``eval.early_halting``'s bookkeeping, an :func:`unroll` step hook kept on the device.

    Per batch (:meth:`start`, then the unroll, then :meth:`finish`): each sample's
    answer at the first step its halt logit is positive (the last step's if never),
    that step, and over all batches the number of samples exactly right after each
    number of steps. Nothing is read back to the host until :meth:`finish`'s caller does.
    """

    def __init__(self, max_steps: int, device: torch.device) -> None:
        self.max_steps = max_steps
        self.correct_by_step = torch.zeros(max_steps, dtype=torch.long, device=device)

    def start(self, labels: torch.Tensor) -> None:
        """A new batch with these ``labels`` [B, S] (unscored positions count as right)."""
        self.labels, self.unscored = labels, labels == IGNORE_LABEL
        self.first_halt = torch.zeros(len(labels), dtype=torch.long, device=labels.device)
        self.prediction = torch.zeros_like(labels)

    def __call__(self, step: int, out: dict[str, torch.Tensor]) -> None:
        prediction = out["logits"].argmax(-1)  # [B, S]
        exact = ((prediction == self.labels) | self.unscored).all(-1)
        self.correct_by_step[step - 1] += exact.sum()
        now = (out["halt_logits"] > 0) & (self.first_halt == 0)
        self.first_halt = torch.where(now, step, self.first_halt)
        self.prediction = torch.where(now[:, None], prediction, self.prediction)

    def finish(self, prediction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(answers [B, S], steps [B])`` of the batch; ``prediction``: the last step's."""
        never = self.first_halt == 0
        steps = torch.where(never, self.max_steps, self.first_halt)
        return torch.where(never[:, None], prediction, self.prediction), steps


@attrs.define
class EvalResult:
    """Metrics (rank 0), rendered puzzles and, with early halting, accuracy by steps."""

    metrics: dict[str, float]
    images: list[np.ndarray]
    predictions: np.ndarray | None  # [N, S] on rank 0, in split order
    halt_logits: np.ndarray | None  # [N] final halt logits on rank 0
    by_step: list[float] | None = None  # exact accuracy after 1..halt_max_steps steps


@torch.inference_mode()
def evaluate(
    model: TRMModel,
    task: Task,
    split: Split,
    config: RunConfig,
    world: World,
    out_dir: Path | None = None,
) -> EvalResult:
    """Run the model over (a prefix of) ``split``; every rank takes its share.

    Runs under ``torch.inference_mode`` (no autograd bookkeeping at all; the tensors
    made here never enter a training step).

    The task scores the predictions too (``Task.evaluate_predictions``) and may
    write its outputs into ``out_dir`` (rank 0 only; see :func:`task_scores`).
    """
    model.eval()
    max_steps = model.config.halt_max_steps
    early = EarlyHalting(max_steps, world.device) if config.eval.early_halting else None
    rows_seen, predictions, halts, early_predictions, early_steps = [], [], [], [], []
    batches = eval_batches(
        split, task, config.eval.batch_size, world.device, config.eval.max_examples,
        world.rank, world.size,
    )  # fmt: skip
    for rows, batch in batches:
        if early is not None:
            early.start(batch["labels"])
        prediction, halt_logits = unroll(model, batch, on_step=early)
        if early is not None:
            early_prediction, first_halt = early.finish(prediction)
            early_predictions.append(early_prediction.cpu().numpy())
            early_steps.append(first_halt.cpu().numpy())
        rows_seen.append(rows)
        predictions.append(prediction.cpu().numpy())
        halts.append(halt_logits.cpu().numpy())

    width = split.inputs.shape[1]
    correct_by_step = np.zeros(max_steps) if early is None else early.correct_by_step.cpu().numpy()
    gathered = gather_in_order(
        world, rows_seen,
        {"predictions": predictions, "halts": halts, "early_predictions": early_predictions,
         "early_steps": early_steps},
        empty={"predictions": (width,), "early_predictions": (width,)},
        extra={"correct_by_step": correct_by_step.astype(np.float64)},
    )  # fmt: skip
    if gathered is None:
        return EvalResult({}, [], None, None)
    rows = gathered.rows
    prediction, halt_logits = gathered.arrays["predictions"], gathered.arrays["halts"]
    metrics = score_rows(task, split, rows, prediction, halt_logits, task_metrics=False)
    task_metrics, images = task_scores(
        task, split, rows, prediction, halt_logits, out_dir, config.eval.images
    )
    metrics.update(task_metrics)
    metrics["examples"] = float(len(rows))
    by_step = None
    if early is not None and len(rows):
        early_correct = score_rows(
            task, split, rows, gathered.arrays["early_predictions"], task_metrics=False
        )
        metrics["early_halting/exact_accuracy"] = early_correct["exact_accuracy"]
        metrics["early_halting/mean_steps"] = float(gathered.arrays["early_steps"].mean())
        total = sum(extra["correct_by_step"] for extra in gathered.extras)
        by_step = [float(value) / len(rows) for value in total]
    return EvalResult(metrics, images, prediction, halt_logits, by_step)


@attrs.frozen
class Gathered:
    """What every rank answered, on rank 0, in the split's row order."""

    rows: np.ndarray  # [N] the rows answered, ascending
    arrays: dict[Any, np.ndarray]  # each [N, ...], row i of each is rows[i]'s
    extras: list[dict[str, Any]]  # each rank's other values (times, counts), by rank


def gather_in_order(
    world: World,
    rows: list[np.ndarray],
    arrays: Mapping[Any, list[np.ndarray]],
    *,
    empty: Mapping[Any, tuple[int, ...]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Gathered | None:
    """The one gather of every evaluation (plain, early-halting, strategies): each rank's
    answered ``rows`` (batches in order) and its ``arrays`` (per key, one part per
    batch, aligned with ``rows``), gathered on rank 0 and sorted by row; ``empty`` gives
    the trailing shape of a key a rank answered no row of. None on the other ranks."""
    empty = empty or {}

    def joined(key: Any, parts: list[np.ndarray]) -> np.ndarray:
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, *empty.get(key, ())), dtype=np.int64)

    local = {
        "rows": joined(None, rows),
        "arrays": {key: joined(key, parts) for key, parts in arrays.items()},
        "extra": dict(extra or {}),
    }
    gathered = all_gather_objects(local, world)
    if not world.is_main:
        return None
    every = np.concatenate([g["rows"] for g in gathered])
    order = np.argsort(every, kind="stable")
    keys = next((g["arrays"] for g in gathered if len(g["rows"])), gathered[0]["arrays"])
    merged = {}
    for key in keys:
        joined_all = np.concatenate([g["arrays"][key] for g in gathered if key in g["arrays"]])
        # a key no batch filled (early halting off) stays empty
        merged[key] = joined_all[order] if len(joined_all) == len(every) else joined_all
    return Gathered(every[order], merged, [g["extra"] for g in gathered])


def score_rows(
    task: Task,
    split: Split,
    rows: np.ndarray,
    predictions: np.ndarray,
    halt_logits: np.ndarray | None = None,
    *,
    task_metrics: bool = True,
) -> dict[str, float]:
    """The engine's scores of ``predictions`` for ``split``'s ``rows`` (:func:`score`),
    with the task's own (``Task.metrics``) unless ``task_metrics`` is False (the
    caller asks ``Task.evaluate_predictions`` instead)."""
    labels = np.asarray(split.labels[rows])
    metrics = score(predictions, labels, halt_logits, task.ignore_label_id)
    if task_metrics:
        metrics.update(task.metrics(np.asarray(split.inputs[rows]), labels, predictions))
    return metrics


def task_scores(
    task: Task,
    split: Split,
    rows: np.ndarray,
    prediction: np.ndarray,
    halt_logits: np.ndarray,
    out_dir: Path | None,
    images: int,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """``task.evaluate_predictions``, whose outputs failing to be written (a read-only
    folder, a full disk) does not lose the scores: one ``warning:`` line on stderr names
    what could not be written and why, and the task scores again writing nothing."""
    try:
        return task.evaluate_predictions(split, rows, prediction, halt_logits, out_dir, images)
    except OSError as error:
        if out_dir is None:
            raise
        where = error.filename or out_dir
        reason = (error.strerror or str(error)).lower()
        print(
            f"warning: could not write {where} ({reason}); the metrics are kept, "
            "the task's output files are not written",
            file=sys.stderr,
            flush=True,
        )
    return task.evaluate_predictions(split, rows, prediction, halt_logits, None, images)


def evaluate_splits(
    model: TRMModel,
    task: Task,
    test: Split,
    extra: Mapping[str, Split],
    config: RunConfig,
    world: World,
    out_dir: Path | None = None,
) -> tuple[dict[str, float], dict[str, EvalResult]]:
    """Evaluate the test split and each extra split with the model's current weights.

    Returns ``(metrics, results)`` on rank 0 (``({}, {})`` elsewhere): the test
    split's metrics as they are, an extra split's named ``<name>/...``, and the
    ``seconds`` it all took; ``results`` by prefix (``""``, ``"<name>/"``). The
    task's outputs go to ``out_dir`` (rank 0), an extra split's to ``<name>/`` in it.
    """
    splits = {"": test, **{f"{name}/": split for name, split in extra.items()}}
    return evaluate_named(model, task, splits, config, world, out_dir)


def evaluate_named(
    model: TRMModel,
    task: Task,
    splits: Mapping[str, Split],
    config: RunConfig,
    world: World,
    out_dir: Path | None = None,
) -> tuple[dict[str, float], dict[str, EvalResult]]:
    """Evaluate each split of ``splits`` ({metric prefix: split}); see
    :func:`evaluate_splits`, which names the test split's metrics with the prefix ""."""
    started = time.monotonic()
    results = {}
    for prefix, split in splits.items():
        where = None if out_dir is None or not world.is_main else Path(out_dir) / prefix
        results[prefix] = evaluate(model, task, split, config, world, where)
    if not world.is_main:
        return {}, {}
    metrics = {}
    for prefix, result in results.items():
        metrics.update({prefix + key: value for key, value in result.metrics.items()})
    metrics["seconds"] = time.monotonic() - started
    return metrics, results


def score(
    prediction: np.ndarray, labels: np.ndarray, halt_logits: np.ndarray | None, ignore_id: int
) -> dict[str, float]:
    """Token and exact accuracy (and halting accuracy) over scored positions.

    Rows with no scored position (a test set whose answers are hidden) are left
    out; with none left the result is empty.

    Args:
        prediction, labels: [N, S] tokens; labels equal to ``ignore_id`` are not scored.
        halt_logits: [N] or None.
    """
    if len(labels) == 0:
        return {"token_accuracy": 0.0, "exact_accuracy": 0.0}
    known = (labels != ignore_id).any(-1)
    if not known.all():
        if not known.any():
            return {}
        prediction, labels = prediction[known], labels[known]
        halt_logits = None if halt_logits is None else halt_logits[known]
    scored = labels != ignore_id
    correct = (prediction == labels) & scored
    counts = np.maximum(scored.sum(-1), 1)
    exact = correct.sum(-1) == scored.sum(-1)
    metrics = {
        "token_accuracy": float((correct.sum(-1) / counts).mean()),
        "exact_accuracy": float(exact.mean()),
    }
    if halt_logits is not None:
        metrics["halt_accuracy"] = float(((halt_logits >= 0) == exact).mean())
    return metrics
