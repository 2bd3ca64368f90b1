"""The deep-supervision trainer, on CPU, a GPU or many.

It trains as the paper does (Jolicoeur-Martineau, "Less is More: Recursive Reasoning
with Tiny Networks", arXiv:2510.04871, its deep supervision and adaptive computational
time): every batch slot keeps its answer and latent state (the carry) from one step to
the next, one supervision step runs per optimiser step, a slot halts after
``halt_max_steps`` steps or when its halt logit says its answer is right, and a halted
slot takes a new example. Weights learn with Adam-atan2, puzzle embeddings with
sign-SGD, and an EMA of the weights is evaluated and saved.

Reads top to bottom: the shared training step (:func:`training_step`, which
``trm-bench`` times too), setup (data, model, optimisers), one training step,
evaluation, checkpoints and resume, then the loop that ties them together.
Only rank 0 writes logs, TensorBoard events, metrics and checkpoints. An evaluation
is published (TensorBoard, ``metrics.json``) only once the checkpoint holding it is
on disk, so what a run shows never runs ahead of what it can resume from.
"""

from __future__ import annotations

import json
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
from .data import BatchFeed, Split, TrainSampler, read_split
from .devices import auto_compile, auto_prefetch, describe_os_error, out_of_memory
from .distributed import World, all_gather_objects, all_reduce_gradients, all_reduce_sum
from .errors import CheckpointError, TrainingError
from .evaluate import evaluate_splits, extra_splits
from .files import atomic_write_text, remove_stale_temporaries
from .interfaces import Task
from .losses import act_loss
from .model import Carry, TRMModel
from .monitor import Progress, TensorBoard, flatten
from .optim import EMA, SignSGDRows, build_optimizers, learning_rate
from .registry import Registry
from .strategies import (
    check_strategy,
    evaluate_strategy,
    format_report,
    log_reports,
    make_strategy,
    options_of,
)

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
    backward, the gradient sum over ranks, the optimisers' steps and ``zero_grad``.

    The one training step of the engine: :meth:`Trainer.train_step` (which adds the
    learning-rate schedule, the finiteness record, metric sums and EMA) and
    ``trm-bench`` (which times it on random batches) both call it.

    Args:
        model: trained in place (put in training mode).
        carry: the slots' state; halted slots take their row of ``batch``.
        batch_size: the loss is divided by it before backward (the global batch).
        loss, halt_loss_weight: :func:`~trm_core.losses.act_loss`'s.
        forward: the model's forward to call (a ``torch.compile``d one); default the model.
        world: under torchrun the gradients are summed over its ranks.
        grad_norm: also return the gradients' global norm (after the sum over ranks).
    """
    model.train()
    carry, out = (model if forward is None else forward)(carry, batch)
    total, metrics = act_loss(
        out, carry.data["labels"], carry.halted, carry.steps,
        loss=loss, halt_loss_weight=halt_loss_weight,
    )  # fmt: skip
    (total / batch_size).backward()
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
    return StepResult(carry, total.detach(), metrics, norm)


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


class Trainer:
    """Owns the model, optimisers, EMA, sampler and carry of one run."""

    def __init__(
        self,
        config: RunConfig,
        task: Task,
        data_dir: Path,
        world: World,
        run_dir: Path | None = None,
        registry: Registry | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.config, self.task, self.world, self.run_dir = config, task, world, run_dir
        self.progress = progress
        train = config.train
        if run_dir is not None and world.is_main:  # what a killed save left behind
            removed = remove_stale_temporaries(run_dir)
            if removed and progress is not None:
                progress.message(
                    f"removed {len(removed)} temporary file(s) left by interrupted writes "
                    f"in {run_dir}"
                )

        # -- data --------------------------------------------------------------
        self.train_split: Split = read_split(data_dir / "train", task)
        self.test_split: Split = read_split(data_dir / "test", task)
        # Extra held-out sets a task may build (``data_dir/extra/<name>``): scored once, at the end.
        self.extra_splits: dict[str, Split] = extra_splits(data_dir, task)
        self.sampler = TrainSampler(
            self.train_split, task, train.global_batch_size, config.data.augmentations,
            seed=train.seed, rank=world.rank, world_size=world.size,
        )  # fmt: skip
        self.total_steps = steps_for(config, self.sampler.epoch_size)
        self.eval_interval = eval_interval_for(config, self.sampler.epoch_size)
        # Batches on the device; with prefetch, the next one is made during the step.
        prefetch = auto_prefetch(world.device) if train.prefetch is None else train.prefetch
        self.batches = BatchFeed(self.sampler, world.device, background=prefetch)

        # -- model: the same seed on every rank gives every rank the same weights --
        torch.manual_seed(train.seed)
        self.model = TRMModel(config.model, registry, world.device).to(world.device)
        self.model.data_parallel = (world.rank, world.size)  # exploration drawn per global batch
        self.config.model = self.model.config  # "auto" dtype resolved
        # The final evaluation's inference strategy (config section ``strategy``; off
        # without a name), checked against the task and model before any training.
        self.strategy = None
        if config.strategy.get("name"):
            name, strategy = make_strategy(config.strategy, registry)
            check_strategy(name, strategy, task, self.model)
            self.strategy = (name, strategy)
        self.compiled = auto_compile(world.device) if train.compile is None else train.compile
        self.forward_model = torch.compile(self.model) if self.compiled else self.model

        # -- optimisers: Adam-atan2 for weights, sign-SGD for puzzle-embedding rows --
        self.optimizer, self.embedding_optimizers = build_optimizers(self.model, train)
        self.ema = EMA(self.model, rate=train.ema_rate) if train.ema else None

        self.step = 0
        self.carry: Carry | None = None
        self._totals: torch.Tensor | None = None  # metric sums since the last log line
        # The first step whose loss was not finite (0: none yet) and that loss, kept on the
        # device and read only where the host reads anyway (log lines, evaluations).
        self._bad_step = torch.zeros((), dtype=torch.long, device=world.device)
        self._bad_loss = torch.zeros((), dtype=torch.float64, device=world.device)
        self._steps_since = 0
        self.history: list[dict[str, Any]] = []  # every evaluation's metrics
        self._unpublished: tuple[dict, list] | None = None  # the last evaluation's, for _publish
        self._saved_step: int | None = None  # the step of the checkpoint on disk
        self._phase = "training"  # what fit is doing, for an out-of-memory error
        self.board = TensorBoard(run_dir if world.is_main else None)

    # -- one training step ---------------------------------------------------------

    def set_learning_rate(self) -> float:
        """The schedule at the coming step (1-based, as the reference counts)."""
        train = self.config.train
        factor = learning_rate(
            self.step + 1, base_lr=1.0, warmup_steps=train.lr_warmup_steps,
            total_steps=self.total_steps, min_ratio=train.lr_min_ratio,
        )  # fmt: skip
        for group in self.optimizer.param_groups:
            group["lr"] = train.lr * factor
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
        batch = self.batches.next_batch()  # [B_local, S] each
        if self.carry is None:
            self.carry = self.model.initial_carry(batch)  # every slot starts halted
        lr = self.set_learning_rate()
        result = training_step(
            self.model, self.carry, batch, self.optimizer, self.embedding_optimizers,
            batch_size=train.global_batch_size, loss=train.loss,
            halt_loss_weight=train.halt_loss_weight, forward=self.forward_model,
            world=self.world, grad_norm=measure,
        )  # fmt: skip
        self.carry, loss = result.carry, result.loss
        first_bad = ~torch.isfinite(loss) & (self._bad_step == 0)  # [] bool, on the device
        self._bad_step = torch.where(first_bad, self.step + 1, self._bad_step)
        self._bad_loss = torch.where(first_bad, loss, self._bad_loss)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self._accumulate(result.metrics)
        if not measure:
            return None
        return self._summarise(lr, float(result.grad_norm))

    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        values = torch.stack([metrics[name].double() for name in METRICS])
        self._totals = values if self._totals is None else self._totals + values
        self._steps_since += 1

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
                f"non-finite loss ({value}) at step {step}; stopping. "
                + self._last_good_checkpoint()
            )

    def _summarise(self, lr: float, grad_norm: float | None) -> dict[str, float]:
        self.check_finite()
        totals = all_reduce_sum(self._totals, self.world).tolist()
        total = dict(zip(METRICS, totals, strict=True))
        examples = self.config.train.global_batch_size * self._steps_since
        self._totals, self._steps_since = None, 0
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
        summary["lr"] = lr
        if grad_norm is not None:
            summary["grad_norm"] = grad_norm
        return summary

    # -- evaluation -------------------------------------------------------------------

    def evaluate(self, final: bool = False, out_dir: Path | None = None) -> dict[str, Any]:
        """Evaluate the test split (and, when ``final``, every extra split) with the EMA
        weights; rank 0 records it in the history and publishes it (TensorBoard,
        ``metrics.json``). Extra splits' metrics are named ``<split>/...``.

        The task's outputs (ARC's ``submission.json``) go to ``out_dir`` (default: the
        run folder), an extra split's to its ``<name>/`` subfolder."""
        metrics = self._evaluate(final, out_dir)
        self._publish()
        return metrics

    def _evaluate(self, final: bool = False, out_dir: Path | None = None) -> dict[str, Any]:
        """:meth:`evaluate` without publishing: ``fit`` publishes after the checkpoint."""
        out_dir = self.run_dir if out_dir is None else out_dir
        extra = self.extra_splits if final else {}
        reports = []
        with self.ema.swapped(self.model) if self.ema is not None else nullcontext():
            metrics, results = evaluate_splits(
                self.model, self.task, self.test_split, extra, self.config, self.world, out_dir
            )
            if final and self.strategy is not None:
                reports = self._strategy_reports(extra)
        if not self.world.is_main:
            return {}
        result = results[""]
        record = {"step": self.step, "metrics": metrics}
        if result.by_step:
            record["exact_accuracy_by_steps"] = result.by_step
        if final and self.strategy is not None:
            record["strategy"] = self._evaluate_strategy(reports)
        self.history.append(record)
        self._unpublished = (results, reports)
        return metrics

    def _publish(self) -> None:
        """The last recorded evaluation to TensorBoard and ``metrics.json`` (rank 0)."""
        if self._unpublished is None:
            return
        (results, reports), self._unpublished = self._unpublished, None
        record = self.history[-1]
        self.board.scalars("eval", record["metrics"], record["step"])
        for prefix, result in results.items():
            for index, image in enumerate(result.images):
                self.board.image(f"eval/{prefix}puzzle_{index}", image, record["step"])
        if reports:
            log_reports(self.board, self.strategy[0], reports)
        self._write_metrics()
        self.board.flush()

    def _write_metrics(self) -> None:
        """``metrics.json``: the history, then what other programs recorded there
        (``trm-eval --strategy``'s records, marked ``evaluated_by``)."""
        if self.run_dir is None or not self.world.is_main:
            return
        path = self.run_dir / "metrics.json"
        try:
            written = json.loads(path.read_text())
        except (OSError, ValueError):
            written = []
        others = [r for r in written if isinstance(r, dict) and "evaluated_by" in r]
        records = sorted(self.history + others, key=lambda record: record.get("step", 0))
        if written != records:
            atomic_write_text(path, json.dumps(records, indent=2))

    # -- checkpoints and resume ---------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / "last.pt"

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
            from .run import start_over

            kept = (
                "no checkpoint was written yet; start over with: "
                f"{start_over(self.run_dir, self.config.task)}"
            )
        return f"training {self.run_dir} {at}; {kept}"

    def _last_good_checkpoint(self) -> str:
        path = self.checkpoint_path
        if path is not None and path.exists():
            step = "" if self._saved_step is None else f" (step {self._saved_step})"
            return f"The last good checkpoint is kept at {path}{step}."
        return "No checkpoint was written yet."

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly (besides the weights)."""
        carries = self._gather_carries()
        return {
            "kind": "run",
            "step": self.step,
            "total_steps": self.total_steps,
            "run_config": unstructure(self.config),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "embedding_optimizers": [o.state_dict() for o in self.embedding_optimizers],
            "sampler": self.batches.state_dict(),  # after the batches trained on
            "carries": carries,
            "history": self.history,
            "rng": rng_state(),
        }

    def _gather_carries(self) -> list[dict[str, Any]] | None:
        if self.carry is None:
            return None
        carry = self.carry
        local = {
            "y": carry.y.cpu(), "z": carry.z.cpu(), "steps": carry.steps.cpu(),
            "halted": carry.halted.cpu(), "data": {k: v.cpu() for k, v in carry.data.items()},
        }  # fmt: skip
        return all_gather_objects(local, self.world)

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
        already read); ``metrics.json`` and TensorBoard continue from its step (what a
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
        self.batches.load_state_dict(payload["sampler"])
        self.step = self._saved_step = payload["step"]
        self.history = payload.get("history", [])
        self.board.resume_at(self.step)
        self._write_metrics()  # a run killed between its checkpoint and metrics.json
        carries = payload["carries"]
        if carries is not None:
            if len(carries) != self.world.size:
                raise CheckpointError(
                    f"{path} was written by {len(carries)} processes; resume it with as many "
                    f"(this run has {self.world.size})"
                )
            mine, device = carries[self.world.rank], self.world.device
            self.carry = Carry(
                y=mine["y"].to(device), z=mine["z"].to(device), steps=mine["steps"].to(device),
                halted=mine["halted"].to(device),
                data={k: v.to(device) for k, v in mine["data"].items()},
            )  # fmt: skip
        set_rng_state(payload["rng"])

    # -- the loop ---------------------------------------------------------------------

    def _strategy_reports(self, extra: dict) -> list:
        """The configured strategy on the test split and every extra split (all ranks)."""
        _, strategy = self.strategy
        splits = {"test": self.test_split, **extra}
        reports = []
        for split_name, split in splits.items():
            report = evaluate_strategy(
                self.model, self.task, split, strategy, self.world,
                batch_size=self.config.eval.batch_size,
                max_examples=self.config.eval.max_examples, name=split_name,
            )  # fmt: skip
            if report is not None:
                reports.append(report)
        return reports

    def _evaluate_strategy(self, reports: list) -> dict:
        """Rank 0: print and return the configured strategy's ``reports`` (``_publish``
        logs them)."""
        name, strategy = self.strategy
        for report in reports:
            if self.progress is not None:
                self.progress.message(f"strategy {name}:\n" + format_report(report))
        return {
            "name": name,
            "options": options_of(strategy),
            "reports": [report.as_dict() for report in reports],
        }

    def fit(self, max_steps: int | None = None, time_budget: float | None = None) -> dict:
        """Train to ``total_steps`` (or ``max_steps``, or the time budget in seconds),
        evaluating every ``eval_interval`` steps and at the end; returns the last eval."""
        stop_at = self.total_steps if max_steps is None else min(max_steps, self.total_steps)
        started = time.monotonic()
        if self.world.is_main and self.step == 0:
            params = flatten(unstructure(self.config))
            self.board.hparams(params, {"eval/exact_accuracy": 0.0, "eval/token_accuracy": 0.0})
        log_every = self.config.train.log_interval
        self._seen = (time.monotonic(), self.step)  # (time, step) of the last log line
        final: dict = {}
        try:
            while self.step < stop_at:
                measure = (self.step + 1) % log_every == 0 or self.step + 1 == stop_at
                self._phase = "training"
                summary = self.train_step(measure=measure)
                if summary is not None and self.world.is_main:
                    self._log(summary)
                # Under torchrun the ranks agree on the time budget at log steps only (a
                # collective each step would make every step wait for the device).
                out_of_time = (
                    time_budget is not None
                    and (measure or not self.world.distributed)
                    and self._agree(time.monotonic() - started > time_budget)
                )
                if out_of_time and self.progress is not None and self.world.is_main:
                    self.progress.message(f"time budget reached at step {self.step}")
                last = self.step >= stop_at or out_of_time
                if last or (self.eval_interval and self.step % self.eval_interval == 0):
                    self.check_finite()  # never evaluate or save a model a bad loss reached
                    self._phase = "evaluating"
                    final = self._evaluate(final=last)
                    self._phase = "saving"
                    self._checkpoint(final)  # then publish what it holds
                    self._written("metrics.json", self._publish)
                    self._show_eval(final)
                if last:
                    break
        except TrainingError:
            raise
        except (MemoryError, RuntimeError) as error:
            if not out_of_memory(error):
                raise
            raise TrainingError(self._out_of_memory()) from error
        finally:
            self.batches.close()  # the worker thread, when batches are made ahead
        self.board.flush()
        return final

    def _checkpoint(self, metrics: dict[str, Any]) -> None:
        """Save, or stop with what was kept said when the write fails (a full disk),
        after printing the evaluation no file will hold."""
        failure = None
        try:
            self.save()
        except OSError as error:
            failure = error
        if self._agree(failure is not None):  # every rank stops
            self._show_eval(metrics, every=True)
            raise TrainingError(
                f"could not write the checkpoint of step {self.step}: "
                + (describe_os_error(failure) if failure is not None else "on another process")
                + ". "
                + self._last_good_checkpoint()
            ) from failure

    def _written(self, what: str, write: Callable[[], None]) -> None:
        """``write()``; an OSError stops the run, naming ``what`` and what was kept."""
        try:
            write()
        except OSError as error:
            raise TrainingError(
                f"could not write {what}: {describe_os_error(error)}. "
                + self._last_good_checkpoint()
            ) from error

    def _out_of_memory(self) -> str:
        """What ran out of memory, with the batch size involved, and what was kept."""
        train, evaluation = self.config.train, self.config.eval
        doing = {
            "training": f"training step {self.step + 1} with train.global_batch_size="
            f"{train.global_batch_size} (lower it)",
            "evaluating": f"evaluating at step {self.step} with eval.batch_size="
            f"{evaluation.batch_size} (lower it)",
        }.get(self._phase, f"writing the checkpoint of step {self.step}")
        return f"out of memory while {doing}. " + self._last_good_checkpoint()

    def _log(self, summary: dict[str, float]) -> None:
        """A log step's metrics to TensorBoard and the progress line (rank 0)."""
        now, (then, then_step) = time.monotonic(), self._seen
        examples = (self.step - then_step) * self.config.train.global_batch_size
        summary["examples_per_second"] = examples / max(1e-9, now - then)
        self._seen = (now, self.step)
        self.board.scalars("train", summary, self.step)
        if self.progress is not None:
            shown = {k: summary[k] for k in ("loss", "exact_accuracy", "token_accuracy")}
            self.progress.update(self.step, shown)

    def _show_eval(self, metrics: dict[str, Any], every: bool = False) -> None:
        """The accuracies of an evaluation (``every``: all its metrics) as a progress line."""
        if self.progress is not None and self.world.is_main:
            shown = ", ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if every or k.endswith("accuracy")
            )
            self.progress.message(f"eval at step {self.step}: {shown}")

    def _agree(self, flag: bool) -> bool:
        """True on every rank when any rank says so (ranks must stop at the same step)."""
        if not self.world.distributed:
            return flag
        value = torch.tensor([float(flag)], device=self.world.device)
        return bool(all_reduce_sum(value, self.world).item() > 0)


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
