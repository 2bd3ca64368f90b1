"""What a command shows while it works: a progress bar (or plain lines), and what is in
progress, for the one line an interrupt or an out-of-memory error prints. (What a run
publishes, to its loggers and ``metrics.json``, is :mod:`trm_core.runlog`.)"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TextIO

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
