"""Verified checkpoints and runs that lose nothing.

- A flipped bit anywhere in a checkpoint is refused with the file named (the payload's
  SHA-256 is checked on reading; ``torch.load`` checks no CRC), or loads exactly what was
  written; older files without a checksum still load.
- An evaluation is published (``metrics.json``, TensorBoard) only after its checkpoint
  is on disk; a full disk or memory running out stops a run with one line saying what
  failed and what was kept, the evaluation just made printed first.
- A resumed run logs no step twice in TensorBoard.
- What killed writes leave (``.NAME.XXXXXXXX.tmp``) is removed at the next start; one
  still being written is not.
- Written files honour the umask; a task's outputs that cannot be written cost a
  warning, not the metrics.

Runs are the tiny reverse task of ``tests/tiny_task.py`` for a few steps.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import torch

import trm_core
import trm_core.checkpoint
import trm_core.files
import trm_core.runlog
import trm_core.trainer
from trm_core import CheckpointError, build_model, load_checkpoint, save_checkpoint
from trm_core.checkpoint import payload_digest, read_checkpoint
from trm_core.cli import eval_main, run_main
from trm_core.files import TEMPORARY, atomic_write_text, remove_stale_temporaries
from trm_core.registry import use_registry
from trm_core.trainer import Trainer

from .. import tiny_task

TASK = ["--task", "reverse", "--device", "cpu"]
#: Small batches: each run step and evaluation takes milliseconds.
SMALL = ["train.global_batch_size=8", "eval.batch_size=16", "eval.max_examples=16"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of the tiny task trained for 4 steps (checkpoint at 2 and 4), and the data
    cache; the task stays registered and the cache in use for the module's tests."""
    folder = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as patch, use_registry(tiny_task.registry()):
        patch.setenv("TRM_DATA_DIR", str(folder / "data"))
        argv = _runs(folder, "train.steps=4", "eval.interval_steps=2")
        assert run_main(argv) == 0
        (run,) = (folder / "runs").iterdir()
        yield run


@pytest.fixture
def run_copy(trained, tmp_path):
    """A fresh copy of the trained run folder."""
    return Path(shutil.copytree(trained, tmp_path / trained.name))


def _runs(tmp_path: Path, *sets: str) -> list[str]:
    """trm-run's argv for the tiny task into ``tmp_path/runs``, with ``--set``s."""
    argv = [*TASK, "--out", str(tmp_path / "runs")]
    for assignment in [*SMALL, *sets]:
        argv += ["--set", assignment]
    return argv


def _only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


# -- checksums ----------------------------------------------------------------------------


def _data_regions(path: Path) -> list[tuple[str, int, int]]:
    """(entry, first byte, size) of every tensor storage (``*/data/N``) in the zip."""
    regions = []
    with zipfile.ZipFile(path) as archive, open(path, "rb") as file:
        for info in archive.infolist():
            if "/data/" not in info.filename:
                continue
            assert info.compress_type == zipfile.ZIP_STORED
            file.seek(info.header_offset)
            header = file.read(30)
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            regions.append((info.filename, start, info.file_size))
    return regions


def _flip(path: Path, offset: int) -> None:
    """Flip the lowest bit of one byte (twice: as it was)."""
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ 1]))


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
        )
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def test_a_flipped_bit_in_any_tensor_of_a_run_checkpoint_names_the_file(run_copy):
    path = run_copy / "checkpoints" / "last.pt"
    regions = [region for region in _data_regions(path) if region[2]]
    payload = read_checkpoint(path)
    assert len(regions) >= len(payload["model"]) + len(payload["ema"])  # weights, EMA, Adam...
    for _name, start, size in regions:
        offset = start + (start * 7919) % size  # somewhere in each
        _flip(path, offset)
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        assert str(info.value).startswith(f"{path}: checksum mismatch: the file is damaged")
        _flip(path, offset)
    assert _same(read_checkpoint(path), payload)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch on a damaged pickle's protocol
def test_no_flipped_bit_or_cut_loads_silently(tmp_path, tiny_config):
    """Every 4th byte outside the tensors' data (zip headers, pickle, directory) and every
    499th inside: each flip is refused naming the file, or changes nothing loaded."""
    config = {**tiny_config, "hidden_size": 8, "num_layers": 1, "expansion": 1.0}
    config |= {"mixer": "mlp", "options": {"grid": {"positions": "none"}}}
    path = save_checkpoint(tmp_path / "model.pt", build_model(config, device="cpu"), step=3)
    original = read_checkpoint(path)
    data = set()
    for _, start, size in _data_regions(path):
        data.update(range(start, start + size))
    size = path.stat().st_size
    offsets = [o for o in range(size) if o not in data][::4] + sorted(data)[::499]
    refused = 0
    for offset in offsets:
        _flip(path, offset)
        try:
            loaded = read_checkpoint(path)
        except CheckpointError as error:
            assert str(error).startswith(str(path)), (offset, str(error))
            refused += 1
        else:
            assert _same(loaded, original), f"byte {offset} changed what loads"
        _flip(path, offset)
    assert refused > len(offsets) // 4
    whole = path.read_bytes()
    for length in (0, 10, size // 3, size // 2, size - 30, size - 1):
        path.write_bytes(whole[:length])
        with pytest.raises(CheckpointError, match=f"^{path}: "):
            read_checkpoint(path)


def test_the_checksum_covers_dtypes_shapes_and_structure():
    zeros = torch.zeros(4, dtype=torch.int32)
    variants = [
        {"a": zeros},
        {"a": zeros.view(torch.float32)},  # same bytes, another dtype
        {"a": zeros.view(2, 2)},  # same bytes, another shape
        {"a": torch.zeros(2, dtype=torch.int64)},
        {"a": [zeros]},
        {"a": (zeros,)},
        {"b": zeros},
        {"a": zeros, "step": 1},
        {"a": zeros, "step": 1.0},
        {"a": zeros, "step": True},
        {"a": zeros, "step": "1"},
    ]
    digests = [payload_digest(variant) for variant in variants]
    assert len(set(digests)) == len(variants)
    assert payload_digest({"a": zeros.clone()}) == digests[0]
    assert payload_digest({"a": torch.zeros(8, dtype=torch.int32)[::2]}) == digests[0]


def test_checkpoints_without_a_checksum(tmp_path, tiny_config):
    """Files written before checksums (format version 1) load; a version 2 file whose
    checksum is gone is damaged."""
    model = build_model(tiny_config, device="cpu")
    path = save_checkpoint(tmp_path / "new.pt", model)
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 2 and payload["checksum"].startswith("sha256:")
    del payload["checksum"]
    torch.save(payload, tmp_path / "stripped.pt")
    with pytest.raises(CheckpointError, match="stripped.pt: no checksum recorded"):
        load_checkpoint(tmp_path / "stripped.pt")
    payload["format_version"] = 1
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_a_damaged_run_is_refused_by_resume_eval_and_load_run(run_copy, refused):
    path = run_copy / "checkpoints" / "last.pt"
    _, start, size = max(_data_regions(path), key=lambda region: region[2])
    _flip(path, start + size // 3)
    fragment = f"{path}: checksum mismatch: the file is damaged"
    refused(run_main, ["--resume", run_copy, "--device", "cpu"], fragment)
    refused(eval_main, ["--run", run_copy], fragment)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        trm_core.load_run(run_copy)


# -- a full disk, memory run out ---------------------------------------------------------


def _full_disk_at(monkeypatch, call: int) -> None:
    """The ``call``-th checkpoint (1-based) finds the disk full half-way through writing."""
    real, calls = trm_core.checkpoint.atomic_save, []

    def atomic_save(obj, path):
        calls.append(path)
        if len(calls) != call:
            return real(obj, path)

        def write(file):
            file.write(b"x" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return trm_core.files._atomic_write(path, write)

    monkeypatch.setattr(trm_core.checkpoint, "atomic_save", atomic_save)


def _stdout_kept(main, capsys, out: list[str]):
    """``main`` whose stdout is kept in ``out`` (``refused`` reads stderr only)."""

    def call(argv):
        try:
            return main(argv)
        finally:
            printed, err = capsys.readouterr()
            out.append(printed)
            print(err, end="", file=sys.stderr)

    return call


def test_a_full_disk_stops_the_run_with_the_last_checkpoint_and_metrics_agreeing(
    trained, tmp_path, monkeypatch, capsys, refused
):
    _full_disk_at(monkeypatch, call=2)
    out: list[str] = []
    argv = _runs(tmp_path, "train.steps=12", "eval.interval_steps=4")
    line = refused(_stdout_kept(run_main, capsys, out), argv, "checkpoint of step 8")
    run = _only_run(tmp_path / "runs")
    checkpoint = run / "checkpoints" / "last.pt"
    assert f"the checkpoint of step 8: no space left on device ({checkpoint})." in line
    assert f"The last good checkpoint is kept at {checkpoint} (step 4)." in line
    # The evaluation no file holds was printed, every metric of it.
    assert "eval at step 8: token_accuracy" in out[0] and "valid_digits" in out[0]
    # metrics.json, the checkpoint and TensorBoard agree: step 4.
    assert [r["step"] for r in json.loads((run / "metrics.json").read_text())] == [4]
    assert [r["step"] for r in read_checkpoint(checkpoint)["history"]] == [4]
    assert read_checkpoint(checkpoint)["step"] == 4
    assert [e.step for e in _events(run).Scalars("eval/token_accuracy")] == [4]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name != "last.pt"]


def test_a_full_disk_at_the_first_checkpoint_says_none_was_written(
    trained, tmp_path, monkeypatch, refused
):
    _full_disk_at(monkeypatch, call=1)
    argv = _runs(tmp_path, "train.steps=4", "eval.interval_steps=2")
    fragments = ["checkpoint of step 2: no space left on device", "No checkpoint was written yet."]
    refused(run_main, argv, *fragments)
    run = _only_run(tmp_path / "runs")
    assert not (run / "metrics.json").exists()
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())


def test_metrics_json_that_cannot_be_written_stops_the_run(trained, tmp_path, monkeypatch, refused):
    real = trm_core.runlog.atomic_write_text

    def atomic_write_text(path, text):
        if Path(path).name == "metrics.json":
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(path))
        return real(path, text)

    monkeypatch.setattr(trm_core.runlog, "atomic_write_text", atomic_write_text)
    argv = _runs(tmp_path, "train.steps=4", "eval.interval_steps=2")
    line = refused(run_main, argv, "could not write metrics.json: disk quota exceeded")
    run = _only_run(tmp_path / "runs")
    assert f"kept at {run / 'checkpoints' / 'last.pt'} (step 2)" in line


def _fail_call(monkeypatch, owner, name: str, call: int, error: BaseException) -> None:
    real, calls = getattr(owner, name), []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


OOM_CASES = [
    # (what fails, its call that fails, the error, what the one line says)
    ("micro_step", 7, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
     "out of memory while training step 7 with train.global_batch_size=8 (lower it)"),
    ("micro_step", 7, RuntimeError("DefaultCPUAllocator: can't allocate memory: 9 bytes"),
     "out of memory while training step 7 with train.global_batch_size=8"),
    ("evaluate_splits", 2, MemoryError(),
     "out of memory while evaluating at step 8 with eval.batch_size=16 (lower it)"),
]  # fmt: skip


@pytest.mark.parametrize("name, call, error, fragment", OOM_CASES)
def test_memory_running_out_names_the_batch_size_and_the_checkpoint_kept(
    trained, tmp_path, monkeypatch, refused, name, call, error, fragment
):
    _fail_call(monkeypatch, trm_core.trainer, name, call, error)
    argv = _runs(tmp_path, "train.steps=12", "eval.interval_steps=4")
    line = refused(run_main, argv, fragment)
    run = _only_run(tmp_path / "runs")
    kept = f"The last good checkpoint is kept at {run / 'checkpoints' / 'last.pt'} (step 4)."
    assert kept in line
    assert [r["step"] for r in json.loads((run / "metrics.json").read_text())] == [4]


def test_other_runtime_errors_are_left_as_they_are(trained, tmp_path, monkeypatch):
    _fail_call(monkeypatch, trm_core.trainer, "micro_step", 2, RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        run_main(_runs(tmp_path, "train.steps=4"))


# -- TensorBoard on resume ---------------------------------------------------------------


class Killed(BaseException):
    """The process dying (not an error any handler catches)."""


def test_a_resumed_run_logs_no_step_twice(trained, tmp_path, monkeypatch):
    """Killed after logging step 12 with its last checkpoint at step 8; the resumed run's
    points from step 9 on replace the killed run's."""
    real, saves = Trainer.save, []

    def save(self):
        saves.append(self.step)
        if len(saves) == 2:  # the kill, after everything up to step 12 reached the file
            [logger.flush() for logger in self.log.loggers]
            raise Killed
        return real(self)

    monkeypatch.setattr(Trainer, "save", save)
    argv = _runs(tmp_path, "train.steps=12", "eval.interval_steps=8", "train.log_interval=2")
    with pytest.raises(Killed):
        run_main(argv)
    monkeypatch.setattr(Trainer, "save", real)
    run = _only_run(tmp_path / "runs")
    before = _events(run)
    assert [e.step for e in before.Scalars("train/loss")] == [2, 4, 6, 8, 10, 12]
    # Event files are read in name order, which holds the second they were opened in.
    (old,) = run.glob("events.out.tfevents.*")
    while int(time.time()) <= int(old.name.split(".")[3]):
        time.sleep(0.05)

    assert run_main(["--resume", str(run), "--device", "cpu"]) == 0
    events = _events(run)
    for tag in events.Tags()["scalars"]:
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    for tag in events.Tags()["images"]:
        steps = [e.step for e in events.Images(tag)]
        assert steps == sorted(set(steps)), (tag, steps)
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6, 8, 10, 12]
    assert [e.step for e in events.Scalars("eval/token_accuracy")] == [8, 12]
    assert [r["step"] for r in json.loads((run / "metrics.json").read_text())] == [8, 12]


def test_resume_rewrites_metrics_json_from_the_checkpoint(run_copy, monkeypatch):
    """Killed between its checkpoint and metrics.json: the resumed run's metrics.json
    agrees with its checkpoint from the start; other programs' records stay."""
    metrics = run_copy / "metrics.json"
    history = json.loads(metrics.read_text())
    trm_eval = {"step": 4, "strategy": {"name": "unroll"}, "evaluated_by": "trm-eval"}
    metrics.write_text(json.dumps([*history[:1], trm_eval]))
    monkeypatch.setattr(Trainer, "fit", lambda self, **kwargs: {})
    assert run_main(["--resume", str(run_copy), "--device", "cpu"]) == 0
    assert json.loads(metrics.read_text()) == [*history, trm_eval]


# -- temporaries left by killed writes ---------------------------------------------------


def test_stale_temporaries_go_but_not_one_being_written(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    stale = [checkpoints / ".last.pt.k3x_9a0b.tmp", tmp_path / ".metrics.json.abcdefgh.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".last.pt.tmp", tmp_path / "last.pt"]
    kept += [tmp_path / ".a.pt.ABCDEFGH.tmp", checkpoints / ".a.pt.abc.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x" * 100)
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()  # a folder is never a temporary
    writing = checkpoints / ".last.pt.w0w1w2w3.tmp"
    with open(writing, "wb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # as _atomic_write holds it
        assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
        assert writing.exists()
    assert remove_stale_temporaries(tmp_path) == [writing]
    assert all(path.exists() for path in kept) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_a_temporary_removed_before_it_was_locked_is_made_again(tmp_path, monkeypatch):
    """A cleaner may run between mkstemp and the lock: the write takes a new temporary."""
    real, made = tempfile.mkstemp, []

    def mkstemp(**kwargs):
        handle, name = real(**kwargs)
        made.append(name)
        if len(made) == 1:
            assert remove_stale_temporaries(tmp_path) == [Path(name)]
        return handle, name

    monkeypatch.setattr(trm_core.files.tempfile, "mkstemp", mkstemp)
    atomic_write_text(tmp_path / "metrics.json", "[]")
    assert len(made) == 2 and (tmp_path / "metrics.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_cleaner_at_the_rename_takes_nothing(tmp_path, monkeypatch):
    """The temporary is renamed while still locked: a cleaner then finds nothing to take."""
    real = os.replace

    def replace(source, target):
        assert remove_stale_temporaries(tmp_path) == []
        real(source, target)

    monkeypatch.setattr(trm_core.files.os, "replace", replace)
    atomic_write_text(tmp_path / "metrics.json", "[]")
    assert (tmp_path / "metrics.json").read_text() == "[]"


def test_resume_removes_what_a_killed_save_left(run_copy, monkeypatch, capsys):
    left = run_copy / "checkpoints" / ".last.pt.q8r7s6t5.tmp"
    left.write_bytes(b"\0" * 4096)
    monkeypatch.setattr(Trainer, "fit", lambda self, **kwargs: {})
    assert run_main(["--resume", str(run_copy), "--device", "cpu"]) == 0
    assert not left.exists()
    assert f"removed 1 temporary file(s) left by interrupted writes in {run_copy}" in (
        capsys.readouterr().out
    )


# -- file modes --------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "metrics.json", "[]")
        trm_core.checkpoint.atomic_save({"step": 1}, tmp_path / "checkpoints" / "last.pt")
    finally:
        os.umask(previous)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "checkpoints" / "last.pt").stat().st_mode & 0o777 == mode


def test_a_file_written_again_keeps_its_mode_and_the_umask_has_a_fallback(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "metrics.json", "[]")
    path.chmod(0o640)
    atomic_write_text(path, "[1]")
    assert path.stat().st_mode & 0o777 == 0o640
    monkeypatch.setattr(trm_core.files, "_STATUS", str(tmp_path / "no-proc"))
    monkeypatch.setattr(trm_core.files, "_UMASK_AT_IMPORT", 0o027)
    assert trm_core.files.current_umask() == 0o027
    assert atomic_write_text(tmp_path / "other.json", "[]").stat().st_mode & 0o777 == 0o640


# -- a task's outputs that cannot be written --------------------------------------------


def _writing_task(monkeypatch) -> None:
    """The tiny task writes ``submission.json`` (atomically, as ARC does) into out_dir."""

    def evaluate_predictions(self, split, rows, predictions, halt_logits, out_dir, images):
        if out_dir is not None:
            atomic_write_text(out_dir / "submission.json", json.dumps(len(rows)))
        return {"answered": float(len(rows))}, []

    monkeypatch.setattr(tiny_task.ReverseTask, "evaluate_predictions", evaluate_predictions)


def _unwritable(monkeypatch, code: int) -> None:
    """Creating ``submission.json``'s temporary fails with ``code`` (EACCES, ENOSPC)."""
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        if kwargs["prefix"].startswith(".submission.json."):
            name = os.path.join(kwargs["dir"], kwargs["prefix"] + "abcdefgh.tmp")
            raise OSError(code, os.strerror(code), name)
        return real(**kwargs)

    monkeypatch.setattr(trm_core.files.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC])
def test_trm_eval_keeps_its_metrics_when_the_outputs_cannot_be_written(
    run_copy, monkeypatch, capsys, code
):
    _writing_task(monkeypatch)
    _unwritable(monkeypatch, code)
    capsys.readouterr()
    assert eval_main(["--run", str(run_copy), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["metrics"]["answered"] == 16.0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), err
    assert f"could not write {run_copy / 'submission.json'} ({os.strerror(code).lower()})" in err
    assert not (run_copy / "submission.json").exists()
    assert not [p for p in run_copy.iterdir() if TEMPORARY.fullmatch(p.name)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_trm_eval_in_a_read_only_run_folder(run_copy, monkeypatch, capsys):
    _writing_task(monkeypatch)
    run_copy.chmod(0o555)
    try:
        capsys.readouterr()
        assert eval_main(["--run", str(run_copy), "--json"]) == 0
    finally:
        run_copy.chmod(0o755)
    out, err = capsys.readouterr()
    assert json.loads(out)["metrics"]["answered"] == 16.0
    assert err.startswith(f"warning: could not write {run_copy / 'submission.json'}")


def test_training_goes_on_when_the_outputs_cannot_be_written(
    trained, tmp_path, monkeypatch, capsys
):
    _writing_task(monkeypatch)
    _unwritable(monkeypatch, errno.ENOSPC)
    assert run_main(_runs(tmp_path, "train.steps=4", "eval.interval_steps=2")) == 0
    run = _only_run(tmp_path / "runs")
    history = json.loads((run / "metrics.json").read_text())
    assert [r["metrics"]["answered"] for r in history] == [16.0, 16.0]
    assert capsys.readouterr().err.count("warning: could not write") == 2
