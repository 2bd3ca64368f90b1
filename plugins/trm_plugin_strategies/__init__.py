"""The first-party inference strategies: unroll, steps, rollouts, augment-vote.

- ``unroll``: the paper's evaluation, every puzzle once through all
  ``halt_max_steps`` supervision steps (the default; the same predictions as a
  run's own evaluation).
- ``steps``: keep recursing past ``halt_max_steps``, scored after 1, 2, 4, ... N steps.
- ``rollouts``: K trajectories per puzzle with Gaussian noise on the latent state
  after each supervision step (Probabilistic TRM, arXiv:2605.19943), the answer
  chosen by the halting head (``halt``), and beside it by majority vote (``vote``)
  and, where the task can judge answers by its rules, among rule-valid answers
  (``checked``, never mixed into the model-only figures). Optionally over A
  augmented copies of each puzzle too.
- ``augment-vote``: A augmented copies of each puzzle through the task's own
  augmentations, answers mapped back with ``Task.inverse_augment``, votes ranked
  by count then halting confidence (as the ARC evaluator ranks them); optionally
  K noisy trajectories of each copy.

The first trajectory of every copy is noise-free, so K=1 (or A=1) is exactly the
deterministic unroll.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from trm_core import (
    Answers,
    Strategy,
    checks_answers,
    doc,
    doubling,
    hookimpl,
    mix_seed,
    non_negative,
    one_of,
    positive,
    rule_valid,
    select_by_halt,
    select_by_vote,
    select_checked,
    trajectories,
    unroll,
)

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


class Unroll(Strategy):
    """Every puzzle once, through all ``halt_max_steps`` supervision steps."""

    def answer(self, model, task, batch, seed):
        prediction, _ = unroll(model, batch)
        steps = model.config.halt_max_steps
        return Answers({steps: {"answer": prediction}}, {steps: float(steps)}, "steps")


@attrs.define(kw_only=True)
class StepsOptions:
    n: int | None = doc(
        "supervision steps (default: the model's halt_max_steps); more keep refining the answer",
        default=None,
        validator=attrs.validators.optional(positive),
    )


class Steps(Strategy):
    """One trajectory, N supervision steps, scored after 1, 2, 4, ... N steps.

    Also scored after ``halt_max_steps``, where the model was trained to stop.
    """

    Options = StepsOptions

    def answer(self, model, task, batch, seed):
        trained = model.config.halt_max_steps
        n = self.options.n or trained
        budgets = sorted({*doubling(n), *([trained] if trained <= n else [])})
        captured = {}

        def keep(step, predictions, halt_logits):
            if step in budgets:
                captured[step] = {"answer": predictions[:, 0]}

        trajectories(model, batch, 1, steps=n, on_step=keep)
        return Answers(captured, {b: float(b) for b in budgets}, "steps")


@attrs.define(kw_only=True)
class PopulationOptions:
    k: int = doc("trajectories per puzzle (copy)", default=16, validator=positive)
    sigma: float = doc(
        "noise scale, relative to each token's RMS, added after each supervision step",
        default=1.0,
        validator=non_negative,
    )
    perturb: str = doc("the state that gets noise: z, y or yz", default="z",
                       validator=one_of(("z", "y", "yz")))  # fmt: skip
    augmentations: int = doc(
        "copies of each puzzle through the task's augmentations (1: the puzzle alone)",
        default=1,
        validator=positive,
    )
    steps: int | None = doc(
        "supervision steps per trajectory (default: the model's halt_max_steps)",
        default=None,
        validator=attrs.validators.optional(positive),
    )
    check: bool = doc(
        "also report the checked selection (the task's rule check; never model-only)",
        default=True,
    )
    seed: int = doc("seeds the noise and the augmentations", default=0)


class Population(Strategy):
    """A x K candidates per puzzle: A augmented copies, K trajectories of each.

    ``sweep`` is the dimension the accuracy-against-compute table doubles
    (``k`` or ``augmentations``); ``primary`` is the selection reported as the answer.
    """

    Options = PopulationOptions
    sweep = "k"
    primary = "halt"

    def rows_per_puzzle(self) -> int:
        return self.options.k * self.options.augmentations

    def problem(self, task, model):
        if self.options.augmentations > 1:
            lacking = [c for c in ("augment", "inverse_augment") if not task.supports(c)]
            if lacking:
                return (
                    f"the task {type(task).__name__} has no augmentations (it does not "
                    f"implement Task.{' or Task.'.join(lacking)}); set strategy.augmentations=1"
                )
            if model.config.num_puzzle_identifiers > 2:
                return (
                    "the task gives each puzzle an identifier of its own (its augmented "
                    "versions are puzzles of their own, voted over by its evaluator), so "
                    "an augmented copy would have none; set strategy.augmentations=1"
                )
        return None

    def _copies(self, task, puzzle: np.ndarray) -> tuple[np.ndarray, list[int | None]]:
        """A copies of one puzzle ([A, S]) and the augmentation seed of each (None: the
        puzzle itself). Seeds come from ``mix_seed(strategy seed, j)``, j = 1, 2, ...;
        one that gives a copy already made is skipped (a task with few augmentations,
        such as Maze's 8 dihedral transforms, or a symmetric puzzle), up to 8 A tries."""
        copies = self.options.augmentations
        made, seeds, seen = [puzzle], [None], {puzzle.tobytes()}
        j = 0
        while len(made) < copies and j < 8 * copies:
            j += 1
            seed = mix_seed(self.options.seed, j)
            copy = task.augment(puzzle, puzzle, seed)[0]
            if copy.tobytes() in seen:
                continue
            made.append(copy)
            seeds.append(seed)
            seen.add(copy.tobytes())
        while len(made) < copies:  # fewer distinct copies exist: repeat the puzzle itself
            made.append(puzzle)
            seeds.append(None)
        return np.stack(made), seeds

    def candidates(self, model, task, batch, seed):
        """Every candidate answer of each puzzle, in the puzzle's own frame, and its final
        halt logit: ``(predictions [B, A*K, S], halt_logits [B, A*K])``, copy-major (the
        K trajectories of the puzzle itself first). ``trm-demo`` shows them."""
        o = self.options
        inputs, ids = batch["inputs"], batch["puzzle_identifiers"]
        puzzles, length = inputs.shape
        copies, k = o.augmentations, o.k
        members = copies * k
        seeds: list[list[int | None]] = []
        if copies > 1:
            given = inputs.cpu().numpy()
            made = np.empty((puzzles, copies, length), dtype=given.dtype)
            for b, puzzle in enumerate(given):
                made[b], puzzle_seeds = self._copies(task, puzzle)
                seeds.append(puzzle_seeds)
            copied = torch.from_numpy(made).to(inputs.device)
        else:
            copied = inputs[:, None, :]
        member_inputs = copied.repeat_interleave(k, dim=1).reshape(puzzles * members, length)
        rows = {"inputs": member_inputs, "puzzle_identifiers": ids.repeat_interleave(members)}
        clean = torch.arange(members, device=inputs.device) % k == 0
        predictions, halts = trajectories(
            model, rows, members, steps=o.steps, sigma=o.sigma, perturb=o.perturb,
            clean=clean, seed=seed,
        )  # fmt: skip
        if copies > 1:  # every answer back in the puzzle's own frame
            back = predictions.cpu().numpy().reshape(puzzles, copies, k, length)
            for b in range(puzzles):
                for a in range(1, copies):
                    if seeds[b][a] is not None:
                        for t in range(k):
                            back[b, a, t] = task.inverse_augment(back[b, a, t], seeds[b][a])
            predictions = torch.from_numpy(back).to(inputs.device).view(puzzles, members, length)
        return predictions, halts

    def answer(self, model, task, batch, seed):
        o = self.options
        inputs = batch["inputs"]
        puzzles, length = inputs.shape
        copies, k = o.augmentations, o.k
        predictions, halts = self.candidates(model, task, batch, seed)
        valid = rule_valid(task, inputs, predictions) if o.check and checks_answers(task) else None

        steps = o.steps or model.config.halt_max_steps
        grid = predictions.view(puzzles, copies, k, length)
        halt_grid = halts.view(puzzles, copies, k)
        valid_grid = None if valid is None else valid.view(puzzles, copies, k)
        by_budget, passes = {}, {}
        full = k if self.sweep == "k" else copies
        for budget in doubling(full):
            part = (slice(None), slice(None), slice(0, budget))
            if self.sweep != "k":
                part = (slice(None), slice(0, budget))
            candidates = grid[part].reshape(puzzles, -1, length)
            halt = halt_grid[part].reshape(puzzles, -1)
            chosen = {"halt": select_by_halt(candidates, halt),
                      "vote": select_by_vote(candidates, halt)}  # fmt: skip
            if valid_grid is not None:
                chosen["checked"] = select_checked(
                    candidates, halt, valid_grid[part].reshape(puzzles, -1)
                )
            first = {self.primary: chosen.pop(self.primary)}
            by_budget[budget] = {**first, **chosen}
            passes[budget] = float(candidates.shape[1] * steps)
        return Answers(by_budget, passes, self.sweep)


class Rollouts(Population):
    """K noisy trajectories per puzzle, the answer chosen by the halting head."""


@attrs.define(kw_only=True)
class AugmentVoteOptions(PopulationOptions):
    k: int = doc("trajectories per augmented copy", default=1, validator=positive)
    sigma: float = doc(
        "noise scale for trajectories after the first of each copy (with k > 1)",
        default=1.0,
        validator=non_negative,
    )
    augmentations: int = doc(
        "copies of each puzzle, the puzzle itself included", default=8, validator=positive
    )


class AugmentVote(Population):
    """A augmented copies of each puzzle, answers voted on in the puzzle's own frame."""

    Options = AugmentVoteOptions
    sweep = "augmentations"
    primary = "vote"

    def problem(self, task, model):
        lacking = [c for c in ("augment", "inverse_augment") if not task.supports(c)]
        if lacking:
            return (
                f"the task {type(task).__name__} has no augmentations to vote over (it "
                f"does not implement Task.{' or Task.'.join(lacking)})"
            )
        return super().problem(task, model)


@hookimpl
def register_strategies(register):
    register("unroll", Unroll)
    register("steps", Steps)
    register("rollouts", Rollouts)
    register("augment-vote", AugmentVote)
