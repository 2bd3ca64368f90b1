"""The deep-supervision trainer, on CPU, a GPU or many.

It trains as the paper does (Jolicoeur-Martineau, "Less is More: Recursive Reasoning
with Tiny Networks", arXiv:2510.04871, its deep supervision and adaptive computational
time): every batch slot keeps its answer and latent state (the carry) from one step to
the next, one supervision step runs per optimiser step, a slot halts after
``halt_max_steps`` steps or when its halt logit says its answer is right, and a halted
slot takes a new example. Weights learn with Adam-atan2, puzzle embeddings with
sign-SGD, and an EMA of the weights is evaluated and saved.

Reads top to bottom: the shared training step (:func:`training_step`, which
``trm-bench`` times too), the metric sums, then the :class:`Trainer`: setup (model,
optimisers), one training step, evaluation, checkpoints and resume, and the loop that
ties them together. What a run shows (progress lines, loggers, ``metrics.json``) goes
through its run log (:mod:`trm_core.runlog`); only rank 0 writes it and the
checkpoints. An evaluation is published only once the checkpoint holding it is on
disk, so what a run shows never runs ahead of what it can resume from.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .checkpoint import check_state, read_checkpoint, save_checkpoint
from .config import RunConfig, unstructure
from .curriculum import depth_at
from .data import BatchFeed, RunData, TrainSampler
from .devices import (
    auto_compile,
    auto_prefetch,
    describe_os_error,
    out_of_memory,
    wide_float,
)
from .distributed import (
    World,
    all_gather_objects,
    all_reduce_gradients,
    all_reduce_sum,
    any_rank,
)
from .errors import CheckpointError, ConfigError, TrainingError
from .evaluate import evaluate_splits
from .files import remove_stale_temporaries
from .interfaces import Strategy, Task
from .layers import compile_for_training
from .losses import act_loss
from .model import Carry, TRMModel
from .monitor import Progress
from .optim import EMA, SignSGDRows, build_optimizers, group_active, learning_rate
from .registry import Registry
from .run import start_over
from .runlog import RunLog
from .strategies import check_strategy, make_strategy, options_of, strategy_reports

#: The counters act_loss returns, in a fixed order (summed over ranks as one tensor).
METRICS = (
    "count", "token_accuracy", "exact_accuracy", "halt_accuracy", "steps", "lm_loss", "halt_loss",
)  # fmt: skip


@attrs.frozen
class StepResult:
    """What :func:`training_step` leaves on the device (nothing is read back)."""

    carry: Carry  # the carry after the step
    loss: torch.Tensor  # [] the loss summed over slots, detached
    metrics: dict[str, torch.Tensor]  # act_loss's counters (METRICS)
    grad_norm: torch.Tensor | None  # [] float32, when asked for


#: The profiler scope of a training step's optimiser steps (trm-bench --profile).
OPTIMIZER_SCOPE = "trm::optimizers"


def training_step(
    model: TRMModel,
    carry: Carry,
    batch: Mapping[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    embedding_optimizers: Sequence[SignSGDRows],
    *,
    batch_size: int,
    loss: str = "stablemax",
    halt_loss_weight: float = 0.5,
    forward: Callable[..., tuple[Carry, dict[str, torch.Tensor]]] | None = None,
    world: World | None = None,
    grad_norm: bool = False,
) -> StepResult:
    """One training step: one supervision step forward with the carry, the ACT loss,
    backward (:func:`micro_step`), then the gradient sum over ranks, the optimisers'
    steps and ``zero_grad`` (:func:`apply_gradients`).

    The one training step of the engine: :meth:`Trainer.train_step` (which adds the
    learning-rate schedule, micro-batches, the finiteness record, metric sums and EMA)
    and ``trm-bench`` (which times it on random batches) both call these.

    Args:
        model: trained in place (put in training mode).
        carry: the slots' state; halted slots take their row of ``batch``.
        batch_size: the loss is divided by it before backward (the global batch).
        loss, halt_loss_weight: :func:`~trm_core.losses.act_loss`'s.
        forward: the model's forward to call (a ``torch.compile``d one); default the model.
        world: under torchrun the gradients are summed over its ranks.
        grad_norm: also return the gradients' global norm (after the sum over ranks).
    """
    carry, total, metrics = micro_step(
        model, carry, batch, batch_size=batch_size, loss=loss,
        halt_loss_weight=halt_loss_weight, forward=forward,
    )  # fmt: skip
    norm = apply_gradients(model, optimizer, embedding_optimizers, world, grad_norm)
    return StepResult(carry, total, metrics, norm)


def micro_step(
    model: TRMModel,
    carry: Carry,
    batch: Mapping[str, torch.Tensor],
    *,
    batch_size: int,
    loss: str = "stablemax",
    halt_loss_weight: float = 0.5,
    forward: Callable[..., tuple[Carry, dict[str, torch.Tensor]]] | None = None,
    supervision_decay: float = 1.0,
) -> tuple[Carry, torch.Tensor, dict[str, torch.Tensor]]:
    """Forward one supervision step, the ACT loss and backward, the gradients added to
    the parameters' (one rank's share, or one micro-batch): ``(carry, loss summed over
    slots and detached, act_loss's counters)``."""
    model.train()
    carry, out = (model if forward is None else forward)(carry, batch)
    total, metrics = act_loss(
        out, carry.data["labels"], carry.halted, carry.steps,
        loss=loss, halt_loss_weight=halt_loss_weight,
        supervision_decay=supervision_decay, max_steps=model.config.halt_max_steps,
    )  # fmt: skip
    (total / batch_size).backward()
    return carry, total.detach(), metrics


def apply_gradients(
    model: TRMModel,
    optimizer: torch.optim.Optimizer,
    embedding_optimizers: Sequence[SignSGDRows],
    world: World | None = None,
    grad_norm: bool = False,
) -> torch.Tensor | None:
    """The gradient sum over ranks, the optimisers' steps and ``zero_grad``; the
    gradients' global norm (after the sum) when asked for."""
    if world is not None:
        all_reduce_gradients(model.parameters(), world)
    norm = None
    if grad_norm:
        grads = [p.grad.float().norm() for p in model.parameters() if p.grad is not None]
        norm = torch.stack(grads).norm() if grads else torch.zeros(())
    with torch.profiler.record_function(OPTIMIZER_SCOPE):  # trm-bench --profile's split
        optimizer.step()
        for rows in embedding_optimizers:
            rows.step()
        optimizer.zero_grad(set_to_none=True)
    return norm


def check_shares(config: RunConfig, world: World) -> None:
    """Refuse a global batch that does not split into the world's shares (processes x
    ``train.accumulate``), naming both."""
    train = config.train
    if train.accumulate > 1 and train.global_batch_size % (world.size * train.accumulate):
        raise ConfigError(
            f"train.global_batch_size ({train.global_batch_size}) must divide evenly over "
            f"{world.size} process(es) x train.accumulate {train.accumulate}"
        )


def steps_for(config: RunConfig, epoch_size: int) -> int:
    """Total optimiser steps: ``train.steps``, or epochs x epoch size / global batch."""
    train = config.train
    if train.steps is not None:
        return train.steps
    if train.epochs is None:
        raise TrainingError("set train.steps or train.epochs to say how long to train")
    return max(1, math.ceil(train.epochs * epoch_size / train.global_batch_size))


def eval_interval_for(config: RunConfig, epoch_size: int) -> int | None:
    """Steps between evaluations (None: evaluate at the end only)."""
    if config.eval.interval_steps is not None:
        return config.eval.interval_steps
    if config.eval.interval_epochs is not None:
        steps = config.eval.interval_epochs * epoch_size / config.train.global_batch_size
        return max(1, math.ceil(steps))
    return None


class MetricSums:
    """The counters of :data:`METRICS` summed on the device over the steps since the
    last measurement, and read back (summed over ranks) as averages per example or per
    halted slot."""

    def __init__(self, config: RunConfig, world: World) -> None:
        self.config, self.world = config, world
        self.totals: torch.Tensor | None = None
        self.steps = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        wide = wide_float(self.world.device)  # float64, or float32 where there is none
        values = torch.stack([metrics[name].to(wide) for name in METRICS])
        self.totals = values if self.totals is None else self.totals + values
        self.steps += 1

    def read(self) -> dict[str, float]:
        """The averages since the last read (a host sync; under torchrun a collective)."""
        totals = all_reduce_sum(self.totals, self.world).tolist()
        total = dict(zip(METRICS, totals, strict=True))
        examples = self.config.train.global_batch_size * self.steps
        self.totals, self.steps = None, 0
        count = max(1.0, total.pop("count"))
        summary = {
            name: value / (examples if name.endswith("loss") else count)
            for name, value in total.items()
        }
        summary["loss"] = (
            summary["lm_loss"] + self.config.train.halt_loss_weight * summary["halt_loss"]
        )
        summary["mean_steps"] = summary.pop("steps")  # supervision steps of halted slots
        summary["halted_examples"] = count
        return summary


class Trainer:
    """The training loop of one run: the model, optimisers, EMA, batches and carry, one
    step, the schedule, evaluations and checkpoints. What the run shows goes through
    its :class:`~trm_core.runlog.RunLog` (``self.log``)."""

    def __init__(
        self,
        config: RunConfig,
        task: Task,
        data: Path | RunData,
        world: World,
        run_dir: Path | None = None,
        registry: Registry | None = None,
        progress: Progress | None = None,
        strategy: tuple[str, Strategy] | None = None,
    ) -> None:
        """``data``: the run's splits (or the folder they are read from); ``strategy``:
        the final evaluation's ``(name, strategy)``, made from ``config.strategy`` when
        not given; ``progress``: the progress line rank 0 shows."""
        self.task, self.world, self.run_dir = task, world, run_dir
        train = config.train
        self.data = data if isinstance(data, RunData) else RunData.read(data, task)
        # The global batch in shares: train.accumulate micro-batches on each of the
        # world's processes, share r*N+i of W*N for micro-batch i of rank r, each with
        # its own sampler slice and carry slots, as W*N processes would have.
        self.shares = (world.rank * train.accumulate, world.size * train.accumulate)
        check_shares(config, world)
        prefetch = auto_prefetch(world.device) if train.prefetch is None else train.prefetch
        self.feeds = [  # batches on the device; with prefetch, made during the step
            BatchFeed(
                TrainSampler(
                    self.data.train, task, train.global_batch_size, config.data.augmentations,
                    seed=train.seed, rank=self.shares[0] + i, world_size=self.shares[1],
                ),
                world.device, background=prefetch,
            )
            for i in range(train.accumulate)
        ]  # fmt: skip
        self.carries: list[Carry | None] = [None] * train.accumulate
        self.total_steps = steps_for(config, self.sampler.epoch_size)
        self.eval_interval = eval_interval_for(config, self.sampler.epoch_size)

        # -- model: the same seed on every rank gives every rank the same weights --
        torch.manual_seed(train.seed)
        self.model = TRMModel(config.model, registry, world.device, data_parallel=self.shares)
        self.model.to(world.device)
        self.config = attrs.evolve(config, model=self.model.config)  # "auto" dtype resolved
        if strategy is None and config.strategy.get("name"):
            strategy = make_strategy(config.strategy, registry)
        if strategy is not None:  # checked against the task and model before training
            check_strategy(*strategy, task, self.model)
        self.strategy = strategy
        self.compiled = (
            auto_compile(world.device, self.model.config.dtype)
            if train.compile is None else train.compile
        )  # fmt: skip
        self.forward_model = compile_for_training(self.model) if self.compiled else self.model

        # -- optimisers: Adam-atan2 for weights, sign-SGD for puzzle-embedding rows --
        self.optimizer, self.embedding_optimizers = build_optimizers(self.model, train)
        self.ema = EMA(self.model, rate=train.ema_rate) if train.ema else None

        self.step = 0
        self.sums = MetricSums(self.config, world)
        # The first step whose loss was not finite (0: none yet) and that loss, kept on the
        # device and read only where the host reads anyway (log lines, evaluations).
        self._bad_step = torch.zeros((), dtype=torch.long, device=world.device)
        self._bad_loss = torch.zeros((), dtype=wide_float(world.device), device=world.device)
        self._saved_step: int | None = None  # the step of the checkpoint on disk
        self._phase = "training"  # what fit is doing, for an out-of-memory error
        writer = run_dir if world.is_main else None
        self.log = RunLog(
            writer, self.config, registry, progress if world.is_main else None,
            total_steps=self.total_steps,
        )  # fmt: skip
        if writer is not None:  # what a killed save left behind
            removed = remove_stale_temporaries(writer)
            if removed:
                self.log.message(
                    f"removed {len(removed)} temporary file(s) left by interrupted writes "
                    f"in {writer}"
                )

    @property
    def sampler(self) -> TrainSampler:
        """The (first micro-batch's) training sampler."""
        return self.feeds[0].sampler

    @property
    def batches(self) -> BatchFeed:
        """The (first micro-batch's) batch feed."""
        return self.feeds[0]

    @property
    def carry(self) -> Carry | None:
        """The (first micro-batch's) carry."""
        return self.carries[0]

    # -- one training step ---------------------------------------------------------

    def set_learning_rate(self) -> float:
        """The schedule at the coming step (1-based, as the reference counts)."""
        train = self.config.train
        factor = learning_rate(
            self.step + 1, base_lr=1.0, warmup_steps=train.lr_warmup_steps,
            total_steps=self.total_steps, min_ratio=train.lr_min_ratio,
        )  # fmt: skip
        for group in self.optimizer.param_groups:
            on = group_active(group, self.step + 1, self.total_steps)
            group["lr"] = train.lr * group.get("lr_scale", 1.0) * factor if on else 0.0
        for optimizer in self.embedding_optimizers:
            optimizer.lr = train.puzzle_emb_lr * factor
        return train.lr * factor

    def train_step(self, measure: bool = False) -> dict[str, float] | None:
        """One supervision step on the next batch, then one optimiser step.

        Metric counters accumulate on the device; with ``measure`` they are
        summed over ranks and over the steps since the last measurement, and
        returned as averages (losses per example, accuracies per halted slot).

        Without ``measure`` the host never waits for the device: nothing is read
        back (a non-finite loss is recorded on the device and raised as a
        TrainingError at the next measurement or evaluation, before any checkpoint).
        """
        train = self.config.train
        batches = [feed.next_batch() for feed in self.feeds]  # [B_local, S] each
        lr = self.set_learning_rate()
        accumulating = len(self.feeds) > 1
        draws = _rng_of(self.world.device) if accumulating else None
        losses, counters = [], []
        depth = depth_at(self.config, self.step + 1, self.total_steps)  # {}: the model's
        with self.model.depth(**depth):
            for i, batch in enumerate(batches):
                if self.carries[i] is None:
                    self.carries[i] = self.model.initial_carry(batch)  # every slot starts halted
                if accumulating:  # micro-batch i draws exploration as its share's process would
                    _set_rng_of(self.world.device, draws)
                    self.model.data_parallel = (self.shares[0] + i, self.shares[1])
                    if i:
                        for rows in self.embedding_optimizers:
                            rows.collect()  # the last micro-batch's rows, kept for the step
                self.carries[i], loss, metrics = micro_step(
                    self.model, self.carries[i], batch, batch_size=train.global_batch_size,
                    loss=train.loss, halt_loss_weight=train.halt_loss_weight,
                    forward=self.forward_model, supervision_decay=train.supervision_decay,
                )  # fmt: skip
                losses.append(loss)
                counters.append(metrics)
        norm = apply_gradients(
            self.model, self.optimizer, self.embedding_optimizers, self.world, measure
        )
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
        first_bad = ~torch.isfinite(loss) & (self._bad_step == 0)  # [] bool, on the device
        self._bad_step = torch.where(first_bad, self.step + 1, self._bad_step)
        self._bad_loss = torch.where(first_bad, loss, self._bad_loss)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.sums.add(
            counters[0] if len(counters) == 1
            else {name: sum(c[name] for c in counters) for name in METRICS}
        )  # fmt: skip
        if not measure:
            return None
        self.check_finite()
        return {**self.sums.read(), "lr": lr, "grad_norm": float(norm)}

    def check_finite(self) -> None:
        """Raise TrainingError if a loss so far was not finite, on any rank (a host sync,
        and under torchrun a collective: every rank calls it at the same steps)."""
        first = self._bad_step.clone()
        if self.world.distributed:  # every rank stops together at the earliest bad step
            never = torch.iinfo(torch.long).max
            first = torch.where(first > 0, first, never)
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
            first = torch.where(first < never, first, 0)
        step = int(first)
        if step:
            seen = int(self._bad_step) == step
            value = f"{float(self._bad_loss)}" if seen else "on another process"
            raise TrainingError(
                f"non-finite loss ({value}) at step {step}; stopping. " + self._kept()
            )

    # -- evaluation -------------------------------------------------------------------

    def evaluate(
        self, final: bool = False, out_dir: Path | None = None, publish: bool = True
    ) -> dict[str, Any]:
        """Evaluate the test split (and, when ``final``, every extra split and the
        configured strategy) with the EMA weights; rank 0 records it in the run log and
        returns its metrics (extra splits' named ``<split>/...``), and publishes it
        (loggers, ``metrics.json``) unless ``publish`` is false (``fit`` publishes
        after the checkpoint holding it is written).

        The task's outputs (ARC's ``submission.json``) go to ``out_dir`` (default: the
        run folder), an extra split's to its ``<name>/`` subfolder."""
        out_dir = self.run_dir if out_dir is None else out_dir
        extra = self.data.extra if final else {}
        reports = None
        with self.ema.swapped(self.model) if self.ema is not None else nullcontext():
            metrics, results = evaluate_splits(
                self.model, self.task, self.data.test, extra, self.config, self.world, out_dir
            )
            if final and self.strategy is not None:
                name, strategy = self.strategy
                splits = {"test": self.data.test, **extra}
                reports = (name, options_of(strategy), strategy_reports(
                    self.model, self.task, splits, strategy, self.world,
                    batch_size=self.config.eval.batch_size,
                    max_examples=self.config.eval.max_examples,
                ))  # fmt: skip
        if not self.world.is_main:
            return {}
        images = {prefix: result.images for prefix, result in results.items()}
        self.log.evaluation(self.step, metrics, images, results[""].by_step, reports)
        if publish:
            self.log.publish()
        return metrics

    # -- checkpoints and resume ---------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / "last.pt"

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly (besides the weights); under torchrun
        a collective (every rank's carry is gathered)."""
        mine = [carry.state_dict() for carry in self.carries if carry is not None]
        carries = None
        if mine:  # every process's micro-batch carries, in share order
            carries = [c for shares in all_gather_objects(mine, self.world) for c in shares]
        feeds = [feed.state_dict() for feed in self.feeds]
        return {
            "kind": "run",
            "step": self.step,
            "total_steps": self.total_steps,
            "run_config": unstructure(self.config),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "embedding_optimizers": [o.state_dict() for o in self.embedding_optimizers],
            "sampler": feeds[0] if len(feeds) == 1 else feeds,  # after the batches trained on
            "carries": carries,
            "history": self.log.history,
            "rng": rng_state(),
        }

    def save(self) -> Path | None:
        """Write the full training state atomically (rank 0; every rank must call it)."""
        state = self.state()  # collective: every rank takes part in gathering carries
        if not self.world.is_main or self.checkpoint_path is None:
            return None
        path = save_checkpoint(self.checkpoint_path, self.model, **state)
        self._saved_step = self.step
        return path

    def load(self, path: Path, payload: dict[str, Any] | None = None) -> None:
        """Restore the full training state from a run checkpoint (``payload``: the file
        already read); ``metrics.json`` and the loggers continue from its step (what a
        killed run logged later is dropped)."""
        payload = read_checkpoint(path) if payload is None else payload
        if payload.get("kind") != "run":
            raise CheckpointError(f"{path}: a model checkpoint, not a run checkpoint")
        expected = {key: value.shape for key, value in self.model.state_dict().items()}
        check_state(expected, payload["model"], f"checkpoint {path}")
        self.model.load_state_dict(payload["model"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.load_state_dict(payload["ema"])
        self.optimizer.load_state_dict(payload["optimizer"])
        for optimizer, state in zip(
            self.embedding_optimizers, payload["embedding_optimizers"], strict=True
        ):
            optimizer.load_state_dict(state)
        samplers = payload["sampler"]
        samplers = samplers if isinstance(samplers, list) else [samplers]
        if len(samplers) != len(self.feeds):
            raise CheckpointError(
                f"{path} was trained with train.accumulate={len(samplers)}, this run has "
                f"{len(self.feeds)}"
            )
        for feed, state in zip(self.feeds, samplers, strict=True):
            feed.load_state_dict(state)
        self.step = self._saved_step = payload["step"]
        self.log.start(self.step, payload.get("history", []))
        carries = payload["carries"]
        if carries is not None:
            first, shares = self.shares
            if len(carries) != shares:
                per = len(self.feeds)
                raise CheckpointError(
                    f"{path} was written by {len(carries) // per} processes; resume it with "
                    f"as many (this run has {self.world.size})"
                )
            self.carries = [
                Carry.from_state(state, self.world.device)
                for state in carries[first : first + len(self.feeds)]
            ]
        set_rng_state(payload["rng"])

    # -- the loop ---------------------------------------------------------------------

    def fit(self, max_steps: int | None = None, time_budget: float | None = None) -> dict:
        """Train to ``total_steps`` (or ``max_steps``, or the time budget in seconds),
        evaluating every ``eval_interval`` steps and at the end; returns the last eval."""
        stop_at = self.total_steps if max_steps is None else min(max_steps, self.total_steps)
        started = time.monotonic()
        # Training's own seconds (evaluations and saving left out), for metrics.json; a
        # resumed run goes on from its last evaluation's.
        before = next((r.get("train_seconds") for r in reversed(self.log.history)), None)
        trained, lap = before or 0.0, started
        if self.step == 0:
            self.log.start(0)
        log_every = self.config.train.log_interval
        final: dict = {}
        try:
            while self.step < stop_at:
                measure = (self.step + 1) % log_every == 0 or self.step + 1 == stop_at
                self._phase = "training"
                summary = self.train_step(measure=measure)
                if summary is not None:
                    self.log.training(self.step, summary)
                # Under torchrun the ranks agree on the time budget at log steps only (a
                # collective each step would make every step wait for the device).
                out_of_time = (
                    time_budget is not None
                    and (measure or not self.world.distributed)
                    and any_rank(time.monotonic() - started > time_budget, self.world)
                )
                if out_of_time:
                    self.log.message(f"time budget reached at step {self.step}")
                last = self.step >= stop_at or out_of_time
                if last or (self.eval_interval and self.step % self.eval_interval == 0):
                    self.check_finite()  # never evaluate or save a model a bad loss reached
                    trained += time.monotonic() - lap  # the device has caught up: a sync
                    self.log.train_seconds = trained
                    self._phase = "evaluating"
                    final = self.evaluate(final=last, publish=False)
                    self._phase = "saving"
                    self._checkpoint(final)  # then publish what it holds
                    try:
                        self.log.publish()
                    except OSError as error:
                        raise TrainingError(
                            f"could not write metrics.json: {describe_os_error(error)}. "
                            + self._kept()
                        ) from error
                    self.log.show_eval(self.step, final)
                    lap = time.monotonic()
                if last:
                    break
        except TrainingError:
            raise
        except (MemoryError, RuntimeError) as error:
            if not out_of_memory(error):
                raise
            raise TrainingError(self._out_of_memory()) from error
        finally:
            for feed in self.feeds:
                feed.close()  # the worker thread, when batches are made ahead
            self.log.close()
        return final

    def interruption(self) -> str:
        """What an interrupt of :meth:`fit` leaves: where training was, the checkpoint
        kept and how to go on (the line Ctrl-C and SIGTERM print)."""
        at = f"at step {self.step} of {self.total_steps}"
        if self._phase != "training":
            at += f" ({self._phase})"
        if self.run_dir is None:
            return f"training {at}"
        if self._saved_step is not None:
            kept = (
                f"the checkpoint of step {self._saved_step} is kept; resume with: "
                f"trm-run --resume {self.run_dir}"
            )
        else:
            kept = (
                "no checkpoint was written yet; start over with: "
                f"{start_over(self.run_dir, self.config.task)}"
            )
        return f"training {self.run_dir} {at}; {kept}"

    def _checkpoint(self, metrics: dict[str, Any]) -> None:
        """Save, or stop with what was kept said when the write fails (a full disk),
        after printing the evaluation no file will hold."""
        failure = None
        try:
            self.save()
        except OSError as error:
            failure = error
        if any_rank(failure is not None, self.world):  # every rank stops
            self.log.show_eval(self.step, metrics, every=True)
            raise TrainingError(
                f"could not write the checkpoint of step {self.step}: "
                + (describe_os_error(failure) if failure is not None else "on another process")
                + ". "
                + self._kept()
            ) from failure

    def _kept(self) -> str:
        """Which checkpoint a failure leaves (the last good one)."""
        path = self.checkpoint_path
        if path is not None and path.exists():
            step = "" if self._saved_step is None else f" (step {self._saved_step})"
            return f"The last good checkpoint is kept at {path}{step}."
        return "No checkpoint was written yet."

    def _out_of_memory(self) -> str:
        """What ran out of memory, with the batch size involved, and what was kept."""
        train, evaluation = self.config.train, self.config.eval
        doing = {
            "training": f"training step {self.step + 1} with train.global_batch_size="
            f"{train.global_batch_size} (lower it)",
            "evaluating": f"evaluating at step {self.step} with eval.batch_size="
            f"{evaluation.batch_size} (lower it)",
        }.get(self._phase, f"writing the checkpoint of step {self.step}")
        return f"out of memory while {doing}. " + self._kept()


def rng_state() -> dict[str, Any]:
    """Every global random generator's state, in types a weights-only load accepts."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _rng_of(device: torch.device) -> torch.Tensor:
    """The state of the generator ``device``'s random draws come from."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    return torch.get_rng_state()


def _set_rng_of(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)
