"""Using a trained run: load its model (EMA weights), answer new puzzles, evaluate it.

``trm-solve`` and ``trm-eval`` build on this, and so can anyone's code::

    run = trm_core.load_run("runs/sudoku-mlp-20260101-120000")
    predictions, halt_logits = run.predict(inputs)  # [N, S] tokens in, [N, S] out
    metrics = run.evaluate()  # the test split (and extra splits), as trm-eval reports

Loading builds the model alone: no optimiser, no training sampler.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .checkpoint import (
    CheckpointError,
    check_state,
    model_from_payload,
    read_checkpoint,
    remove_stale_temporaries,
)
from .config import ConfigError, RunConfig, unstructure
from .data import read_split
from .devices import resolve_device
from .distributed import World
from .evaluate import evaluate_splits, extra_splits, unroll
from .interfaces import Strategy, Task
from .model import TRMModel
from .registry import Registry, get_registry
from .run import prepare, read_config
from .strategies import StrategyReport, evaluate_strategy

#: Model sizes the task's data decide (``run.prepare`` fills them in from the data).
DATA_SIZES = ("vocab_size", "seq_len", "num_puzzle_identifiers")


@attrs.define
class LoadedRun:
    """A run folder's config, task and model, ready to predict (eval mode)."""

    run_dir: Path
    config: RunConfig
    task: Task
    model: TRMModel
    step: int  # the training step the checkpoint was written at
    ema: bool  # whether the weights are the EMA weights

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def predict(
        self,
        inputs: np.ndarray,
        puzzle_identifiers: np.ndarray | None = None,
        batch_size: int = 256,
        strategy: Strategy | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Answer puzzles with every supervision step (``halt_max_steps``), as evaluation does.

        Args:
            inputs: [N, S] input tokens (``Task.parse_puzzle`` makes one row).
            puzzle_identifiers: [N]; default the shared identifier 1 (tasks with
                one identifier, such as Sudoku and Maze).
            strategy: answer with this inference strategy instead (its answer at its
                full budget; ``batch_size`` bounds rows per forward pass, and the
                halt logits returned are NaN, since the chosen answer may not have one).

        Returns:
            ``(predictions [N, S] tokens, halt_logits [N])``.
        """
        inputs = np.asarray(inputs, dtype=np.int64)
        if inputs.ndim != 2 or inputs.shape[1] != self.model.config.seq_len:
            raise ValueError(
                f"inputs must be [N, {self.model.config.seq_len}] tokens, got {inputs.shape}"
            )
        if puzzle_identifiers is None:
            puzzle_identifiers = np.ones(len(inputs), dtype=np.int64)
        per_batch = batch_size
        if strategy is not None:
            per_batch = max(1, batch_size // max(1, strategy.rows_per_puzzle()))
        self.model.eval()
        predictions, halts = [], []
        for start in range(0, len(inputs), per_batch):
            batch = {
                "inputs": torch.from_numpy(inputs[start : start + per_batch]).to(self.device),
                "puzzle_identifiers": torch.as_tensor(
                    np.asarray(puzzle_identifiers[start : start + per_batch], dtype=np.int64),
                    device=self.device,
                ),
            }
            if strategy is None:
                with torch.inference_mode():  # strategies keep their contract's no_grad
                    prediction, halt_logits = unroll(self.model, batch)
            else:  # the answer selection at the full budget; it may have no halt logit
                result = strategy.answer(self.model, self.task, batch, start)
                prediction = next(iter(result.by_budget[max(result.by_budget)].values()))
                halt_logits = torch.full((len(prediction),), float("nan"))
            predictions.append(prediction.cpu().numpy())
            halts.append(halt_logits.float().cpu().numpy())
        if not predictions:
            return np.zeros((0, inputs.shape[1]), dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(predictions), np.concatenate(halts)

    def _prepared(self, world, max_examples, early_halting, log):
        """The run's config for ``world`` and its data folder (built or reused), the
        data checked against the checkpoint's model sizes."""
        mapping = unstructure(self.config)
        mapping["device"] = str(world.device)
        if max_examples is not None:
            mapping["eval"]["max_examples"] = max_examples
        if early_halting is not None:
            mapping["eval"]["early_halting"] = early_halting
        config, data_dir = prepare(mapping, self.task, world, log=log)
        model_config = self.model.config
        for key in DATA_SIZES:
            if getattr(config.model, key) != getattr(model_config, key):
                raise ConfigError(
                    f"{self.run_dir}: the checkpoint's model has {key} "
                    f"{getattr(model_config, key)} but the task's data need "
                    f"{getattr(config.model, key)}"
                )
        return config, data_dir

    def evaluate_strategy(
        self,
        strategy: Strategy,
        world: World | None = None,
        *,
        max_examples: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        splits: list[str] | None = None,
        log=lambda *args: None,
    ) -> list[StrategyReport]:
        """Accuracy against compute of ``strategy`` on the test split and every extra split.

        Args:
            batch_size: rows per forward pass (default: the run's ``eval.batch_size``).
            splits: only these (``test`` and extra split names); default all.

        Returns:
            One report per split on rank 0 (an empty list elsewhere).
        """
        world = World(device=self.device) if world is None else world
        config, data_dir = self._prepared(world, max_examples, None, log)
        available = {"test": read_split(data_dir / "test", self.task)}
        available.update(extra_splits(data_dir, self.task))
        unknown = [name for name in splits or [] if name not in available]
        if unknown:
            raise ConfigError(
                f"{self.run_dir}: no split {', '.join(map(repr, unknown))}; its splits: "
                + ", ".join(available)
            )
        chosen = {name: split for name, split in available.items() if name in (splits or available)}
        reports = []
        for name, split in chosen.items():
            report = evaluate_strategy(
                self.model, self.task, split, strategy, world,
                batch_size=batch_size or config.eval.batch_size,
                max_examples=config.eval.max_examples, seed=seed, name=name,
            )  # fmt: skip
            if report is not None:
                reports.append(report)
        return reports

    def evaluate(
        self,
        world: World | None = None,
        *,
        max_examples: int | None = None,
        early_halting: bool | None = None,
        out_dir: str | os.PathLike | None = None,
        log=lambda *args: None,
    ) -> dict[str, Any]:
        """Evaluate these weights as a run's final evaluation does: the test split and
        every extra split, metrics named as in ``metrics.json`` (what ``trm-eval`` prints).

        The task's data are built, or reused from its cache, from the run's data options
        (``run.prepare``, as ``trm-run`` made them).

        Args:
            world: under torchrun, the processes share the examples (default: this
                process alone, on the model's device).
            max_examples: evaluate a prefix of each split (default: the run's
                ``eval.max_examples``).
            early_halting: override the run's ``eval.early_halting``.
            out_dir: where the task writes its outputs (ARC's ``submission.json``; an
                extra split's into ``<name>/``); None writes nothing.
            log: says where the data are (``prepare``'s log line).

        Returns:
            The metrics on rank 0 (``{}`` on the other ranks), with ``seconds``.
        """
        world = World(device=self.device) if world is None else world
        config, data_dir = self._prepared(world, max_examples, early_halting, log)
        test = read_split(data_dir / "test", self.task)
        extra = extra_splits(data_dir, self.task)
        out = None if out_dir is None else Path(out_dir)
        metrics, _ = evaluate_splits(self.model, self.task, test, extra, config, world, out)
        return metrics


def check_run_model(model: TRMModel, config: RunConfig, task: Task, path: Path) -> None:
    """Refuse a checkpoint whose model is not the one its run folder's config.yaml
    describes, or does not fit the task's puzzles (a file copied in from another run)."""
    ours, theirs = unstructure(config.model), unstructure(model.config)
    differ = [
        f"model.{key} {theirs.get(key)!r} in the checkpoint, {value!r} in config.yaml"
        for key, value in ours.items()
        if key != "dtype" and theirs.get(key) != value
    ]
    for key, value in (("vocab_size", task.vocab_size), ("seq_len", task.seq_len)):
        if getattr(model.config, key) != value:
            differ.append(f"model.{key} {getattr(model.config, key)}, the task's {value}")
    if differ:
        raise CheckpointError(
            f"{path} is not the model of its run's config.yaml ({'; '.join(differ[:3])}"
            + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")
            + "); was it copied from another run?"
        )


def load_run(
    run_dir: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
) -> LoadedRun:
    """Load a run folder's last checkpoint, with its EMA weights when it has them.

    The one loader of trained runs (``trm-solve``, ``trm-eval``): it builds the model
    from the checkpoint, in eval mode on ``device``, and nothing for training.
    """
    device = resolve_device(device)  # a device this machine lacks fails before any reading
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    remove_stale_temporaries(run_dir)  # what a killed write left
    registry = registry or get_registry()
    task = registry.get("task", config.task)()
    task.configure(dict(config.data.options))
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint yet ({path} is missing)")
    payload = read_checkpoint(path)
    model = model_from_payload(payload, path, device, registry)  # checked key by key
    check_run_model(model, config, task, path)
    shadows = payload.get("ema")
    if shadows:
        parameters = dict(model.named_parameters())
        check_state(
            {k: parameters[k].shape for k in shadows if k in parameters}, shadows, f"{path} EMA"
        )
        with torch.no_grad():
            for name, value in shadows.items():
                parameters[name].copy_(value)
    return LoadedRun(run_dir, config, task, model, int(payload.get("step", 0)), bool(shadows))
