"""What a run shows: a progress bar (or plain lines), TensorBoard scalars, images, hparams."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

#: What the command is doing, innermost last: describers of the work in progress, for the
#: line an interrupt (Ctrl-C, SIGTERM) prints (see :func:`doing`).
_DOING: list[Callable[[], str]] = []


@contextlib.contextmanager
def doing(describe: Callable[[], str] | str) -> Iterator[None]:
    """Say what is in progress while the block runs: an interrupt's one line names the
    innermost, e.g. "training runs/x at step 57; the checkpoint of step 40 is kept;
    resume with: trm-run --resume runs/x". ``describe`` is called only then."""
    describer = describe if callable(describe) else (lambda: describe)
    _DOING.append(describer)
    try:
        yield
    except BaseException as error:  # the innermost description leaves with the error
        if getattr(error, "trm_doing", None) is None:
            with contextlib.suppress(Exception):
                error.trm_doing = describer()
        raise
    finally:
        _DOING.remove(describer)


#: The settings that size the memory the work in progress takes (see :func:`sized_by`).
_SIZED: list[str] = []


@contextlib.contextmanager
def sized_by(keys: str) -> Iterator[None]:
    """Name the settings that size the memory of the block's work ("eval.batch_size=500,
    strategy.k=32"): an out-of-memory error inside says to lower those."""
    _SIZED.append(keys)
    try:
        yield
    except BaseException as error:  # the error carries the keys out of the block
        if getattr(error, "trm_memory_keys", None) is None:
            with contextlib.suppress(AttributeError, TypeError):
                error.trm_memory_keys = keys
        raise
    finally:
        _SIZED.pop()


def memory_keys(error: BaseException | None = None) -> str | None:
    """The :func:`sized_by` keys of the block ``error`` came out of, else the innermost
    block's, or None."""
    keys = getattr(error, "trm_memory_keys", None)
    return keys if keys is not None else (_SIZED[-1] if _SIZED else None)


def in_progress(error: BaseException | None = None) -> str | None:
    """What :func:`doing` said was in progress where ``error`` was raised, else what it
    says is in progress now (the innermost), or None."""
    said = getattr(error, "trm_doing", None)
    if said is not None:
        return said
    for describe in reversed(_DOING):
        try:
            return describe()
        except Exception:  # a describer must never hide the interrupt
            continue
    return None


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s'; 65 -> '1m05s'; 5.2 -> '5s'."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """A one-line progress bar with ETA on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, start: int = 0, stream: TextIO | None = None) -> None:
        self.total, self.start = total, start
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.began = time.monotonic()
        self._open_line = False

    def eta(self, step: int) -> float:
        done = step - self.start
        if done <= 0:
            return math.inf
        return (time.monotonic() - self.began) / done * (self.total - step)

    def update(self, step: int, values: Mapping[str, float]) -> None:
        """Show ``step`` of ``total`` with a few values (loss, accuracy, ...)."""
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        percent = 100 * step / max(1, self.total)
        eta = format_duration(self.eta(step))
        if self.tty:
            width = 24
            filled = int(width * step / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            line = f"\r[{bar}] {step}/{self.total} {percent:3.0f}% ETA {eta} | {shown}"
            self.stream.write(line.ljust(100)[:160])
            self._open_line = True
        else:
            self.stream.write(f"step {step}/{self.total} ({percent:.0f}%) {shown} ETA {eta}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A full line of text that does not garble the bar."""
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()


class TensorBoard:
    """A thin wrapper over torch's SummaryWriter writing into the run folder (rank 0 only).

    The writer opens at the first write. A run resumed from its checkpoint of step K says
    so with :meth:`resume_at`; the writer then drops every point an earlier process
    logged after step K (a killed run logs past its last checkpoint), so that no step
    is logged twice.
    """

    def __init__(self, log_dir: Path | None) -> None:
        self.log_dir = log_dir
        self.purge_after: int | None = None
        self._writer = None

    def resume_at(self, step: int) -> None:
        """Continue the run's events from ``step``: later points already there are dropped."""
        self.purge_after = step
        if self._writer is not None:  # reopen, with the purge, at the next write
            self._writer.close()
            self._writer = None

    @property
    def writer(self):
        """torch's SummaryWriter (None without a folder), opened on first use."""
        if self._writer is None and self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            earlier = any(Path(self.log_dir).glob("events.out.tfevents.*"))
            purge = self.purge_after + 1 if self.purge_after is not None and earlier else None
            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)
            self.purge_after = None  # once: what this process writes stays
        return self._writer

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        if self.writer is None:
            return
        for name, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars(tag.rpartition("/")[0] or tag, {tag.rpartition("/")[2]: value}, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """``image``: [H, W, 3] uint8."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Record hyper-parameters (flattened config) against the eval metrics' tags."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        clean = {
            key: value if isinstance(value, int | float | str | bool) else str(value)
            for key, value in params.items()
        }
        for summary in hparams(clean, dict(metrics)):
            self.writer.file_writer.add_summary(summary)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
