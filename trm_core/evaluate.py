"""Evaluation: every sample unrolled to ``halt_max_steps`` (TRM_SPEC section 3).

With ``eval.early_halting`` (not the paper's behaviour) a sample's answer is
the one at the first step its halt logit turns positive, and accuracy is also
reported after each number of supervision steps: accuracy against compute.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch

from .config import RunConfig
from .data import Split, eval_batches
from .distributed import World, all_gather_objects
from .interfaces import Task
from .losses import IGNORE_LABEL
from .model import TRMModel


@attrs.define
class EvalResult:
    """Metrics (rank 0), rendered puzzles and, with early halting, accuracy by steps."""

    metrics: dict[str, float]
    images: list[np.ndarray]
    predictions: np.ndarray | None  # [N, S] on rank 0, in split order
    halt_logits: np.ndarray | None  # [N] final halt logits on rank 0
    by_step: list[float] | None = None  # exact accuracy after 1..halt_max_steps steps


@torch.no_grad()
def evaluate(
    model: TRMModel,
    task: Task,
    split: Split,
    config: RunConfig,
    world: World,
    out_dir: Path | None = None,
) -> EvalResult:
    """Run the model over (a prefix of) ``split``; every rank takes its share.

    The task scores the predictions too (``Task.evaluate_predictions``) and may
    write its outputs into ``out_dir`` (rank 0 only).
    """
    model.eval()
    max_steps = model.config.halt_max_steps
    early = config.eval.early_halting
    rows_seen, predictions, halts, early_predictions, early_steps = [], [], [], [], []
    correct_by_step = torch.zeros(max_steps, dtype=torch.float64)
    batches = eval_batches(
        split, task, config.eval.batch_size, world.device, config.eval.max_examples,
        world.rank, world.size,
    )  # fmt: skip
    for rows, batch in batches:
        labels = batch["labels"]  # [B, S]
        scored = labels != IGNORE_LABEL
        carry = model.initial_carry(batch)
        first_halt = torch.zeros(len(rows), dtype=torch.long, device=labels.device)
        early_prediction = torch.zeros_like(labels)
        for step in range(1, max_steps + 1):
            carry, out = model(carry, batch)
            if early:
                prediction = out["logits"].argmax(-1)  # [B, S]
                exact = ((prediction == labels) | ~scored).all(-1)
                correct_by_step[step - 1] += exact.sum().item()
                now = (out["halt_logits"] > 0) & (first_halt == 0)
                first_halt[now] = step
                early_prediction[now] = prediction[now]
        prediction = out["logits"].argmax(-1)
        if early:
            never = first_halt == 0
            first_halt[never] = max_steps
            early_prediction[never] = prediction[never]
            early_predictions.append(early_prediction.cpu().numpy())
            early_steps.append(first_halt.cpu().numpy())
        rows_seen.append(rows)
        predictions.append(prediction.cpu().numpy())
        halts.append(out["halt_logits"].float().cpu().numpy())

    def stacked(parts: list[np.ndarray], width: int | None) -> np.ndarray:
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, width) if width else (0,), dtype=np.int64)

    local = {
        "rows": stacked(rows_seen, None),
        "predictions": stacked(predictions, split.inputs.shape[1]),
        "halts": stacked(halts, None),
        "early_predictions": stacked(early_predictions, split.inputs.shape[1]),
        "early_steps": stacked(early_steps, None),
        "correct_by_step": correct_by_step.numpy(),
    }
    gathered = all_gather_objects(local, world)
    if not world.is_main:
        return EvalResult({}, [], None, None)

    rows = np.concatenate([g["rows"] for g in gathered])
    order = np.argsort(rows)
    rows = rows[order]

    def merged(key: str) -> np.ndarray:
        return np.concatenate([g[key] for g in gathered])[order]

    prediction, halt_logits = merged("predictions"), merged("halts")
    labels = np.asarray(split.labels[rows])
    metrics = score(prediction, labels, halt_logits, task.ignore_label_id)
    task_metrics, images = task.evaluate_predictions(
        split, rows, prediction, halt_logits, out_dir, config.eval.images
    )
    metrics.update(task_metrics)
    metrics["examples"] = float(len(rows))
    by_step = None
    if early and len(rows):
        early_correct = score(merged("early_predictions"), labels, None, task.ignore_label_id)
        metrics["early_halting/exact_accuracy"] = early_correct["exact_accuracy"]
        metrics["early_halting/mean_steps"] = float(merged("early_steps").mean())
        total = sum(g["correct_by_step"] for g in gathered)
        by_step = [float(value) / len(rows) for value in total]
    return EvalResult(metrics, images, prediction, halt_logits, by_step)


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
