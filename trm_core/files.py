"""Files: how trm writes, so that nothing is ever half-written or lost.

- Atomic writes (:func:`atomic_write_text`, :func:`atomic_save`): a temporary file
  beside the target (``.NAME.XXXXXXXX.tmp``, locked while open so that a cleaner
  can tell one being written from one an interrupted write left), flushed, fsynced,
  given the mode a plain ``open`` would, then renamed over the target.
  :func:`remove_stale_temporaries` removes what killed writes left.
- Whole folders (:func:`staged_folder`, :func:`replace_folder`): written in a hidden
  folder beside the target and renamed into place in one step.
- The umask: what :func:`current_umask` says, and what :func:`honour_umask` gives
  the folders that ``tempfile`` makes private.
- Locks: :func:`locked`, an exclusive lock on a file (two builds of one data
  folder), and :class:`FolderLock`, the one-writer lock of a run folder.

One writer per run folder: ``trm-run`` (a new run or ``--resume``) and
``trm-export`` into a run folder hold an exclusive lock on ``RUN/.writer.lock``
(``fcntl.flock``) for as long as they write, and the file names the holder
(process id, command, start time). A second writer is refused naming the holder.
The operating system releases the lock when its holder ends, however it ends, so
a lock left by a killed process is taken over, with a note naming it. Readers
(``trm-eval``, ``trm-solve``, ``load_model``) never take it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FolderBusyError

try:
    import fcntl
except ImportError:  # Windows: no flock; an open file cannot be removed there anyway
    fcntl = None

# -- the umask and atomic writes --------------------------------------------------------

#: What _atomic_write's temporaries are called (mkstemp's 8 random characters).
TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")
#: A temporary whose lock cannot be tested (a file system without locks) is left this long.
_UNLOCKED_AGE = 3600.0


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _read_umask()
_STATUS = "/proc/self/status"


def current_umask() -> int:
    """The process's umask, read without setting it (os.umask is process-wide): Linux's
    ``/proc/self/status``, elsewhere the umask at import."""
    try:
        with open(_STATUS) as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK_AT_IMPORT


def _open_temporary(path: Path) -> tuple[int, str]:
    """A new temporary beside ``path``, flock-ed while open (remove_stale_temporaries skips
    it); made again if a cleaner removed it between its creation and the lock."""
    while True:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if fcntl is None:
            return handle, name
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            return handle, name
        if os.fstat(handle).st_nlink:
            return handle, name
        os.close(handle)


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write through ``write(file)`` into a temporary beside ``path``, flush, fsync, rename.

    The file gets the mode a plain ``open`` would give it (an existing file's, else 0o666
    less the umask); an OSError names ``path``, not the temporary.
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = _open_temporary(path)
        with os.fdopen(handle, "wb") as file:
            if hasattr(os, "fchmod"):
                os.fchmod(handle, mode)
            write(file)
            file.flush()
            os.fsync(file.fileno())
            if fcntl is not None:  # renamed while locked: no cleaner takes a finished file
                os.replace(temporary, path)
        if fcntl is None:  # Windows renames no open file
            os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        cause = _os_error(error)
        if cause is None:
            raise
        named = cause.filename
        if named is None or _temporary_of(named) == path.name:
            named = str(path)
        raise OSError(cause.errno, cause.strerror, named) from error
    return path


def _os_error(error: BaseException) -> OSError | None:
    """The OSError with an errno behind ``error`` (torch.save turns a full disk into a
    RuntimeError whose context is the OSError), or None."""
    seen = error
    while isinstance(seen, Exception):
        if isinstance(seen, OSError) and seen.errno:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _temporary_of(filename: Any) -> str | None:
    """The target's name when ``filename`` is an _atomic_write temporary, else None."""
    if not isinstance(filename, str | bytes):
        return None
    match = TEMPORARY.fullmatch(Path(os.fsdecode(filename)).name)
    return None if match is None else match["target"]


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` so that a crash never leaves a half-written file."""
    import torch

    return _atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8) so that a crash never leaves a half-written file."""
    return _atomic_write(path, lambda file: file.write(text.encode()))


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries interrupted atomic writes left in ``folder`` and its
    subfolders (``checkpoints/``, an extra split's outputs); returns the paths removed.

    A killed save leaves its ``.NAME.XXXXXXXX.tmp`` for good, as large as the checkpoint.
    One still being written, by this or another process (``trm-eval`` beside a training
    run), holds its lock and is left alone; where locks cannot be tested, one less than an
    hour old is left too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for where in [folder, *(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())]:
        for entry in os.scandir(where):
            stale = TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
            if stale and _remove_if_abandoned(Path(entry.path)):
                removed.append(Path(entry.path))
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    try:
        if fcntl is None:  # an open file cannot be removed there: an unlink in use fails
            path.unlink()
            return True
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a write in progress
        except OSError:  # no locks on this file system: go by age
            if time.time() - os.fstat(handle).st_mtime < _UNLOCKED_AGE:
                return False
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(handle)


# -- whole folders --------------------------------------------------------------------------


def replace_folder(new: Path, path: Path) -> None:
    """Rename the folder ``new`` to ``path``; an existing ``path`` is first renamed aside
    in one step, then removed, so a reader sees the old split or the new one whole (or,
    for a moment, none), never a mix of both or a half-deleted one."""
    if not os.path.lexists(path):
        os.replace(new, path)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    try:
        os.replace(path, aside / path.name)
        try:
            os.replace(new, path)
        except BaseException:
            os.replace(aside / path.name, path)  # the old one back
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def honour_umask(root: Path) -> None:
    """Give ``root`` and everything under it the modes the user's umask gives new files
    (``0o777 & ~umask`` for folders, ``0o666 & ~umask`` for files).

    ``tempfile`` makes its folders and files private (0o700, 0o600); a data folder built
    in one and renamed into a shared cache must be readable as any other file the user
    writes. The umask is :func:`current_umask`, the one atomic writes use.
    """
    folder_mode = 0o777 & ~current_umask()
    file_mode = folder_mode & 0o666
    for place, _folders, files in os.walk(root):
        os.chmod(place, folder_mode)
        for name in files:
            file = os.path.join(place, name)
            if not os.path.islink(file):
                os.chmod(file, file_mode)


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (inside a folder renamed into place)."""
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, kind: str = "export") -> Iterator[Path]:
    """A hidden folder beside ``out`` to write into (``.OUT.XXXXXXXX.<kind>``), renamed
    over ``out`` in one step when the block ends (replacing one already there) and
    removed when it fails; a killed write's staging folder is removed by the next."""
    out = Path(out)
    remove_abandoned_staging(out, kind)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=f".{kind}", dir=out.parent))
    handle = None
    try:
        handle = _hold(staging / ".lock")
        yield staging
        (staging / ".lock").unlink()
        honour_umask(staging)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if handle is not None:
            os.close(handle)


def _hold(lock: Path) -> int:
    """Open ``lock`` and hold an exclusive lock on it (a cleaner skips what it guards)."""
    handle = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    if fcntl is not None:
        with contextlib.suppress(OSError):  # no locks on this file system: by age, then
            fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def remove_abandoned_staging(out: Path, kind: str = "export") -> list[Path]:
    """Remove the staging folders that killed writes of ``out`` left beside it (not one
    being written: it holds its lock; where locks cannot be tested, one under an hour
    old stays)."""
    removed = []
    for entry in out.parent.glob(f".{out.name}.*.{kind}"):
        if not entry.is_dir() or entry.is_symlink():
            continue
        try:
            handle = os.open(entry / ".lock", os.O_RDONLY)
        except OSError:
            handle = None
        try:
            if handle is not None and fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being written
                except OSError:
                    if time.time() - entry.stat().st_mtime < _UNLOCKED_AGE:
                        continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            if handle is not None:
                os.close(handle)
    return removed


# -- locks --------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(lock: str | os.PathLike, holder: str = "another process") -> Iterator[bool]:
    """Hold an exclusive lock on the file ``lock`` (made if missing; it stays), waiting
    for ``holder`` to let go if it holds it (said once on stderr); yields False where
    there are no locks (Windows)."""
    if fcntl is None:
        yield False
        return
    with open(lock, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {holder}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


LOCK_NAME = ".writer.lock"


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
