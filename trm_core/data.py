"""The on-disk puzzle format and the sampler that feeds the trainer.

A split is a folder holding ``inputs.npy`` [N, S], ``labels.npy`` [N, S]
(integer tokens, the task's ignore label where nothing is scored),
``puzzle_identifiers.npy`` [N] and ``metadata.json``. Arrays are memory-mapped.
Augmentations are never stored: the sampler draws them on the fly from a
deterministic (seed, example, augmentation index), so a run reproduces exactly
and resumes from its position.
"""

from __future__ import annotations

import csv
import json
import os
import reprlib
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .errors import DataError
from .files import honour_umask, replace_folder
from .interfaces import Split, Task
from .losses import IGNORE_LABEL

ARRAYS = ("inputs", "labels", "puzzle_identifiers")


def write_split(
    path: str | os.PathLike,
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_identifiers: np.ndarray | None = None,
    **metadata: Any,
) -> Path:
    """Write a split folder atomically (built beside ``path``, then renamed into place)."""
    split = make_split(path, inputs, labels, puzzle_identifiers, **metadata)
    path, inputs, labels = split.path, split.inputs, split.labels
    puzzle_identifiers, meta = split.puzzle_identifiers, split.metadata
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        np.save(staging / "inputs.npy", inputs.astype(_token_dtype(inputs)))
        np.save(staging / "labels.npy", labels.astype(_token_dtype(labels)))
        np.save(staging / "puzzle_identifiers.npy", puzzle_identifiers.astype(np.int32))
        (staging / "metadata.json").write_text(json.dumps(meta, indent=2))
        honour_umask(staging)
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def make_split(
    path: str | os.PathLike,
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_identifiers: np.ndarray | None = None,
    **metadata: Any,
) -> Split:
    """A split in memory, checked as :func:`write_split` checks one: what
    ``Task.read_data`` returns (``path`` names where it came from, e.g. the file)."""
    path = Path(path)
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    if inputs.ndim != 2 or inputs.shape != labels.shape:
        raise DataError(
            f"{path}: inputs {inputs.shape} and labels {labels.shape} must be equal [N, S]"
        )
    if puzzle_identifiers is None:
        puzzle_identifiers = np.ones(len(inputs), dtype=np.int32)  # one shared id; 0 is blank
    puzzle_identifiers = np.asarray(puzzle_identifiers)
    if puzzle_identifiers.shape != (len(inputs),):
        raise DataError(f"{path}: puzzle_identifiers must be [N] = [{len(inputs)}]")
    meta = {
        "num_examples": len(inputs),
        "seq_len": int(inputs.shape[1]),
        "num_puzzle_identifiers": int(puzzle_identifiers.max(initial=0)) + 1,
        **metadata,
    }
    return Split(path, inputs, labels, puzzle_identifiers, meta)


def _token_dtype(tokens: np.ndarray) -> type:
    """The smallest integer type holding every token (uint8 for most tasks)."""
    low, high = int(tokens.min(initial=0)), int(tokens.max(initial=0))
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return np.int64


def read_split(path: str | os.PathLike, task: Task | None = None) -> Split:
    """Read (memory-map) a split folder, checking it against ``task`` if given.

    A missing, truncated or foreign file fails with a DataError naming it. The
    files are read again when :func:`write_split` replaced the folder meanwhile,
    so they always come from one version of it.
    """
    path = Path(path)
    for attempt in range(_READS):
        before = _identity(path)
        try:
            split = _load_split(path)
        except DataError:
            if _identity(path) == before or attempt == _READS - 1:
                raise
            continue  # replaced while being read: its files went away
        if _identity(path) == before:
            break
    else:
        raise DataError(f"{path}: replaced {_READS} times while being read; try again")
    if task is not None:
        if split.inputs.shape[1] != task.seq_len:
            raise DataError(
                f"{path}: sequences of {split.inputs.shape[1]} tokens, task expects {task.seq_len}"
            )
        top = int(max(split.inputs.max(initial=0), split.labels.max(initial=0)))
        if top >= task.vocab_size:
            raise DataError(
                f"{path}: token {top} outside the task's vocabulary of {task.vocab_size}"
            )
    return split


def extra_splits(data_dir: Path, task: Task | None = None) -> dict[str, Split]:
    """The extra held-out sets a task may build beside its test split
    (``data_dir/extra/<name>``), by name; scored once, at the end of a run."""
    extra = Path(data_dir) / "extra"
    return {
        path.name: read_split(path, task)
        for path in (sorted(extra.iterdir()) if extra.is_dir() else [])
        if path.is_dir() and not path.name.startswith(".")
    }


@attrs.frozen
class RunData:
    """A run's data, read once from the folder the task built: the training and test
    splits and the extra held-out sets (scored at the end)."""

    folder: Path
    train: Split
    test: Split
    extra: dict[str, Split]

    @classmethod
    def read(cls, folder: str | os.PathLike, task: Task | None = None) -> RunData:
        folder = Path(folder)
        return cls(
            folder=folder,
            train=read_split(folder / "train", task),
            test=read_split(folder / "test", task),
            extra=extra_splits(folder, task),
        )

    @property
    def num_puzzle_identifiers(self) -> int:
        """The puzzle-embedding rows the training and test splits need."""
        return max(s.metadata["num_puzzle_identifiers"] for s in (self.train, self.test))


_READS = 5  # tries of read_split on a folder that write_split keeps replacing


def _load_split(path: Path) -> Split:
    missing = [f"{name}.npy" for name in ARRAYS if not (path / f"{name}.npy").is_file()]
    if not (path / "metadata.json").is_file():
        missing.append("metadata.json")
    if missing:
        raise DataError(f"{path}: not a trm data split (missing {', '.join(missing)})")
    arrays = {name: _load_array(path / f"{name}.npy") for name in ARRAYS}
    metadata = _load_metadata(path / "metadata.json")
    split = Split(path=path, metadata=metadata, **arrays)
    if split.inputs.shape != split.labels.shape or split.inputs.ndim != 2:
        raise DataError(f"{path}: inputs {split.inputs.shape} != labels {split.labels.shape}")
    if split.puzzle_identifiers.shape != (len(split.inputs),):
        raise DataError(
            f"{path / 'puzzle_identifiers.npy'}: shape {split.puzzle_identifiers.shape}, "
            f"expected [{len(split.inputs)}]"
        )
    for key in ("num_examples", "seq_len", "num_puzzle_identifiers"):
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(f"{path / 'metadata.json'}: {key} is {value!r}, not a count")
    return split


def _identity(path: Path) -> tuple[int, int, int] | None:
    """The folder's (device, inode, change time): another once :func:`write_split`
    replaced it (the time, should a new folder reuse the inode)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _load_array(path: Path) -> np.ndarray:
    """A memory-mapped integer array; DataError naming ``path`` for anything else."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable numpy array ({error})") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: holds {getattr(array, 'dtype', type(array))}, not integers")
    return array


def _load_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # JSON and UTF-8 errors are ValueErrors
        raise DataError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(metadata).__name__}")
    return metadata


#: The longest line :func:`csv_rows` reads: a longer one is not a CSV of puzzles.
MAX_LINE = 1 << 24


def input_file(path: str | os.PathLike, error: type[DataError] = DataError) -> Path:
    """``path`` as a Path when it can be read as a file: a regular file, or a pipe or
    character device (``<(command)``, ``/dev/stdin``, ``/dev/null``, read as their
    stream); else ``error`` saying it is empty, missing, a folder or another kind of
    file."""
    if os.fspath(path) == "":
        raise error("an empty file name")
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: a folder, not a file")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        kind = (
            "a socket"
            if stat.S_ISSOCK(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "not a file"
        )
        raise error(f"{path}: {kind}, not a file to read")
    return path


def read_text_file(path: str | os.PathLike, error: type[DataError] = DataError) -> str:
    """The text of the UTF-8 file ``path`` (a byte-order mark dropped).

    A missing or unreadable file, a folder, bytes that are not UTF-8 (another
    encoding) or a NUL byte (a binary file) raise ``error`` naming the file, and
    the line of the first bad byte.
    """
    path = input_file(path, error)
    try:
        data = path.read_bytes()
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure})") from None
    return _decoded(data, path, 1, error)


def decode_text(data: bytes, source: str | os.PathLike) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped), or a DataError naming
    ``source`` and the line of a NUL byte or of bytes that are not UTF-8."""
    return _decoded(data, Path(source), 1, DataError)


def _decoded(data: bytes, path: Path, line: int, error: type[DataError]) -> str:
    """``data`` (the text from ``line`` on) as UTF-8, or ``error`` naming the line of a
    NUL byte or of bytes that are not UTF-8."""
    nul = data.find(b"\0")
    try:
        text = data.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as failure:
        where = failure.start if nul < 0 else min(nul, failure.start)
    else:
        if nul < 0:
            return text
        where = nul
    line += data.count(b"\n", 0, where)
    if where == nul:
        raise error(f"{path}, line {line}: a NUL byte: a binary file, not text")
    raise error(
        f"{path}, line {line}: not UTF-8 text (byte 0x{data[where]:02x}): "
        "a binary file, or another encoding?"
    )


def csv_rows(
    path: str | os.PathLike, header: Sequence[str], error: type[DataError] = DataError
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-empty row of a CSV file after its header
    (its first non-empty row).

    The file is UTF-8 (a byte-order mark is dropped). A missing file, a folder,
    an empty file, a first row that is not ``header``, bytes that are not UTF-8
    or a NUL byte (a binary file), a row the ``csv`` module refuses (a field
    over its size limit, say) or a row with another number of fields raises
    ``error`` naming the file and the line.
    """
    path = input_file(path, error)
    try:
        handle = path.open("rb")
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure})") from None
    with handle:
        reader = csv.reader(_text_lines(handle, path, error))
        try:
            first = next((row for row in reader if row), None)  # blank lines before it aside
            if first is None:
                raise error(f"{path}: an empty file (expected the header {','.join(header)})")
            if [name.strip() for name in first] != list(header):
                raise error(
                    f"{path}, line {reader.line_num}: expected the header {','.join(header)}, "
                    f"got {reprlib.repr(first)}"
                )
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise error(
                        f"{path}, line {reader.line_num}: expected {len(header)} fields, "
                        f"got {len(row)}"
                    )
                yield reader.line_num, row
        except csv.Error as failure:
            raise error(f"{path}, line {reader.line_num}: {failure}") from None


def _text_lines(handle: Any, path: Path, error: type[DataError]) -> Iterator[str]:
    """The lines of a binary file, each decoded as UTF-8 (a bad byte names its line)."""
    number = 0
    while line := handle.readline(MAX_LINE):
        number += 1
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise error(f"{path}, line {number}: longer than {MAX_LINE:,} bytes; not a CSV file?")
        yield _decoded(line, path, number, error)


def hub_file(repo: str, filename: str, distribution: str) -> Path:
    """Download ``filename`` of the Hugging Face Hub dataset ``repo`` (cached by the Hub).

    Needs ``huggingface_hub`` (the ``hub`` extra of ``distribution``, the task's
    package) and the network; either missing fails with a DataError saying what
    to install, or how to use a local copy instead.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            f"reading {repo} from the Hugging Face Hub needs huggingface_hub: "
            f"pip install '{distribution}[hub]', or download {filename} and set "
            "source: csv with path: FILE (or use source: generate, which works offline)"
        ) from None
    try:
        return Path(hf_hub_download(repo, filename, repo_type="dataset"))
    except Exception as error:  # network, auth or a missing file: say which and what to do
        raise DataError(
            f"cannot download {filename} of {repo} from the Hub ({type(error).__name__}: "
            f"{error}); download it elsewhere and set source: csv with path: FILE"
        ) from error


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SplitMix64 steps), stable across runs and machines."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & (2**64 - 1)
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & (2**64 - 1)
    return state >> 1


def collate(
    inputs: np.ndarray, labels: np.ndarray, puzzle_identifiers: np.ndarray, ignore_label_id: int
) -> dict[str, torch.Tensor]:
    """Numpy rows -> the model's batch of int64 CPU tensors; labels' ignore id -> IGNORE_LABEL."""
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    labels[labels == ignore_label_id] = IGNORE_LABEL
    return {
        "inputs": torch.from_numpy(np.asarray(inputs, dtype=np.int64)),
        "labels": labels,
        "puzzle_identifiers": torch.from_numpy(np.asarray(puzzle_identifiers, dtype=np.int64)),
    }


def to_batch(
    inputs: np.ndarray,
    labels: np.ndarray,
    puzzle_identifiers: np.ndarray,
    ignore_label_id: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """:func:`collate` then copy to ``device``."""
    batch = collate(inputs, labels, puzzle_identifiers, ignore_label_id)
    return {key: value.to(device) for key, value in batch.items()}


class TrainSampler:
    """Endless, resumable, rank-sharded batches of (augmented) training examples.

    An epoch visits every example once per augmentation index 0..augmentations
    (0 = the original) in an order shuffled from (seed, epoch); the task's
    ``training_example`` makes each row. A split whose metadata says
    ``variants`` (its task fixes how many each example has) needs
    ``augmentations == variants - 1``. Each global
    batch of ``global_batch_size`` is cut into equal per-rank slices.
    """

    def __init__(
        self,
        split: Split,
        task: Task,
        global_batch_size: int,
        augmentations: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if global_batch_size % world_size:
            raise DataError(
                f"train.global_batch_size ({global_batch_size}) must divide evenly over "
                f"{world_size} processes"
            )
        if len(split) == 0:
            raise DataError(f"{split.path}: no training examples")
        variants = split.metadata.get("variants")
        if variants is not None and augmentations != variants - 1:
            raise DataError(
                f"{split.path}: its examples come in {variants} variants (the task's data "
                f"options fix them), so data.augmentations must be {variants - 1}, "
                f"not {augmentations}"
            )
        self.split, self.task = split, task
        self.global_batch_size, self.local_batch_size = (
            global_batch_size,
            global_batch_size // world_size,
        )
        self.augmentations, self.seed, self.rank = augmentations, seed, rank
        self.epoch_size = len(split) * (augmentations + 1)
        self.epoch, self.offset = 0, 0  # the position: resume restores these
        self._cached: tuple[int, np.ndarray] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])

    def _order(self, epoch: int) -> np.ndarray:
        """The shuffled visiting order of one epoch (computed once per epoch)."""
        if self._cached is None or self._cached[0] != epoch:
            rng = np.random.default_rng(mix_seed(self.seed, epoch))
            self._cached = (epoch, rng.permutation(self.epoch_size))
        return self._cached[1]

    def _global_indices(self) -> np.ndarray:
        """The next global batch of virtual indices, crossing epochs as needed."""
        taken: list[np.ndarray] = []
        need = self.global_batch_size
        while need:
            order = self._order(self.epoch)
            chunk = order[self.offset : self.offset + need]
            taken.append(chunk)
            need -= len(chunk)
            self.offset += len(chunk)
            if self.offset >= self.epoch_size:
                self.epoch, self.offset = self.epoch + 1, 0
        return np.concatenate(taken)

    def next_batch(self, device: torch.device) -> dict[str, torch.Tensor]:
        """This rank's slice of the next global batch, on ``device``."""
        return {key: value.to(device) for key, value in self.next_cpu_batch().items()}

    def next_cpu_batch(self) -> dict[str, torch.Tensor]:
        """This rank's slice of the next global batch, as CPU tensors."""
        virtual = self._global_indices()
        local = virtual[self.rank * self.local_batch_size : (self.rank + 1) * self.local_batch_size]
        count = len(self.split)
        rows = [
            self.task.training_example(
                self.split, int(example), int(variant), mix_seed(self.seed, example, variant)
            )
            for example, variant in zip(local % count, local // count, strict=True)
        ]
        inputs, labels, identifiers = zip(*rows, strict=True)
        return collate(
            np.stack(inputs), np.stack(labels), np.array(identifiers), self.task.ignore_label_id
        )


class BatchFeed:
    """The trainer's batches: a :class:`TrainSampler`'s, in its order, on ``device``.

    With ``background`` the next batch is made on a worker thread while the current
    step runs (the task's ``training_example`` calls, collation and, on CUDA, a copy
    into pinned memory), and handed over with a non-blocking copy, so neither the
    sampler's work nor the host-to-device copy stalls the step. The batches are the
    same either way. :meth:`state_dict` is the sampler's position after the batches
    handed out so far (not the one made ahead), so a checkpoint resumes exactly.
    """

    def __init__(self, sampler: TrainSampler, device: torch.device, background: bool) -> None:
        self.sampler, self.device, self.background = sampler, device, background
        self.pin = background and device.type == "cuda"
        self._state = sampler.state_dict()
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: Future | None = None

    def _make(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        batch = self.sampler.next_cpu_batch()
        if self.pin:
            batch = {key: value.pin_memory() for key, value in batch.items()}
        return batch, self.sampler.state_dict()

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next batch on the device (each rank its slice of the global batch)."""
        if not self.background:
            batch, self._state = self._make()
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="trm-batches")
            if self._ahead is None:
                self._ahead = self._pool.submit(self._make)
            batch, self._state = self._ahead.result()  # a sampler error is raised here
            self._ahead = self._pool.submit(self._make)
        return {key: value.to(self.device, non_blocking=self.pin) for key, value in batch.items()}

    def state_dict(self) -> dict[str, int]:
        return dict(self._state)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._drop_ahead()
        self.sampler.load_state_dict(state)
        self._state = self.sampler.state_dict()

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            if not self._ahead.cancel():  # already running: wait for it, its result unused
                self._ahead.exception()
            self._ahead = None

    def close(self) -> None:
        """Stop the worker thread (the sampler stays where the handed-out batches left it)."""
        self._drop_ahead()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.sampler.load_state_dict(self._state)


def eval_batches(
    split: Split,
    task: Task,
    batch_size: int,
    device: torch.device,
    limit: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """(example indices, batch) over a prefix of ``split``, strided by rank; no augmentation."""
    total = len(split) if limit is None else min(limit, len(split))
    indices = np.arange(rank, total, world_size)
    for start in range(0, len(indices), batch_size):
        rows = indices[start : start + batch_size]
        yield (
            rows,
            to_batch(
                split.inputs[rows],
                split.labels[rows],
                split.puzzle_identifiers[rows],
                task.ignore_label_id,
                device,
            ),
        )
