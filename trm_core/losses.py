"""Deep-supervision losses and metrics (docs/architecture.md#deep-supervision-and-halting)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .devices import wide_float

IGNORE_LABEL = -100  # labels not to be scored, after collation


def log_stablemax(logits: Tensor) -> Tensor:
    """log of stablemax over the last axis: s(x) = 1/(1-x) for x<0 else x+1, normalised."""
    # clamp: the branch not taken must stay finite too, or its inf poisons the gradient
    s = torch.where(logits < 0, 1 / (1 - logits.clamp(max=0)), logits + 1)
    return torch.log(s / s.sum(dim=-1, keepdim=True))


def stablemax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-position stablemax cross-entropy in float64 (float32 on a device without
    float64, such as MPS: :func:`~trm_core.devices.wide_float`); 0 where labels are
    ignored.

    Args:
        logits: [B, S, V]; labels: [B, S] with IGNORE_LABEL for unscored positions.

    Returns:
        [B, S] float64 (or float32).
    """
    logprobs = log_stablemax(logits.to(wide_float(logits.device)))
    valid = labels != IGNORE_LABEL
    picked = logprobs.gather(-1, torch.where(valid, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0)


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-position softmax cross-entropy in float32; 0 where labels are ignored. [B, S]."""
    flat = F.cross_entropy(
        logits.float().flatten(0, 1),
        labels.long().flatten(),
        ignore_index=IGNORE_LABEL,
        reduction="none",
    )
    return flat.view(labels.shape)


LOSSES = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


def supervision_weights(steps: Tensor, decay: float, max_steps: int) -> Tensor:
    """[B] float32 weights of slots at supervision steps ``steps`` (1-based):
    ``decay^(k-1)`` over the mean of ``decay^(j-1)``, j = 1..max_steps."""
    mean = sum(decay**j for j in range(max_steps)) / max_steps
    k = steps.clamp(1, max_steps).to(torch.float32) - 1
    return torch.pow(torch.full_like(k, decay), k) / mean


def act_loss(
    out: dict[str, Tensor],
    labels: Tensor,
    halted: Tensor,
    steps: Tensor,
    loss: str = "stablemax",
    halt_loss_weight: float = 0.5,
    supervision_decay: float = 1.0,
    max_steps: int = 16,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The deep-supervision loss of one supervision step, summed over slots.

    Args:
        out: the model's outputs (``logits`` [B, S, V], ``halt_logits`` [B]).
        labels: [B, S] of the slots' current examples (IGNORE_LABEL unscored).
        halted: [B] slots that halted at this step (metrics count only these).
        steps: [B] supervision steps taken by each slot's example.
        loss: "stablemax" (the paper's) or "softmax".
        halt_loss_weight: weight of the halting BCE (0.5 in the paper).
        supervision_decay, max_steps: below 1.0, a slot at supervision step k (1-based,
            of ``max_steps`` at most) weighs ``decay^(k-1)`` rescaled so the weights of
            steps 1..max_steps average 1 (CGAR's hierarchical supervision weighting,
            arXiv:2511.08653); 1.0, the paper's: every step alike.

    Returns:
        ``(loss, metrics)``: the loss summed over slots (divide by the global
        batch size before backward) and summed metric counters (divide by
        ``metrics["count"]``), all detached.
    """
    logits, halt_logits = out["logits"], out["halt_logits"]
    mask = labels != IGNORE_LABEL  # [B, S]
    counts = mask.sum(-1)  # [B]
    divisor = counts.clamp_min(1).unsqueeze(-1)  # [B, 1]

    with torch.no_grad():
        correct = mask & (logits.argmax(-1) == labels)  # [B, S]
        seq_correct = correct.sum(-1) == counts  # [B]

    if supervision_decay == 1.0:
        lm_loss = (LOSSES[loss](logits, labels) / divisor).sum()
        halt_loss = F.binary_cross_entropy_with_logits(
            halt_logits, seq_correct.to(halt_logits.dtype), reduction="sum"
        )
    else:
        weight = supervision_weights(steps, supervision_decay, max_steps)  # [B]
        lm_loss = (LOSSES[loss](logits, labels) / divisor * weight[:, None]).sum()
        halt_loss = (
            F.binary_cross_entropy_with_logits(
                halt_logits, seq_correct.to(halt_logits.dtype), reduction="none"
            )
            * weight
        ).sum()
    total = lm_loss + halt_loss_weight * halt_loss

    with torch.no_grad():
        valid = halted & (counts > 0)  # [B]
        metrics = {
            "count": valid.sum(),
            "token_accuracy": torch.where(valid, correct.sum(-1) / divisor.squeeze(-1), 0).sum(),
            "exact_accuracy": (valid & seq_correct).sum(),
            "halt_accuracy": (valid & ((halt_logits >= 0) == seq_correct)).sum(),
            "steps": torch.where(valid, steps, 0).sum(),
            "lm_loss": lm_loss.detach(),
            "halt_loss": halt_loss.detach(),
        }
    return total, metrics
