"""What every console command shares: its argument parser, the one-line error path,
clean interrupts, and how it is run.

A command's ``main(argv)`` parses its arguments with :class:`Parser` (a usage
mistake is one line) and runs its work through :func:`guarded`, which turns the
user's mistakes (:data:`trm_core.errors.USER_ERRORS`), the machine's limits (a full
disk, memory run out) and interrupts into one line and an exit code; its console
script calls :func:`run`, which also turns SIGTERM into :class:`~trm_core.errors.Terminated`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import warnings
from typing import Any, NoReturn

import yaml

from .errors import USER_ERRORS, ConfigError, Terminated
from .monitor import in_progress, memory_keys


def fail(message: str) -> int:
    """Print ``error: message`` as one line (a listing's lines joined by ``;``); return 2."""
    parts = [part.strip() for part in str(message).splitlines() if part.strip()] or ["failed"]
    text = parts[0] + (" " + "; ".join(parts[1:]) if len(parts) > 1 else "")
    print(f"error: {text}", file=sys.stderr)
    return 2


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported as one line (``error: argument
    --max-steps: invalid int value: 'abc' (trm-run --help lists the options)``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} ({self.prog} --help lists the options)\n")


def add_model_source(parser: argparse.ArgumentParser) -> None:
    """``--run RUN_DIR`` or ``--model SOURCE``, one of them: the model trm-eval and
    trm-solve use (``trm_core.load_model`` takes either)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=named, metavar="RUN_DIR", help="a run folder")
    which.add_argument(
        "--model", type=named, metavar="SOURCE",
        help="a model folder (trm-export's, RUN/model), a run folder, a checkpoint or "
        "hf://owner/name[@revision]",
    )  # fmt: skip


def named(text: str) -> str:
    """An argparse type: a file or folder name, never empty (``Path("")`` is the
    working folder, which no one means)."""
    if text == "":
        raise argparse.ArgumentTypeError("an empty name")
    return text


def count(text: str) -> int:
    """An argparse type: a positive integer (``--max-steps 0`` would train nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def amount(text: str) -> float:
    """An argparse type: a positive, finite number (``--time-budget nan`` is refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def environment_failure(error: BaseException, kept: str = "") -> int:
    """A full disk, a folder that cannot be written, or memory run out: one line saying
    what ran out and (``kept``) what is safe."""
    from .devices import describe_os_error

    if isinstance(error, OSError):
        what = describe_os_error(error)
    else:
        keys = memory_keys(error)
        what = f"out of memory{_allocation(error)}; " + (
            f"lower {keys}" if keys else "try a smaller train.global_batch_size or eval.batch_size"
        )
    return fail(what + (f"; {kept}" if kept else ""))


def _allocation(error: BaseException) -> str:
    """ " (tried to allocate 3.20 GiB)" when the allocator's message says how much."""
    import re

    found = re.search(r"[Tt]ried to allocate ([0-9.]+ ?[KMGT]i?B)", str(error))
    if found:
        return f" (tried to allocate {found.group(1)})"
    found = re.search(r"allocate ([0-9]+) bytes", str(error))
    return f" (tried to allocate {int(found.group(1)) / 2**30:.2f} GiB)" if found else ""


def parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:  # the words trm-run's --set uses
        problem = str(error).replace("\n", " ")
        raise argparse.ArgumentTypeError(
            f"{key.strip()}: the value is not YAML ({problem})"
        ) from None


def guarded(call) -> int:
    """``call()``'s exit code; the user's mistakes (bad config, data, checkpoint) and the
    machine's limits (a full disk, an unwritable folder, memory run out) are one line
    and exit code 2 instead of a traceback."""
    from .devices import out_of_memory

    try:
        return call()
    except (KeyboardInterrupt, Terminated) as error:
        return interrupted(error)
    except USER_ERRORS as error:
        return fail(str(error))
    except (OSError, MemoryError) as error:
        return environment_failure(error)
    except RuntimeError as error:
        if not out_of_memory(error):
            raise
        return environment_failure(error)


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def interrupted(error: BaseException) -> int:
    """One line for an interrupt (Ctrl-C: exit 130; SIGTERM: 143): what was interrupted
    and what is kept (``monitor.doing``'s innermost description); no traceback."""
    name, code = ("SIGTERM", 143) if isinstance(error, Terminated) else ("SIGINT", 130)
    what = in_progress(error)
    sys.stdout.flush()
    print(f"\ninterrupted ({name})" + (f": {what}" if what else ""), file=sys.stderr, flush=True)
    return code


def strategy_settings(name: str | None, assignments: list[str]) -> tuple[dict | None, int | None]:
    """The ``strategy`` section that ``--strategy`` and ``--set strategy.*`` make (None:
    no strategy asked for) and a ``--set eval.batch_size``."""
    section: dict[str, Any] = {}
    batch_size = None
    for text in assignments:
        try:
            key, parsed = parse_option(text)
        except argparse.ArgumentTypeError as error:
            raise ConfigError(f"--set {error}") from None
        if key == "eval.batch_size":
            if isinstance(parsed, bool) or not isinstance(parsed, int) or parsed <= 0:
                raise ConfigError(f"eval.batch_size must be a positive integer, got {parsed!r}")
            batch_size = parsed
        elif key.startswith("strategy.") and key.count(".") == 1 and key != "strategy.":
            section[key.removeprefix("strategy.")] = parsed
        else:
            raise ConfigError(
                f"--set {key}: trm-eval takes strategy.<option> (with --strategy) and "
                "eval.batch_size; the run's other settings are fixed"
            )
    if name is not None:
        section["name"] = name
    if section and "name" not in section:
        raise ConfigError("--set strategy.<option> needs --strategy NAME")
    return (section or None), batch_size


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Plugin load failures as one plain line; other warnings as Python shows them."""
    from .errors import PluginLoadWarning

    if issubclass(category, PluginLoadWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def run(command) -> None:
    """Run a console command: SIGTERM raised as :class:`Terminated` (reported, like
    Ctrl-C, in one line by :func:`guarded`); a closed pipe (``trm-plugins | head``) is
    not an error; output that cannot be written (a full disk) is one line."""
    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except (KeyboardInterrupt, Terminated) as error:  # outside guarded (argument parsing)
        code = interrupted(error)
    except OSError as error:  # stdout itself failed (e.g. trm-plugins > /dev/full)
        from .devices import describe_os_error

        _quiet_stdout()
        print(f"error: cannot write the output: {describe_os_error(error)}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit cannot fail
    again on what is still buffered."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
