"""The task kit: what a task plugin's data set code and presets share.

A task plugin builds its data once per set of options, reports progress,
samples rows, augments grids and states training recipes. This module gives
each of those one implementation, so a plugin states only what is its own:

- :func:`say`: one progress line on stderr.
- :func:`build_once`: a data folder built once, atomically, safely when two
  processes build it at once, checked on every reuse (a manifest of sizes and
  SHA-256 checksums) and rebuilt when it is half-written, corrupt or stale.
- :func:`subsample`: a deterministic sorted choice of rows from a file.
- The 8 dihedral transforms of the square with one numbering
  (:data:`DIHEDRAL_NAMES`, :func:`dihedral`, :func:`inverse_dihedral`,
  :func:`dihedral_permutation` and :func:`dihedral_flat` for flattened grids).
- :func:`paper_recipe` and :func:`cpu_recipe`: preset mappings from the
  paper's training recipe and the engine's CPU recipe, given what differs.
- :func:`task_data_version`: the version that keys a task's data cache.
- :class:`SourceOptions`: the options every per-split data source shares.
- :class:`Supply`: judges, from the counts alone, whether a generator's stream of
  draws can still give the distinct items asked for (:class:`Verdict`,
  :class:`Shortfall`), so that impossible options stop within seconds.

The paper is Jolicoeur-Martineau, "Less is More: Recursive Reasoning with Tiny
Networks", 2025, arXiv:2510.04871.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .config import positive
from .data import DataError, mix_seed, read_split
from .files import atomic_write_text, honour_umask, locked

__all__ = [
    "DIHEDRAL_NAMES",
    "INVERSE_DIHEDRAL",
    "PAPER_BATCH",
    "SourceOptions",
    "build_once",
    "cpu_recipe",
    "dihedral",
    "dihedral_flat",
    "dihedral_permutation",
    "inverse_dihedral",
    "paper_recipe",
    "paper_steps",
    "say",
    "subsample",
    "task_data_version",
]


# --------------------------------------------------------------------------- progress


def say(text: str) -> None:
    """Print one progress line to stderr, flushed (stdout stays for results)."""
    print(text, file=sys.stderr, flush=True)


def quiet_worker() -> None:
    """A data-building worker process's initializer (``ProcessPoolExecutor`` or
    ``multiprocessing.Pool``): Ctrl-C, which a terminal sends to the whole process group,
    is the main process's to handle, and SIGTERM (a pool's ``terminate``) ends the worker
    at once; a worker printing its own traceback would garble the main process's line."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[Any]:
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes for a data
    build: its workers leave interrupts to the main process, and an error or interrupt
    in the main process cancels what is queued instead of waiting for all of it."""
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, initializer=quiet_worker)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# --------------------------------------------------------------------------- build once

#: The file that marks a built folder complete: the build's summary plus ``manifest``.
SUMMARY = "dataset.json"
_BUILDING, _BROKEN = "building", "broken"
_HASH_CHUNK = 1 << 22


def build_once(
    out_dir: str | os.PathLike,
    build: Callable[[Path], Mapping[str, Any]],
    *,
    what: str,
    stale: Callable[[dict[str, Any]], str | None] | None = None,
) -> Path:
    """Build the data folder ``out_dir`` once, or reuse it; return ``out_dir``.

    ``build(tmp_dir)`` writes the data (splits with :func:`trm_core.write_split`,
    any other files) into ``tmp_dir``, a fresh empty folder beside ``out_dir``,
    and returns a JSON-able summary (a mapping, without the key ``manifest``).
    The kit then writes ``dataset.json``: the summary, ``seconds`` (the build's
    time, unless the summary has it) and ``manifest``, every file written with
    its size and SHA-256; and renames the folder to ``out_dir`` in one step. So
    ``out_dir`` is either absent or complete, even when a build is killed. Its
    folders and files get the modes the user's umask gives new ones (the
    temporary folder's own are private), and nothing writes into it once renamed.

    Reuse: when ``out_dir/dataset.json`` exists, every file of its manifest is
    there with its size and checksum, every split in it is one
    :func:`trm_core.read_split` accepts, and ``stale(summary)`` (if given)
    returns None, ``out_dir`` is returned at once. ``stale`` lets a task say why
    a complete folder must be rebuilt anyway (a file that was missing at build
    time has appeared since, say): it gets the summary ``build`` returned and
    returns a reason, or None to reuse.

    A folder that fails these checks (a build killed before ``dataset.json``, a
    missing, truncated or altered file, data from before manifests) is reported
    in one :func:`say` line naming the folder and the problem, removed (first
    moved aside, so a half-removed folder is never taken for data) and rebuilt.

    Two processes (or threads) building the same ``out_dir`` at once are safe:
    the build runs holding an exclusive lock on the file ``.<name>.lock`` beside
    ``out_dir`` (``fcntl.flock``); whoever gets the lock second checks again and
    reuses the first one's data. Where ``fcntl`` is missing (Windows) there is no
    lock: both may build, the first rename wins and the other's copy is dropped.
    Temporary folders left beside ``out_dir`` by a killed build
    (``.<name>.building-*``, ``.<name>.broken-*``) are removed while holding the
    lock. Nothing else outside ``out_dir`` is touched; the lock file stays.

    ``what`` names the data in progress lines ("the Sudoku data set").
    """
    out_dir = Path(out_dir)
    problem, summary = _check(out_dir)
    if problem is None and (reason := _stale(stale, summary)) is None:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = out_dir.parent / f".{out_dir.name}.lock"
    with locked(lock, f"another process building {out_dir}") as exclusive:
        _clean_leftovers(out_dir, everything=exclusive)
        problem, summary = _check(out_dir)
        reason = None if problem is not None else _stale(stale, summary)
        if problem is None and reason is None:
            return out_dir  # another process built it while this one waited
        if out_dir.exists() or os.path.lexists(out_dir):
            say(f"{what}: {out_dir}: {problem or reason}; rebuilding it")
            _remove(out_dir)
        return _build(out_dir, build, what)


def _stale(stale: Callable[[dict[str, Any]], str | None] | None, summary: Any) -> str | None:
    return None if stale is None else stale(summary)


def _build(out_dir: Path, build: Callable[[Path], Mapping[str, Any]], what: str) -> Path:
    started = time.monotonic()
    say(f"building {what} in {out_dir}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{_BUILDING}-", dir=out_dir.parent))
    try:
        summary = build(tmp)
        if not isinstance(summary, Mapping):
            raise TypeError(f"the build of {what} returned {type(summary).__name__}, not a dict")
        if "manifest" in summary:
            raise ValueError(f"the build of {what} returned a summary with the key 'manifest'")
        record = dict(summary)
        record.setdefault("seconds", round(time.monotonic() - started, 1))
        record["manifest"] = _manifest(tmp)
        atomic_write_text(tmp / SUMMARY, json.dumps(record, indent=2, default=str))
        honour_umask(tmp)  # mkdtemp's 0o700: the cache is the user's like any file
        try:
            os.replace(tmp, out_dir)
        except OSError:
            # Only without a lock: another process renamed its complete copy first.
            if _check(out_dir)[0] is not None:
                raise
            say(f"{what}: {out_dir} was built by another process meanwhile; using it")
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"  {what}: built in {record['seconds']}s")
    return out_dir


def _clean_leftovers(out_dir: Path, *, everything: bool) -> None:
    """Remove the temporary siblings of ``out_dir`` a killed build left behind.

    Holding the lock (``everything``), no build of ``out_dir`` can be running, so
    all of them go; without a lock, only those untouched for a day.
    """
    for kind in (_BUILDING, _BROKEN):
        for path in out_dir.parent.glob(f".{out_dir.name}.{kind}-*"):
            try:
                if everything or time.time() - path.stat().st_mtime > 86400:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            except FileNotFoundError:
                pass


def _remove(out_dir: Path) -> None:
    """Move ``out_dir`` aside in one step, then delete it."""
    if out_dir.is_symlink() or not out_dir.is_dir():
        out_dir.unlink()
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{_BROKEN}-", dir=out_dir.parent))
    os.replace(out_dir, aside / "data")
    shutil.rmtree(aside, ignore_errors=True)


def _manifest(root: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``root`` (but ``dataset.json``): its size and SHA-256."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if name != SUMMARY:
            out[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(out_dir: Path) -> tuple[str | None, dict[str, Any] | None]:
    """(None, summary) for a complete folder, else (what is wrong, None)."""
    if not out_dir.exists():
        return "not built", None
    try:
        record = json.loads((out_dir / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {SUMMARY} (a build that did not finish)", None
    except (OSError, ValueError, RecursionError) as error:
        return f"{SUMMARY} is unreadable ({error})", None
    manifest = record.pop("manifest", None) if isinstance(record, dict) else None
    if (
        not isinstance(manifest, dict)
        or not manifest
        or not all(isinstance(entry, dict) for entry in manifest.values())
    ):
        return f"{SUMMARY} has no manifest (written before manifests, or not by this kit)", None
    files = {name: out_dir / name for name in manifest}
    for name, path in files.items():
        if not path.is_file():
            return f"{name} is missing", None
        size = path.stat().st_size
        if size != manifest[name].get("bytes"):
            return f"{name} has {size} bytes, not {manifest[name].get('bytes')}", None
    for name, path in files.items():
        if _sha256(path) != manifest[name].get("sha256"):
            return f"{name} does not match its checksum", None
    splits = sorted({path.parent for name, path in files.items() if name.endswith(".npy")})
    for split in splits:
        if (split / "metadata.json").is_file() or (split / "inputs.npy").is_file():
            try:
                read_split(split)
            except (DataError, OSError, ValueError) as error:
                return f"the split {split.relative_to(out_dir)} is unreadable ({error})", None
    return None, record


# --------------------------------------------------------------------------- sampling


def subsample(size: int, count: int | None, seed: int, name: str) -> np.ndarray:
    """Sorted indices of ``count`` of ``size`` rows, drawn from (``seed``, ``name``).

    The same (size, count, seed, name) always draws the same rows, and another
    ``name`` (the split's name, say) draws independently. All rows
    (``arange(size)``) when ``count`` is None or at least ``size``.
    """
    if count is None or count >= size:
        return np.arange(size)
    if count < 0:
        raise ValueError(f"cannot sample {count} rows")
    rng = np.random.default_rng(mix_seed(seed, zlib.crc32(name.encode())))
    return np.sort(rng.choice(size, count, replace=False))


# --------------------------------------------------------------------------- dihedral group

#: The 8 dihedral transforms of the square, by id: the rotations counter-clockwise
#: (as ``np.rot90``), then the four reflections. The numbering of the paper's
#: reference code, stored in ARC data sets' augmentation tables.
DIHEDRAL_NAMES = (
    "identity", "rot90", "rot180", "rot270", "flip left-right", "flip up-down",
    "transpose", "anti-transpose",
)  # fmt: skip
#: The inverse of each transform: rot90 and rot270 undo each other, the rest undo themselves.
INVERSE_DIHEDRAL = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0-7, see :data:`DIHEDRAL_NAMES`) of a grid: its last two axes.

    Returns a view where numpy can (every transform is a transpose and/or a
    reversal); a 2-D ``grid`` is the common case, leading axes are carried along.
    """
    grid = np.asarray(grid)
    if k == 0:
        return grid
    swapped = np.swapaxes(grid, -1, -2)
    if k == 1:  # rot90 (counter-clockwise), as np.rot90
        return swapped[..., ::-1, :]
    if k == 2:
        return grid[..., ::-1, ::-1]
    if k == 3:
        return swapped[..., :, ::-1]
    if k == 4:
        return grid[..., :, ::-1]
    if k == 5:
        return grid[..., ::-1, :]
    if k == 6:
        return swapped
    if k == 7:
        return np.swapaxes(grid[..., ::-1, ::-1], -1, -2)
    raise ValueError(f"dihedral transform {k} is not 0-7")


def inverse_dihedral(k: int) -> int:
    """The transform that undoes transform ``k``."""
    if not 0 <= k < len(INVERSE_DIHEDRAL):
        raise ValueError(f"dihedral transform {k} is not 0-7")
    return INVERSE_DIHEDRAL[k]


_PERMUTATIONS: dict[tuple[int, int], np.ndarray] = {}


def dihedral_permutation(side: int, k: int) -> np.ndarray:
    """[side*side] gather indices of transform ``k`` on a flattened side x side grid:
    output cell i takes input cell ``dihedral_permutation(side, k)[i]`` (read-only)."""
    key = (side, k)
    if key not in _PERMUTATIONS:
        cells = np.arange(side * side).reshape(side, side)
        order = np.ascontiguousarray(dihedral(cells, k)).ravel()
        order.setflags(write=False)
        _PERMUTATIONS[key] = order
    return _PERMUTATIONS[key]


def dihedral_flat(tokens: np.ndarray, k: int, *, inverse: bool = False) -> np.ndarray:
    """Transform ``k`` (or its inverse) of flattened square grids: [..., S] -> [..., S],
    S = side * side."""
    tokens = np.asarray(tokens)
    size = tokens.shape[-1]
    side = math.isqrt(size)
    if side * side != size:
        raise ValueError(f"a sequence of {size} cells is not a square grid")
    return tokens[..., dihedral_permutation(side, inverse_dihedral(k) if inverse else k)]


# --------------------------------------------------------------------------- presets

#: The paper's global batch size.
PAPER_BATCH = 768

#: The paper's recipe (its section 4 and the reference code's settings): the
#: sections a task's paper preset shares. Tasks add the data, the training
#: length and what else differs.
_PAPER = {
    "model": {
        "hidden_size": 512,
        "expansion": 4,
        "num_layers": 2,
        "cycles": 3,
        "puzzle_emb_len": 16,
        "halt_max_steps": 16,
        "halt_exploration_prob": 0.1,
        "dtype": "auto",
    },
    "train": {
        "global_batch_size": PAPER_BATCH,
        "lr": 1e-4,
        "lr_warmup_steps": 2000,
        "lr_min_ratio": 1.0,
        "beta1": 0.9,
        "beta2": 0.95,
        "weight_decay": 1.0,
        "puzzle_emb_lr": 1e-4,
        "puzzle_emb_weight_decay": 1.0,
        "ema": True,
        "ema_rate": 0.999,
        "loss": "stablemax",
        "log_interval": 50,
    },
    "eval": {"batch_size": PAPER_BATCH, "images": 4},
}

#: The CPU recipe the task presets share: a small MLP-mixer model trained with a
#: larger learning rate for a few thousand steps (minutes on a 2-core CPU).
_CPU = {
    "model": {
        "mixer": "mlp",
        "hidden_size": 64,
        "expansion": 4,
        "num_layers": 2,
        "cycles": 1,
        "dtype": "auto",
    },
    "train": {
        "global_batch_size": 64,
        "steps": 1800,
        "lr": 3e-3,
        "lr_warmup_steps": 200,
        "lr_min_ratio": 0.1,
        "weight_decay": 0.1,
        "puzzle_emb_lr": 1e-2,
        "puzzle_emb_weight_decay": 0.1,
        "ema_rate": 0.99,  # a short run: average over the last ~100 steps
        "log_interval": 20,
    },
    "eval": {"images": 4},
}


def paper_steps(epochs: int, examples: int, batch: int = PAPER_BATCH) -> int:
    """Training steps of ``epochs`` passes over ``examples`` at ``batch`` a step (rounded up)."""
    return math.ceil(epochs * examples / batch)


def paper_recipe(**sections: Mapping[str, Any]) -> dict[str, Any]:
    """A preset: the paper's model, training and evaluation settings, updated by ``sections``.

    Each keyword is a preset section (``model``, ``data``, ``train``, ``eval``,
    ``by_mixer``...); a mapping given for a section the recipe has updates it
    key by key, any other section is taken as given. The recipe: hidden size
    512, 2 layers, expansion 4, T=3 cycles, 16 supervision steps with halting
    exploration 0.1, a 16-token puzzle embedding; global batch 768, lr and
    puzzle-embedding lr 1e-4, weight decay 1.0 on both, Adam betas (0.9, 0.95),
    2,000 warm-up steps then a constant rate, EMA 0.999, the stablemax loss.
    Tasks add the mixer, heads, think steps, data and training length. The
    result is a fresh copy: changing it changes no other preset.
    """
    return _recipe(_PAPER, sections)


def cpu_recipe(**sections: Mapping[str, Any]) -> dict[str, Any]:
    """A preset: the CPU recipe (see :func:`paper_recipe` for how ``sections`` apply).

    The recipe: MLP mixer, hidden size 64, 2 layers, expansion 4, one cycle;
    batch 64, 1,800 steps, lr 3e-3 with 200 warm-up steps decaying to 0.1 of
    it, weight decay 0.1, puzzle-embedding lr 1e-2, EMA 0.99.
    """
    return _recipe(_CPU, sections)


#: CGAR's supervision-step weight decay (arXiv:2511.08653), used by :func:`fast_recipe`.
FAST_SUPERVISION_DECAY = 0.7


def fast_recipe(preset: Mapping[str, Any]) -> dict[str, Any]:
    """A ``fast`` variant of a paper preset: the same recipe with CGAR's levers on
    (Qasim and Zhang, arXiv:2511.08653, 1.71x less training time to within 0.63 points of
    the paper's Sudoku-Extreme accuracy, as its authors measured on a GPU).

    - a depth curriculum (``train.curriculum``): the first 30% of the steps at about a
      third of the preset's think steps n and one cycle, up to 60% at two thirds of n and
      T-1 cycles, then the preset's own (the paper's Sudoku n=6, T=3 gives CGAR's (2, 1),
      (4, 2), (6, 3));
    - supervision-step weights decaying by 0.7 a step (``train.supervision_decay``).

    A fresh copy: changing it changes no other preset.
    """
    out = copy.deepcopy(dict(preset))
    model = out.get("model", {})
    n = model.get("think_steps", _PAPER["model"].get("think_steps", 6))
    cycles = model.get("cycles", _PAPER["model"]["cycles"])
    train = out.setdefault("train", {})
    train["curriculum"] = {
        "shallow": {"until": 0.3, "think_steps": max(1, round(n / 3)), "cycles": 1},
        "medium": {"until": 0.6, "think_steps": max(1, round(2 * n / 3)),
                   "cycles": max(1, cycles - 1)},
    }  # fmt: skip
    train["supervision_decay"] = FAST_SUPERVISION_DECAY
    return out


def _recipe(base: Mapping[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for name, value in sections.items():
        if isinstance(out.get(name), dict) and isinstance(value, Mapping):
            out[name].update(copy.deepcopy(dict(value)))
        else:
            out[name] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------- options


@attrs.define(kw_only=True)
class SourceOptions:
    """The options every per-split data source shares; a task subclasses it.

    ``count`` samples that many rows of a file (:func:`subsample`; None: every
    row) or is how many to generate (at least 1); ``path`` is a local file;
    ``split`` names a Hugging Face Hub dataset's file (default: the split's
    name). A subclass adds ``source`` (with its own list of sources), ``repo``
    (its default dataset) and its own options. Build it with
    :func:`trm_core.structure`, which checks the annotated types.
    """

    count: int | None = attrs.field(default=None, validator=attrs.validators.optional(positive))
    path: str | None = None
    split: str | None = None


# --------------------------------------------------------------------------- cache key


def task_data_version(task: Any) -> str:
    """The version that keys a task's data cache (``trm_core.run.data_dir_for``).

    The task class's ``data_version`` when it sets one (a string a plugin
    changes whenever its data builder would build different data from the same
    options), else the version of the distribution the task class comes from, so
    data built by an older release of the plugin is never reused silently; else
    ``"unknown"``.
    """
    cls = task if isinstance(task, type) else type(task)
    own = getattr(cls, "data_version", None)
    if own is not None:
        return str(own)
    top = cls.__module__.split(".")[0]
    names = sorted(set(_distributions().get(top, [])))
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions) or "unknown"


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> the distributions providing it (a scan of every installed
    distribution, about 0.3 s: once per process)."""
    return importlib.metadata.packages_distributions()


# -- distinct items from a generator, and when there are not enough --------------


#: A stream may draw this many items per distinct item wanted (at least MIN_DRAWS):
#: beyond, new ones are too rare to be worth the wait (a count of nearly all the
#: distinct items there are takes some 10 draws each).
DRAWS_PER_ITEM, MIN_DRAWS = 32, 1024


@attrs.frozen
class Verdict:
    """Why a stream of candidates cannot give the count asked for.

    ``kind``: ``none`` (no candidate was accepted at all), ``exhausted`` (no new
    distinct item for a long while: the supply is used up) or ``short`` (at the
    rate new items still come, the budget ends first).
    """

    kind: str
    wanted: int  # distinct items asked for
    found: int  # distinct items found
    drawn: int  # items drawn (accepted), repeats included
    cost: int  # what drawing them took (candidates, tries)
    budget: int  # the most cost the stream may take
    reach: int  # short: about how many distinct items the budget would give


class Supply:
    """Watches a deterministic stream of draws (in batches) for the signs that it cannot
    give ``wanted`` distinct items within ``budget`` (candidates, tries...) and
    ``DRAWS_PER_ITEM`` draws per item wanted (``MIN_DRAWS`` at least).

    After each batch, :meth:`record` the items drawn, how many were new and the
    cost; :meth:`verdict` is then None while the count is in reach. It judges on
    the counts alone, so the same stream stops at the same batch wherever it runs:

    - none: nothing drawn after ``empty`` cost;
    - exhausted: no new item in the last half of the draws, that half at least
      ``min_window`` draws and twice the items found;
    - short: the draws left (by the budget, at the acceptance seen, leaning high)
      are fewer than the items missing; or, from ``min_drawn`` draws, the new
      items of each doubling of the draws, extrapolated until the budget or the
      draws are spent, never reach the count. The last doubling's new items
      (plus a margin) grow or shrink from one doubling to the next as they did
      over the last three (the larger of two estimates, leaning high, at most
      twice): a supply running out gives fewer each time, one far from it
      (hardly a repeat) twice as many.

    Memory: two integers per batch.
    """

    def __init__(
        self, wanted: int, budget: int, empty: int, min_window: int, min_drawn: int
    ) -> None:
        self.wanted, self.budget, self.empty, self.min_window = wanted, budget, empty, min_window
        self.min_drawn = min_drawn
        self.drawn, self.found = array("q", [0]), array("q", [0])
        self.cost = 0

    def record(self, drawn: int, found: int, cost: int) -> None:
        """One batch: ``drawn`` items, ``found`` of them new, at ``cost``."""
        self.drawn.append(self.drawn[-1] + drawn)
        self.found.append(self.found[-1] + found)
        self.cost += cost

    def _found_at(self, x: float) -> float:
        i = bisect.bisect_right(self.drawn, x) - 1
        if i + 1 >= len(self.drawn):
            return float(self.found[-1])
        x0, x1, y0, y1 = self.drawn[i], self.drawn[i + 1], self.found[i], self.found[i + 1]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def verdict(self) -> Verdict | None:
        n, y, wanted = self.drawn[-1], self.found[-1], self.wanted
        if y >= wanted:
            return None

        def say(kind: str, reach: float = 0) -> Verdict:
            return Verdict(kind, wanted, y, n, self.cost, self.budget, int(reach))

        if n == 0:
            return say("none") if self.cost >= self.empty else None
        if y == self._found_at(n / 2) and n / 2 >= max(self.min_window, 2 * y):
            return say("exhausted")
        limit = self.budget * min(1.0, (n + 2 * math.sqrt(n) + 2) / self.cost)  # draws
        limit = min(limit, max(MIN_DRAWS, DRAWS_PER_ITEM * wanted))
        if y + max(0.0, limit - n) < wanted:
            return say("short", y + max(0.0, limit - n))  # even if every draw were new
        if n < self.min_drawn:
            return None
        half, quarter, eighth = (self._found_at(n / part) for part in (2, 4, 8))
        last, before, earlier = y - half, half - quarter, quarter - eighth
        growth = max(
            (last + 1) / max(before, 1), math.sqrt((last + before + 1) / max(before + earlier, 1))
        )
        growth = 2.0 if last >= 0.9 * n / 2 else min(2.0, growth)  # hardly a repeat: far off
        new = last + math.sqrt(last) + 1
        reach, x = float(y), float(n)
        while x < limit and reach < wanted:
            new *= growth
            reach += new * min(1.0, math.log2(limit / x))
            x *= 2
        return say("short", reach) if reach < wanted else None


class Shortfall(ValueError):
    """The generator stopped: its options cannot give the count asked for."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"{verdict.kind}: {verdict.found} of {verdict.wanted} found")
        self.verdict = verdict
