"""``trm-run`` top to bottom, as a library function: :func:`train`.

It goes: validate the config once (:func:`trm_core.run.validate`), start the
processes' world, lock the run folder, build the data once
(:func:`trm_core.run.build_data`), build the :class:`~trm_core.trainer.Trainer`,
fit, and write the model folder. The command line (``trm_core.cli``) only parses
flags, resolves the preset and prints the result::

    from trm_core import resolve, train

    mapping, task, _ = resolve("sudoku", mixer="mlp", overrides=["train.steps=100"])
    result = train(mapping, out="runs")
    print(result.metrics["exact_accuracy"], result.model_dir)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

from .checkpoint import read_checkpoint
from .config import RunConfig, unstructure
from .devices import check_device_name, micro_batch, training_memory_problem
from .distributed import init_world
from .errors import CheckpointError, ConfigError
from .export import export_model
from .files import FolderLock
from .inference import load_run
from .layers import PuzzleEmbedding
from .monitor import Progress, doing
from .registry import Registry, get_registry
from .run import (
    RESUMABLE,
    build_data,
    new_run_dir,
    read_config,
    resume_changes,
    sized,
    start_over,
    validate,
    write_config,
)
from .trainer import Trainer, check_shares


@attrs.frozen
class TrainResult:
    """What :func:`train` leaves (on the process that writes the run folder; elsewhere
    the folders are None and the metrics empty)."""

    run_dir: Path | None
    trained: bool  # False when max_steps left nothing to train
    step: int  # the step training stopped at
    total_steps: int
    metrics: dict[str, float]  # the last evaluation's (empty when nothing was trained)
    seconds: float  # training and evaluation, without the setup
    checkpoint: Path | None
    model_dir: Path | None  # the model folder written at the end (trm-export's)
    flops: int | None = None  # the model FLOPs of training to ``step`` (None: not counted)


def train(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    out: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    device: str | None = None,
    max_steps: int | None = None,
    time_budget: float | None = None,
    registry: Registry | None = None,
    say: Callable[[str], None] = print,
    chosen: str | None = None,
) -> TrainResult:
    """Train, evaluate and save a model as ``trm-run`` does.

    Args:
        config: the run's config, a RunConfig or a merged mapping (``run.resolve``'s);
            None with ``resume``: the run folder's ``config.yaml``.
        out: the folder a new run folder is made in.
        resume: a run folder to continue from its checkpoint (its config may differ
            from the checkpoint's only in :data:`~trm_core.run.RESUMABLE` keys).
        device: overrides the config's device, after the config's own is checked.
        max_steps, time_budget: stop at this step, or after this many seconds.
        say: where progress lines go (rank 0 only).
        chosen: what chose the config (printed in the first line).

    Raises:
        ConfigError, DataError, CheckpointError, TrainingError: one line each, naming
        the key, file or step.
    """
    registry = registry or get_registry()
    run_dir = None if resume is None else Path(resume)
    if config is None:
        if run_dir is None:
            raise ConfigError("train() needs a config, or resume=RUN_DIR")
        config = read_config(run_dir)
    mapping = unstructure(config) if isinstance(config, RunConfig) else dict(config)
    task = registry.get("task", mapping.get("task"))()
    config, strategy = validate(mapping, task, registry)  # every value, once
    if device is not None:
        check_device_name(device, key="--device")
        config = attrs.evolve(config, device=device)
    world = init_world(config.device)
    check_shares(config, world)
    say = say if world.is_main else (lambda *args, **kwargs: None)
    with contextlib.ExitStack() as held:
        payload = None
        if run_dir is not None:
            if world.is_main:  # one writer per run folder
                note = _hold(held, run_dir)
                if note:
                    say(f"note: {note}")
            payload = resume_payload(run_dir, config)
        processes = (
            f" x{world.size} processes ({torch.distributed.get_backend()})"
            if world.distributed
            else ""
        )
        chosen = chosen or (f"resuming {run_dir}" if resume else f"preset {config.preset}")
        say(
            f"trm-run: task {config.task}, mixer {config.model.mixer}, {chosen}; "
            f"device {world.device}{processes}"
        )
        data = build_data(config, task, world, log=say)
        config = sized(config, data, mapping)
        problem = training_memory_problem(config, world.device, world.size)
        if problem is not None:
            raise ConfigError(problem)
        if run_dir is None and world.is_main:
            run_dir = new_run_dir(out, config)
            _hold(held, run_dir)
        progress = Progress(total=0) if world.is_main else None
        writer = run_dir if world.is_main else None
        trainer = Trainer(config, task, data, world, writer, registry, progress, strategy)
        if payload is not None:
            trainer.load(trainer.checkpoint_path, payload)
            say(f"resumed at step {trainer.step} of {trainer.total_steps}")
        elif writer is not None:
            write_config(writer, trainer.config, trainer.model.plugin_table)
        if progress is not None:
            progress.total, progress.start = trainer.total_steps, trainer.step
            if max_steps is not None:
                progress.total = min(max_steps, trainer.total_steps)
        for line in describe(trainer):
            say(line)
        result = TrainResult(
            writer, False, trainer.step, trainer.total_steps, {}, 0.0, trainer.checkpoint_path, None
        )
        if max_steps is not None and trainer.step >= max_steps:
            say(f"note: the run is at step {trainer.step} already; --max-steps {max_steps} "
                "leaves nothing to train")  # fmt: skip
            return result
        started = time.monotonic()
        with doing(trainer.interruption):
            metrics = trainer.fit(max_steps=max_steps, time_budget=time_budget)
        seconds = time.monotonic() - started
        model_dir = None
        if writer is not None:  # the model as a folder to share (trm-export's), from the checkpoint
            model_dir = write_model_folder(writer, trainer.step, data.folder, registry)
        return attrs.evolve(
            result, trained=True, step=trainer.step, metrics=metrics, seconds=seconds,
            model_dir=model_dir, flops=trainer.log.train_flops(trainer.step),
        )  # fmt: skip


def _hold(held: contextlib.ExitStack, run_dir: Path) -> str | None:
    """Lock ``run_dir`` until ``held`` closes; the note on a lock taken over."""
    lock = FolderLock(run_dir)
    note = lock.acquire()
    held.callback(lock.release)
    return note


def resume_payload(run_dir: Path, config: RunConfig) -> dict[str, Any]:
    """The checkpoint a resume continues from, refused when it is missing, damaged, or
    not what the folder's config.yaml now describes (an edit that changes what it
    computed); the run's history is never started over."""
    path = run_dir / "checkpoints" / "last.pt"
    again = start_over(run_dir, config.task)
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir} has no checkpoint to resume from ({path} is missing: the run stopped "
            f"before its first, or it was removed); its history is kept. Start over in a new "
            f"run folder: {again}"
        )
    try:
        payload = read_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; the run cannot resume. Start over: {again}") from None
    saved = payload.get("run_config")
    if isinstance(saved, dict):
        now = {**unstructure(config), "device": saved.get("device")}  # --device may change
        changed = resume_changes(now, saved)
        if changed:
            raise ConfigError(
                f"{run_dir / 'config.yaml'} was edited since the checkpoint of step "
                f"{payload.get('step', '?')}: {'; '.join(changed)}. Only "
                f"{', '.join(RESUMABLE)} may change on resume (and --max-steps, "
                f"--time-budget, --device): undo the edit, or start a new run: {again}"
            )
    return payload


def describe(trainer: Trainer) -> list[str]:
    """What a run trains, in lines: the model, the schedule, the data, the notes on a
    schedule that will likely waste a short run, and the puzzle-embedding tables."""
    config, model = trainer.config, trainer.model
    lines = [
        f"model: {model.num_parameters():,} parameters, dtype {model.config.dtype}"
        f"{', compiled' if trainer.compiled else ''}"
        f"{', batches made ahead' if trainer.batches.background else ''}; "
        f"{trainer.total_steps} steps of {config.train.global_batch_size} examples; "
        f"train {len(trainer.data.train)} x {config.data.augmentations + 1} variants, "
        f"test {len(trainer.data.test)}"
    ]
    examples, activations = micro_batch(config, trainer.world.size)
    shares = trainer.world.size * config.train.accumulate
    if shares > 1:
        lines.append(
            f"micro-batch: {examples} examples per forward on each device ("
            f"{config.train.global_batch_size} over {trainer.world.size} process(es) x "
            f"train.accumulate {config.train.accumulate}), about "
            f"{activations / 2**30:,.2f} GiB of activations (a rough estimate)"
        )
    lines += [f"note: {line}" for line in schedule_notes(config, trainer.total_steps)]
    for name, module in model.named_modules():
        if isinstance(module, PuzzleEmbedding):
            table = module.weights
            lines.append(
                f"puzzle embeddings: {table.shape[0]:,} x {table.shape[1]} "
                f"{str(table.dtype).removeprefix('torch.')} = "
                f"{table.numel() * table.element_size() / 2**20:,.1f} MiB ({name}: a buffer "
                "trained by sign-SGD, saved once per checkpoint, no EMA copy or optimiser state)"
            )
    return lines


def schedule_notes(config: RunConfig, total_steps: int) -> list[str]:
    """What in the schedule will likely waste a short run (a preset that sets only
    ``train.steps`` keeps the paper's 2,000 warm-up steps and 0.999 EMA)."""
    train, notes = config.train, []
    if train.lr_warmup_steps >= total_steps:
        notes.append(
            f"train.lr_warmup_steps ({train.lr_warmup_steps}) is not below the run's "
            f"{total_steps} steps: the learning rate never reaches train.lr ({train.lr:g})"
        )
    horizon = 1 / max(1 - train.ema_rate, 1e-12)
    if train.ema and horizon > total_steps:
        notes.append(
            f"train.ema_rate {train.ema_rate:g} averages over ~{horizon:,.0f} steps, more "
            f"than the run's {total_steps}: the EMA weights evaluated stay near their start "
            "(lower train.ema_rate, or set train.ema=false)"
        )
    return notes


def write_model_folder(run_dir: Path, step: int, data_dir: Path, registry: Registry) -> Path:
    """``RUN/model``: what ``trm-export RUN RUN/model`` writes, from the checkpoint."""
    model_dir = run_dir / "model"
    with doing(
        f"writing the model folder {model_dir}; the checkpoint of step {step} is "
        f"kept, and trm-export {run_dir} {model_dir} --force writes the folder again"
    ):
        loaded = load_run(run_dir, device="cpu", registry=registry)
        export_model(loaded, model_dir, force=True, data_dir=data_dir)
    return model_dir
