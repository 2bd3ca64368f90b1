"""Inference strategies, the engine side: trajectories, selections, accuracy against compute.

A strategy (``trm_core.Strategy``, registered through ``register_strategies``)
decides how a trained model answers a batch of puzzles. The building blocks
here serve the first-party strategies and anyone's:

- :func:`trajectories` runs several trajectories per puzzle in one batch
  (``puzzles x trajectories`` rows per forward), optionally past
  ``halt_max_steps``, with Gaussian noise added to the latent state after each
  supervision step (the first trajectory of each puzzle stays noise-free, so one
  trajectory is the paper's deterministic unroll);
- :func:`select_by_halt`, :func:`select_by_vote` and :func:`select_checked`
  choose one answer per puzzle among its candidates;
- :func:`evaluate_strategy` scores a split at every budget (1, 2, 4, ... up to
  the strategy's) and :func:`format_report` prints accuracy against compute.

The noise follows Probabilistic TRM (arXiv:2605.19943): at each supervision
step, ``z <- z + sigma * rms(z) * N(0, 1)`` with ``rms`` the per-token root mean
square over the hidden dimension, and the trajectory with the highest final
halt logit is the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from .config import ConfigError
from .data import Split, eval_batches, mix_seed
from .distributed import World
from .interfaces import Strategy, Task
from .registry import Registry, UnknownPluginError, get_registry


@attrs.define
class Answers:
    """What a strategy returns for one batch of B puzzles.

    ``by_budget`` maps each budget (in increasing order, the last the strategy's
    full budget) to its selections, each ``[B, S]`` predicted tokens; the first
    selection is the strategy's answer. ``passes`` maps each budget to the
    forward passes (supervision steps through the model) it spends per puzzle.
    ``budget`` names what the budget counts (``k``, ``augmentations``, ``steps``).
    """

    by_budget: dict[int, dict[str, Tensor]]
    passes: dict[int, float]
    budget: str


def doubling(limit: int) -> list[int]:
    """1, 2, 4, ... below ``limit``, then ``limit`` itself."""
    out, value = [], 1
    while value < limit:
        out.append(value)
        value *= 2
    return [*out, limit]


def _continue(carry: Any) -> Any:
    """The carry with no slot halted, so the next step refines instead of restarting."""
    return attrs.evolve(carry, halted=torch.zeros_like(carry.halted))


def _perturb(state: Tensor, sigma: float, keep: Tensor, generator: torch.Generator) -> Tensor:
    """``state + sigma * rms(state) * noise`` on rows where ``keep`` is False."""
    work = state.float()
    scale = work.pow(2).mean(-1, keepdim=True).sqrt()  # [N, L, 1] per-token RMS
    noise = torch.randn(work.shape, generator=generator, device=work.device)
    noisy = work + sigma * scale * noise * (~keep).view(-1, 1, 1)
    return noisy.to(state.dtype)


@torch.no_grad()
def trajectories(
    model: Any,
    batch: Mapping[str, Tensor],
    members: int,
    *,
    steps: int | None = None,
    sigma: float = 0.0,
    perturb: str = "z",
    clean: Tensor | None = None,
    seed: int = 0,
    on_step: Callable[[int, Tensor, Tensor], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Run ``batch`` (already ``members`` rows per puzzle, puzzle-major) as trajectories.

    Args:
        model: a TRMModel in eval mode.
        batch: ``inputs`` [B*M, S], ``puzzle_identifiers`` [B*M].
        members: M, the trajectories per puzzle.
        steps: supervision steps (default ``halt_max_steps``); more keep refining
            the same answer (each slot's halted flag is cleared between steps).
        sigma: noise scale; 0 runs every trajectory deterministically.
        perturb: which state gets noise: ``z``, ``y`` or ``yz``.
        clean: [M] bool, members that get no noise (default: member 0 only).
        seed: seeds the noise; the same seed, batch and device give the same draws.
        on_step: ``on_step(step, predictions [B, M, S], halt_logits [B, M])`` after each step.

    Returns:
        ``(predictions [B, M, S], halt_logits [B, M] float32)`` after the last step.
    """
    steps = model.config.halt_max_steps if steps is None else steps
    rows = batch["inputs"].shape[0]
    if rows % members:
        raise ValueError(f"{rows} rows are not a whole number of puzzles of {members} members")
    device = batch["inputs"].device
    if clean is None:
        clean = torch.arange(members, device=device) == 0
    keep = clean.to(device).repeat(rows // members)  # [B*M]
    generator = torch.Generator(device=device).manual_seed(int(seed) % 2**63)
    carry = model.initial_carry(batch)
    for step in range(1, steps + 1):
        carry, out = model(carry, batch)
        if on_step is not None:
            on_step(step, *_per_puzzle(out, members))
        if step == steps:
            break
        carry = _continue(carry)
        if sigma > 0:
            if "z" in perturb:
                carry = attrs.evolve(carry, z=_perturb(carry.z, sigma, keep, generator))
            if "y" in perturb:
                carry = attrs.evolve(carry, y=_perturb(carry.y, sigma, keep, generator))
    return _per_puzzle(out, members)


def _per_puzzle(out: Mapping[str, Tensor], members: int) -> tuple[Tensor, Tensor]:
    predictions = out["logits"].argmax(-1)
    return (
        predictions.view(-1, members, predictions.shape[-1]),
        out["halt_logits"].float().view(-1, members),
    )


# ----------------------------------------------------------------------------- selections


def _gather(predictions: Tensor, index: Tensor) -> Tensor:
    return predictions[torch.arange(len(predictions), device=predictions.device), index]


def select_by_halt(predictions: Tensor, halt_logits: Tensor) -> Tensor:
    """Each puzzle's candidate with the highest halt logit (the model's own confidence).

    Args:
        predictions: [B, M, S]; halt_logits: [B, M]. Returns [B, S].
    """
    return _gather(predictions, halt_logits.argmax(1))


def select_by_vote(predictions: Tensor, halt_logits: Tensor) -> Tensor:
    """Each puzzle's most frequent answer; ties go to the higher mean halt probability
    of its voters, then to the earlier candidate (as ARC's evaluator ranks votes)."""
    same = (predictions[:, :, None, :] == predictions[:, None, :, :]).all(-1)  # [B, M, M]
    votes = same.sum(-1).float()
    confidence = (same * torch.sigmoid(halt_logits)[:, None, :]).sum(-1) / votes
    return _gather(predictions, (votes + 0.999 * confidence).argmax(1))


def select_checked(predictions: Tensor, halt_logits: Tensor, valid: Tensor) -> Tensor:
    """Like :func:`select_by_halt`, among the candidates the task's rules accept
    (``valid`` [B, M]); a puzzle with none falls back to all of its candidates."""
    masked = torch.where(valid, halt_logits, halt_logits - 1e9)
    return _gather(predictions, masked.argmax(1))


def checks_answers(task: Task) -> bool:
    """Whether ``task`` can judge an answer by its rules alone (``Task.check_answer``)."""
    return type(task).check_answer is not Task.check_answer


def rule_valid(task: Task, inputs: Tensor, predictions: Tensor) -> Tensor:
    """[B, M] whether each candidate passes ``task.check_answer`` against its puzzle.

    Args:
        inputs: [B, S] the puzzles (as given, not augmented); predictions: [B, M, S].
    """
    puzzles, answers = inputs.cpu().numpy(), predictions.cpu().numpy()
    valid = np.zeros(answers.shape[:2], dtype=bool)
    for b, puzzle in enumerate(puzzles):
        seen: dict[bytes, bool] = {}
        for m, answer in enumerate(answers[b]):
            key = answer.tobytes()
            if key not in seen:
                seen[key] = task.check_answer(puzzle, answer) == []
            valid[b, m] = seen[key]
    return torch.from_numpy(valid).to(predictions.device)


# ----------------------------------------------------------------------------- choosing one


def make_strategy(
    section: Mapping[str, Any] | None,
    registry: Registry | None = None,
    name: str | None = None,
) -> tuple[str, Strategy]:
    """The strategy a ``strategy`` config section names, with its options.

    Args:
        section: ``{"name": ..., <option>: ...}``; ``name`` overrides its ``name``.
    Raises:
        ConfigError: an unknown name (with the nearest ones) or a bad option.
    """
    registry = registry or get_registry()
    section = dict(section or {})
    chosen = name or section.pop("name", None) or "unroll"
    section.pop("name", None)
    try:
        cls = registry.get("strategy", chosen)
    except UnknownPluginError as error:
        raise ConfigError(str(error)) from None
    return chosen, cls(cls.options_from(section))


def check_strategy(name: str, strategy: Strategy, task: Task, model: Any) -> None:
    """Raise ConfigError when ``strategy`` cannot serve ``task`` with ``model``."""
    problem = strategy.problem(task, model)
    if problem:
        raise ConfigError(f"strategy {name!r}: {problem}")


# ----------------------------------------------------------------------------- evaluation


@attrs.define
class StrategyReport:
    """Accuracy against compute for one split (filled on rank 0)."""

    split: str
    puzzles: int
    budget: str
    seconds: float  # wall time of the whole split at the full budget
    rows: list[dict[str, Any]]  # one per budget: budget, passes, selections -> metrics

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@torch.no_grad()
def evaluate_strategy(
    model: Any,
    task: Task,
    split: Split,
    strategy: Strategy,
    world: World,
    *,
    batch_size: int,
    max_examples: int | None = None,
    seed: int | None = None,
    name: str = "test",
) -> StrategyReport | None:
    """Answer (a prefix of) ``split`` with ``strategy`` and score every budget and selection.

    Puzzles go ``batch_size // strategy.rows_per_puzzle()`` at a time (at least one);
    every rank takes its share. ``seed`` defaults to the strategy's own ``seed``
    option (0 without one). Returns the report on rank 0, None elsewhere.
    """
    from .evaluate import gather_in_order, score_rows

    if seed is None:
        seed = int(getattr(strategy.options, "seed", 0) or 0)

    model.eval()
    per_batch = max(1, batch_size // max(1, strategy.rows_per_puzzle()))
    rows_seen: list[np.ndarray] = []
    collected: dict[int, dict[str, list[np.ndarray]]] = {}
    passes: dict[int, float] = {}
    budget_name = ""
    started = time.perf_counter()
    batches = eval_batches(
        split, task, per_batch, world.device, max_examples, world.rank, world.size
    )
    for rows, batch in batches:
        given = {key: batch[key] for key in ("inputs", "puzzle_identifiers")}
        answers = strategy.answer(model, task, given, mix_seed(seed, int(rows[0])))
        budget_name, passes = answers.budget, answers.passes
        for budget, selections in answers.by_budget.items():
            slot = collected.setdefault(budget, {})
            for selection, predictions in selections.items():
                slot.setdefault(selection, []).append(predictions.cpu().numpy())
        rows_seen.append(rows)
    seconds = time.perf_counter() - started
    parts = {
        (budget, selection): predictions
        for budget, selections in collected.items()
        for selection, predictions in selections.items()
    }
    gathered = gather_in_order(
        world, rows_seen, parts, empty={key: (split.inputs.shape[1],) for key in parts},
        extra={"passes": passes, "budget": budget_name, "seconds": seconds},
    )  # fmt: skip
    if gathered is None:
        return None
    rows = gathered.rows
    first = next((e for e in gathered.extras if e["budget"]), gathered.extras[0])
    table = []
    for budget in sorted({budget for budget, _ in gathered.arrays}):
        selections = {
            selection: score_rows(task, split, rows, predictions)
            for (at, selection), predictions in gathered.arrays.items()
            if at == budget
        }
        passes = first["passes"][budget]
        table.append({"budget": budget, "passes": passes, "selections": selections})
    return StrategyReport(
        split=name,
        puzzles=len(rows),
        budget=first["budget"],
        seconds=max(extra["seconds"] for extra in gathered.extras),
        rows=table,
    )


def strategy_reports(
    model: Any,
    task: Task,
    splits: Mapping[str, Split],
    strategy: Strategy,
    world: World,
    *,
    batch_size: int,
    max_examples: int | None = None,
) -> list[StrategyReport]:
    """:func:`evaluate_strategy` on each of ``splits`` by name (every rank); the reports
    on rank 0 (empty elsewhere)."""
    reports = []
    for name, split in splits.items():
        report = evaluate_strategy(
            model, task, split, strategy, world,
            batch_size=batch_size, max_examples=max_examples, name=name,
        )  # fmt: skip
        if report is not None:
            reports.append(report)
    return reports


def format_report(report: StrategyReport, metric: str = "exact_accuracy") -> str:
    """The accuracy-against-compute table: a row per budget, a column per selection."""
    if not report.rows:
        return f"{report.split}: no puzzles"
    selections = list(report.rows[-1]["selections"])
    full = report.rows[-1]["passes"]
    per_puzzle = report.seconds / max(report.puzzles, 1)
    header = [report.budget, "passes/puzzle", "s/puzzle", *selections]
    lines = [header]
    for row in report.rows:
        cells = [
            str(row["budget"]),
            f"{row['passes']:g}",
            f"{per_puzzle * row['passes'] / full:.4f}",
        ]
        for selection in selections:
            value = row["selections"][selection].get(metric)
            cells.append("-" if value is None else f"{100 * value:.2f}%")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        f"{report.split}: {report.puzzles} puzzles, {metric} by selection; "
        f"{report.seconds:.1f} s at the full budget (s/puzzle scaled by passes)"
    ]
    text += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(text)


def options_of(strategy: Strategy) -> dict[str, Any]:
    """A strategy's options as a plain dict (for printing and ``metrics.json``)."""
    return attrs.asdict(strategy.options) if strategy.options is not None else {}


def report_scalars(report: StrategyReport, prefix: str) -> list[tuple[str, float, int]]:
    """``(tag, value, step)`` for the loggers: each selection's metrics against the
    forward passes per puzzle (the step axis), so the curve can be seen."""
    out = []
    for row in report.rows:
        step = round(row["passes"])
        for selection, metrics in row["selections"].items():
            for key, value in metrics.items():
                out.append((f"{prefix}/{report.split}/{selection}/{key}", float(value), step))
    return out
