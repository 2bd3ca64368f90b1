"""Files: one writer per run folder.

A run folder is written by one process at a time: ``trm-run`` (a new run or
``--resume``) and ``trm-export`` into it hold an exclusive lock on
``RUN/.writer.lock`` (``fcntl.flock``) for as long as they write, and the file
names the holder (process id, command, start time). A second writer is refused
naming the holder. The operating system releases the lock when its holder ends,
however it ends, so a lock left by a killed process is taken over, with a note
naming it. Readers (``trm-eval``, ``trm-solve``, ``load_model``) never take it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .config import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per folder is not enforced there
    fcntl = None

LOCK_NAME = ".writer.lock"


class FolderBusyError(ConfigError):
    """A run folder another process is writing."""


def _command() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    text = " ".join([name, *sys.argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


class FolderLock:
    """The one-writer lock of ``folder`` (a run folder).

    ``acquire()`` takes it or raises :class:`FolderBusyError` naming the holder; it
    returns a note when it took over a lock a process that ended left behind (None
    otherwise). ``release()`` empties the holder record and lets go; a process that
    ends without releasing it (killed) lets go anyway, its record left for the next
    writer's note.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._handle: int | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> str | None:
        if self._handle is not None or fcntl is None:
            return None
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(handle))
            os.close(handle)
            raise FolderBusyError(
                f"{self.folder} is being written by {holder}; one process writes a run "
                "folder at a time: wait for it to end (or stop it), then try again"
            ) from None
        except OSError:  # a file system without locks: go on unlocked
            os.close(handle)
            return None
        previous = _read(handle)
        record = {"pid": os.getpid(), "command": _command(), "since": time.time()}
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps(record).encode(), 0)
        self._handle = handle
        if previous and previous.get("pid") != os.getpid():
            return (
                f"{self.folder}: took over the lock of {_describe(previous)}, which ended "
                "without releasing it (killed?)"
            )
        return None

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            os.ftruncate(handle, 0)
        except OSError:
            pass
        finally:
            os.close(handle)  # closing lets the lock go

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(handle: int) -> dict | None:
    try:
        data = os.pread(handle, 4096, 0)
        record = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _describe(record: dict | None) -> str:
    if not record:
        return "another process"
    since = record.get("since")
    when = ""
    if isinstance(since, int | float):
        when = ", since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    return f"process {record.get('pid', '?')} ({record.get('command', '?')}{when})"


def run_folder_of(path: str | os.PathLike) -> Path | None:
    """The run folder ``path`` is in (or is), else None: a folder holding config.yaml
    and checkpoints/."""
    here = Path(path).absolute()
    for folder in (here, *here.parents):
        if (folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir():
            return folder
    return None
