"""Deep-supervision losses against hand computations of the paper's formulas.

The formulas: docs/architecture.md#deep-supervision-and-halting.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trm_core.losses import (
    IGNORE_LABEL,
    act_loss,
    log_stablemax,
    softmax_cross_entropy,
    stablemax_cross_entropy,
)

# Logits exactly representable in float32, negative, zero and positive.
LOGITS = [
    [[-2.0, -0.5, 0.0, 1.5, 3.0], [0.25, -4.0, 2.0, -1.0, 0.5], [1.25, 0.75, -3.0, 0.0, -0.25]],
    [[4.0, -8.0, 0.5, -0.125, 2.5], [-1.5, -2.5, -0.75, -6.0, -0.5], [0.0, 0.0, 0.0, 0.0, 0.0]],
]
LABELS = [[0, 2, IGNORE_LABEL], [3, IGNORE_LABEL, 4]]


def stablemax_log_probs(row: list[float]) -> list[float]:
    """The paper's stablemax formula in plain Python (float64)."""
    s = [1.0 / (1.0 - x) if x < 0 else x + 1.0 for x in row]
    total = sum(s)
    return [math.log(v / total) for v in s]


def hand_stablemax_ce(logits, labels) -> list[list[float]]:
    return [
        [
            0.0 if y == IGNORE_LABEL else -stablemax_log_probs(row)[y]
            for row, y in zip(r, l, strict=True)
        ]
        for r, l in zip(logits, labels, strict=True)
    ]


def test_log_stablemax_matches_the_formula():
    logits = torch.tensor(LOGITS, dtype=torch.float64)
    expected = torch.tensor(
        [[stablemax_log_probs(row) for row in r] for r in LOGITS], dtype=torch.float64
    )
    torch.testing.assert_close(log_stablemax(logits), expected, rtol=1e-12, atol=1e-12)
    # The probabilities are a distribution.
    torch.testing.assert_close(
        log_stablemax(logits).exp().sum(-1), torch.ones(2, 3, dtype=torch.float64)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stablemax_cross_entropy_is_the_hand_computation_in_float64(dtype):
    logits = torch.tensor(LOGITS, dtype=dtype)  # every value is exact in bfloat16 too
    labels = torch.tensor(LABELS)
    ce = stablemax_cross_entropy(logits, labels)
    assert ce.dtype == torch.float64 and ce.shape == (2, 3)
    expected = torch.tensor(hand_stablemax_ce(LOGITS, LABELS), dtype=torch.float64)
    torch.testing.assert_close(ce, expected, rtol=1e-12, atol=1e-12)
    # Ignored positions contribute exactly 0 (and no NaN from gathering label -100).
    ignored = labels == IGNORE_LABEL
    assert torch.all(ce[ignored] == 0) and torch.all(ce[~ignored] > 0)


def test_stablemax_ignored_positions_get_no_gradient():
    logits = torch.tensor(LOGITS, requires_grad=True)
    labels = torch.tensor(LABELS)
    stablemax_cross_entropy(logits, labels).sum().backward()
    ignored = labels == IGNORE_LABEL
    assert torch.all(logits.grad[ignored] == 0)
    assert torch.all(logits.grad[~ignored].abs().sum(-1) > 0)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stablemax_gradient_is_finite_at_a_logit_of_exactly_one(dtype):
    logits = torch.tensor([[[0.5, 1.0, -2.0, 0.0]]], dtype=dtype, requires_grad=True)
    ce = stablemax_cross_entropy(logits, torch.tensor([[0]]))
    assert torch.isfinite(ce).all()  # the forward value is fine
    ce.sum().backward()
    assert torch.isfinite(logits.grad).all(), logits.grad


def test_softmax_option_equals_torch_cross_entropy():
    logits = torch.tensor(LOGITS)
    labels = torch.tensor(LABELS)
    ce = softmax_cross_entropy(logits, labels)
    assert ce.shape == (2, 3)
    expected = F.cross_entropy(
        logits.reshape(-1, 5), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(2, 3)
    torch.testing.assert_close(ce, expected)
    assert torch.all(ce[labels == IGNORE_LABEL] == 0)


# -- act_loss ------------------------------------------------------------------------------

V = 4


def _one_hot_logits(predictions: list[list[int]], margin: float = 2.0) -> list[list[list[float]]]:
    """Logits whose argmax is ``predictions`` (with some negative entries)."""
    rows = []
    for slot in predictions:
        rows.append([[margin if v == p else -0.5 * (v + 1) for v in range(V)] for p in slot])
    return rows


def _act_case(halt_logits: list[float]):
    """Four slots of 3 positions:

    0: halted, every scored position right (one position ignored);
    1: halted, one of three scored positions wrong;
    2: not halted (wrong);
    3: halted, no scored position.
    """
    labels = [[1, 2, IGNORE_LABEL], [3, 0, 1], [2, 2, 2], [IGNORE_LABEL] * 3]
    predictions = [[1, 2, 0], [3, 0, 2], [1, 1, 1], [0, 1, 2]]
    logits = _one_hot_logits(predictions)
    out = {
        "logits": torch.tensor(logits, requires_grad=True),
        "halt_logits": torch.tensor(halt_logits, requires_grad=True),
    }
    halted = torch.tensor([True, True, False, True])
    steps = torch.tensor([3, 5, 7, 11], dtype=torch.int32)
    return out, torch.tensor(labels), halted, steps, logits, labels


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _bce_with_logits(x: float, target: float) -> float:
    return _softplus(x) - target * x


@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_act_loss_matches_the_hand_computation(weight):
    halt = [0.0, 2.0, -3.0, 1.0]
    out, labels, halted, steps, logits, raw_labels = _act_case(halt)
    total, metrics = act_loss(out, labels, halted, steps, halt_loss_weight=weight)

    ce = hand_stablemax_ce(logits, raw_labels)
    counts = [sum(y != IGNORE_LABEL for y in slot) for slot in raw_labels]
    lm = sum(sum(row) / max(1, n) for row, n in zip(ce, counts, strict=True))
    # seq_is_correct: slot 0 right, 1 wrong, 2 wrong, 3 (nothing scored) vacuously right.
    targets = [1.0, 0.0, 0.0, 1.0]
    halt_loss = sum(_bce_with_logits(x, t) for x, t in zip(halt, targets, strict=True))

    assert metrics["lm_loss"].item() == pytest.approx(lm, rel=1e-6)
    assert metrics["halt_loss"].item() == pytest.approx(halt_loss, rel=1e-6)
    assert total.item() == pytest.approx(lm + weight * halt_loss, rel=1e-6)
    assert total.requires_grad and not any(m.requires_grad for m in metrics.values())

    # Metrics count halted slots with scored positions only: slots 0 and 1.
    assert metrics["count"].item() == 2
    assert metrics["token_accuracy"].item() == pytest.approx(1.0 + 2 / 3)
    assert metrics["exact_accuracy"].item() == 1
    # (halt >= 0) == correct: slot 0 (logit exactly 0, right) counts, slot 1 (2.0, wrong)
    # does not; slots 2 and 3 would count but are excluded.
    assert metrics["halt_accuracy"].item() == 1
    assert metrics["steps"].item() == 3 + 5


def test_act_loss_halt_accuracy_threshold_and_default_weight():
    out, labels, halted, steps, _, _ = _act_case([-1e-3, -0.5, 3.0, -2.0])
    total, metrics = act_loss(out, labels, halted, steps)
    # Slot 0 is right but its halt logit is just below 0; slot 1 is wrong and says so.
    assert metrics["halt_accuracy"].item() == 1
    assert total.item() == pytest.approx(
        metrics["lm_loss"].item() + 0.5 * metrics["halt_loss"].item(), rel=1e-9
    )


def test_act_loss_backward_reaches_every_slot_running_or_not():
    out, labels, halted, steps, _, _ = _act_case([0.0, 2.0, -3.0, 1.0])
    total, _ = act_loss(out, labels, halted, steps)
    total.backward()
    logit_grad = out["logits"].grad
    # Slots 0-2 have scored positions, halted or not: they all get a gradient;
    # slot 3 scores nothing, so its logits get none.
    assert all(logit_grad[i].abs().sum() > 0 for i in range(3))
    assert torch.all(logit_grad[3] == 0)
    assert torch.all(logit_grad[0, 2] == 0)  # the ignored position of slot 0
    assert torch.all(out["halt_logits"].grad != 0)


def test_act_loss_softmax_option():
    out, labels, halted, steps, _, _ = _act_case([0.0, 2.0, -3.0, 1.0])
    _, metrics = act_loss(out, labels, halted, steps, loss="softmax")
    ce = softmax_cross_entropy(out["logits"], labels).detach().double()
    counts = (labels != IGNORE_LABEL).sum(-1).clamp_min(1)
    assert metrics["lm_loss"].item() == pytest.approx((ce.sum(-1) / counts).sum().item())
