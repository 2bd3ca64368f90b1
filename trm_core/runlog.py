"""What a run publishes, beside the monitor's progress line: the loggers (TensorBoard
and any logger plugin), ``metrics.json`` and the history of evaluations.

The trainer says what happened (a measured training step, an evaluation, a resume);
the run log decides where it goes. Only the process that writes the run folder
publishes (rank 0 under torchrun); elsewhere a run log records nothing.

An evaluation is recorded when it is made but published (loggers, ``metrics.json``)
only when the trainer says the checkpoint holding it is on disk
(:meth:`RunLog.publish`), so what a run shows never runs ahead of what it can resume
from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig, unstructure
from .curriculum import DEPTH_KEYS, segments
from .files import atomic_write_text
from .flops import flops_per_step, step_flops
from .interfaces import Logger
from .monitor import Progress, flatten
from .registry import Registry, get_registry
from .strategies import StrategyReport, format_report, report_scalars


def make_loggers(
    sections: Mapping[str, Any], run_dir: Path, registry: Registry | None = None
) -> list[Logger]:
    """The loggers a config's ``loggers`` section names, with their options (a null
    section drops its logger); an unknown name or option is a ConfigError naming it."""
    registry = registry or get_registry()
    loggers = []
    for name, section in sections.items():
        if section is None:
            continue
        cls = registry.get("logger", name)
        loggers.append(cls(run_dir, cls.options_from(name, section)))
    return loggers


def log_strategy(loggers: list[Logger], name: str, reports: list[StrategyReport]) -> None:
    """Every report's accuracy against compute, under ``strategy/<name>/<split>/<selection>``
    with the forward passes per puzzle on the step axis."""
    for report in reports:
        grouped: dict[tuple[str, int], dict[str, float]] = {}
        for tag, value, step in report_scalars(report, f"strategy/{name}"):
            prefix, _, key = tag.rpartition("/")
            grouped.setdefault((prefix, step), {})[key] = value
        for (prefix, step), values in grouped.items():
            for logger in loggers:
                logger.scalars(prefix, values, step)


class RunLog:
    """Publishes one run: progress lines, loggers, ``metrics.json`` and the history.

    Args:
        run_dir: the run folder; None where this process writes nothing (other ranks,
            a trainer without a folder): then only the history is kept.
        config: the run's config (its ``loggers`` section and, for the loggers'
            :meth:`~trm_core.Logger.start`, all of it).
        progress: the progress line (None: nothing printed).
        total_steps: the run's steps (a depth curriculum's stages are fractions of it).
    """

    def __init__(
        self,
        run_dir: Path | None,
        config: RunConfig,
        registry: Registry | None = None,
        progress: Progress | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.run_dir, self.config, self.progress = run_dir, config, progress
        self.total_steps = total_steps
        #: Wall-clock seconds of training so far, evaluations and saving left out (the
        #: trainer keeps it; each evaluation's record holds it, to plot against).
        self.train_seconds: float | None = None
        self.registry = registry
        self.loggers = [] if run_dir is None else make_loggers(config.loggers, run_dir, registry)
        #: Every evaluation's record (``metrics.json``'s own records), oldest first.
        self.history: list[dict[str, Any]] = []
        self._pending: tuple[dict[str, list[np.ndarray]], str | None, list] | None = None
        self._seen = (time.monotonic(), 0)  # (time, step) of the last training line
        #: The model FLOPs of one training step (None: the mixer does not count them).
        self.step_flops = flops_per_step(config, registry)
        self._depth_flops: dict[tuple[int, ...], int] = {}  # a curriculum stage's, by depth

    def train_flops(self, step: int) -> int | None:
        """The model FLOPs of training up to ``step``: every step costs the same, except
        under a depth curriculum (``train.curriculum``), whose stages cost their own."""
        if self.step_flops is None:
            return None
        if not self.config.train.curriculum or self.total_steps is None:
            return step * self.step_flops
        total = 0
        for count, model in segments(self.config, self.total_steps, step):
            depth = tuple(getattr(model, key) for key in DEPTH_KEYS)
            if depth not in self._depth_flops:  # counted once per depth, not per log line
                batch = self.config.train.global_batch_size
                self._depth_flops[depth] = step_flops(model, batch, self.registry)["total"]
            total += count * self._depth_flops[depth]
        return total

    def start(self, step: int, history: list[dict[str, Any]] | None = None) -> None:
        """The run begins at step 0, or resumes at ``step`` with the checkpoint's
        ``history`` (then ``metrics.json`` is rewritten to it: a run killed between a
        checkpoint and its publication logged nothing twice)."""
        self._seen = (time.monotonic(), step)
        if history is not None:
            self.history = list(history)
            self._write_metrics()
        params = flatten(unstructure(self.config))
        for logger in self.loggers:
            logger.start(params, step)

    def message(self, text: str) -> None:
        if self.progress is not None:
            self.progress.message(text)

    def training(self, step: int, summary: dict[str, float]) -> None:
        """A measured training step's averages (loss, accuracies, lr, ...): to the
        loggers under ``train/`` with the examples per second since the last, and the
        progress line."""
        now, (then, then_step) = time.monotonic(), self._seen
        examples = (step - then_step) * self.config.train.global_batch_size
        summary["examples_per_second"] = examples / max(1e-9, now - then)
        if self.step_flops is not None:
            summary["flops"] = float(self.train_flops(step))
        self._seen = (now, step)
        for logger in self.loggers:
            logger.scalars("train", summary, step)
        if self.progress is not None:
            shown = {k: summary[k] for k in ("loss", "exact_accuracy", "token_accuracy")}
            self.progress.update(step, shown)

    def evaluation(
        self,
        step: int,
        metrics: dict[str, float],
        images: dict[str, list[np.ndarray]],
        by_step: list[float] | None = None,
        strategy: tuple[str, dict[str, Any], list[StrategyReport]] | None = None,
    ) -> None:
        """Record an evaluation (rank 0): its metrics, the drawn puzzles by split prefix,
        the accuracy after each supervision step, and the strategy's ``(name, options,
        reports)``, whose tables are printed now. Published by :meth:`publish`."""
        record: dict[str, Any] = {"step": step, "metrics": metrics}
        if self.train_seconds is not None:
            record["train_seconds"] = round(self.train_seconds, 3)
        if self.step_flops is not None:
            record["train_flops"] = self.train_flops(step)
        if by_step:
            record["exact_accuracy_by_steps"] = by_step
        name, reports = None, []
        if strategy is not None:
            name, options, reports = strategy
            for report in reports:
                self.message(f"strategy {name}:\n" + format_report(report))
            record["strategy"] = {
                "name": name,
                "options": options,
                "reports": [report.as_dict() for report in reports],
            }
        self.history.append(record)
        self._pending = (images, name, reports)

    def publish(self) -> None:
        """The last recorded evaluation to the loggers and ``metrics.json``; the loggers
        flushed. Call it once the checkpoint holding the evaluation is written."""
        if self._pending is None:
            return
        (images, name, reports), self._pending = self._pending, None
        record = self.history[-1]
        for logger in self.loggers:
            logger.scalars("eval", record["metrics"], record["step"])
            for prefix, drawn in images.items():
                named = {f"{prefix}puzzle_{index}": image for index, image in enumerate(drawn)}
                if named:
                    logger.images("eval", named, record["step"])
        if reports:
            log_strategy(self.loggers, name, reports)
        self._write_metrics()
        for logger in self.loggers:
            logger.flush()

    def show_eval(self, step: int, metrics: dict[str, Any], every: bool = False) -> None:
        """The accuracies of an evaluation (``every``: all its metrics) as one line."""
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if every or k.endswith("accuracy")
        )
        self.message(f"eval at step {step}: {shown}")

    def close(self) -> None:
        """Flush and close every logger (also when the run fails)."""
        for logger in self.loggers:
            logger.close()

    def _write_metrics(self) -> None:
        """``metrics.json``: the history, then what other programs recorded there
        (``trm-eval --strategy``'s records, marked ``evaluated_by``)."""
        if self.run_dir is None:
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
