"""Data caches under concurrency and damage: every task's build_once folder.

- Two processes building the same empty cache folder at the same moment (with
  the lock, and without one, as where ``fcntl`` is missing) both finish and
  read the same complete data.
- A damaged cache (a truncated or missing file, garbage of the same size,
  broken ``metadata.json`` or ``dataset.json``) is reported in one line on the
  next start and rebuilt; nothing writes into a finished cache folder.
- The finished folder and its files honour the user's umask, and
  :func:`trm_core.write_split` replaces a split a reader is reading safely.

``scripts/cache_race.py`` does the same race with real ``trm-run`` processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from trm_core import DataError, read_split, write_split
from trm_core.registry import get_registry
from trm_core.taskkit import _check

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
REPEATS = 3

#: A process that builds data sets when told to: one JSON line on stdin
#: {"task", "options", "out", "lock"} -> one JSON line on stdout, the data it read
#: back (or the error). Two of them told at once race on the same folder.
WORKER = """
import hashlib, json, sys, traceback
from pathlib import Path
from trm_core import read_split
from trm_core.registry import get_registry

print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    saved = sys.modules.get("fcntl")
    if not job["lock"]:
        sys.modules["fcntl"] = None  # as on Windows: build_once has no lock
    try:
        task = get_registry().get("task", job["task"])()
        task.configure(job["options"])
        out = Path(task.build_dataset(job["options"], Path(job["out"])))
        digest = hashlib.sha256()
        for meta in sorted(out.rglob("metadata.json")):
            split = read_split(meta.parent, task)
            for array in (split.inputs, split.labels, split.puzzle_identifiers):
                digest.update(array.tobytes())
        manifest = json.loads((out / "dataset.json").read_text())["manifest"]
        print(json.dumps({"digest": digest.hexdigest(), "manifest": manifest}), flush=True)
    except BaseException:
        print(json.dumps({"error": traceback.format_exc()}), flush=True)
    finally:
        if saved is None:
            sys.modules.pop("fcntl", None)
        else:
            sys.modules["fcntl"] = saved
"""


def _relabelled(text: str, shift: int) -> str:
    """The grid with every digit d replaced by d + shift (mod 9): another valid puzzle."""
    return "".join(c if c == "." else str((int(c) - 1 + shift) % 9 + 1) for c in text)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, dict]:
    """Tiny data options for each task, their files written here."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "puzzles.txt").write_text("\n".join(_relabelled(EASY, s) for s in range(3)))
    rows = [f"x,{_relabelled(EASY, s)},{_relabelled(SOLUTION, s)},{s}" for s in range(4)]
    (root / "puzzles.csv").write_text("source,question,answer,rating\n" + "\n".join(rows))
    tasks = {
        f"t{n}": {"train": [{"input": [[n, 1], [2, 3]], "output": [[3, 2], [1, n]]}] * 2,
                  "test": [{"input": [[1, n]]}]}
        for n in range(3)
    }  # fmt: skip
    (root / "challenges.json").write_text(json.dumps(tasks))
    (root / "solutions.json").write_text(json.dumps({t: [[[n, 1]]] for n, t in enumerate(tasks)}))
    generated = {"source": "generate", "givens": [60, 70], "minimal": False}
    return {
        "sudoku": {
            "train": {**generated, "count": 6},
            "test": {"source": "list", "path": str(root / "puzzles.txt")},
            "extra_tests": {"csv": {"source": "csv", "path": str(root / "puzzles.csv")}},
        },
        "maze": {
            "side": 5,
            "train": {"count": 6, "min_length": 2},
            "test": {"count": 4, "min_length": 2},
        },
        "arc": {
            "sets": {
                "a": {
                    "source": "json",
                    "challenges": str(root / "challenges.json"),
                    "solutions": str(root / "solutions.json"),
                }
            },
            "test_set": "a",
            "canvas": 5,
            "augmentations": 3,
        },
        "life": {"side": 4, "train_count": 6, "test_count": 4},
    }


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Two worker processes, imported and waiting (imports are not part of the race).

    At the end both must exit 0, and their progress lines must show that the builds
    did overlap: one waited for the other's lock, or lost the rename to it.
    """
    logs = [tmp_path_factory.mktemp("workers") / f"stderr-{n}.txt" for n in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        for log in logs
    ]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.stdout.readline().strip() == "ready", log.read_text()
    yield procs
    for proc, log in zip(procs, logs, strict=True):
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    said = "".join(log.read_text() for log in logs)
    overlaps = said.count("waiting for another process") + said.count("meanwhile; using it")
    assert overlaps, said[-2000:]


@pytest.mark.parametrize("lock", [True, False], ids=["lock", "no-lock"])
@pytest.mark.parametrize("task", ["sudoku", "maze", "arc", "life"])
def test_two_processes_building_one_cache_both_read_the_same_data(
    workers, inputs, tmp_path, task, lock
):
    for repeat in range(REPEATS):
        out = tmp_path / f"{task}-{repeat}"
        job = json.dumps({"task": task, "options": {**inputs[task], "seed": repeat},
                          "out": str(out), "lock": lock})  # fmt: skip
        for proc in workers:  # both told at once
            proc.stdin.write(job + "\n")
            proc.stdin.flush()
        first, second = (json.loads(proc.stdout.readline()) for proc in workers)
        assert "error" not in first, first["error"]
        assert "error" not in second, second["error"]
        assert first == second
        assert _check(out)[0] is None
        assert set(first["manifest"]) == {
            str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
        } - {"dataset.json"}
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]
        assert leftovers in ([], [f".{out.name}.lock"]), leftovers


# --------------------------------------------------------------------------- damage


def _build(task_name: str, options: dict, out: Path) -> Path:
    task = get_registry().get("task", task_name)()
    task.configure(options)
    return task.build_dataset(options, out)


def _arrays(out: Path) -> dict[str, bytes]:
    return {
        str(meta.parent.relative_to(out)): b"".join(
            a.tobytes() for a in (s.inputs, s.labels, s.puzzle_identifiers)
        )
        for meta in sorted(out.rglob("metadata.json"))
        for s in [read_split(meta.parent)]
    }


def _snapshot(out: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
        for p in out.rglob("*")
    }


DAMAGE = {
    "truncated npy": ("train/inputs.npy", lambda p: p.write_bytes(p.read_bytes()[:-7])),
    "same-size garbage": ("test/labels.npy", lambda p: p.write_bytes(b"\x00" * p.stat().st_size)),
    "broken metadata": ("train/metadata.json", lambda p: p.write_text("{")),
    "missing file": ("test/puzzle_identifiers.npy", lambda p: p.unlink()),
    "broken dataset.json": ("dataset.json", lambda p: p.write_text('{"manifest": ')),
    "no dataset.json": ("dataset.json", lambda p: p.unlink()),
    "arc table garbage": ("arc/counts.npy", lambda p: p.write_bytes(b"\xff" * p.stat().st_size)),
}
REPORTS = {
    "truncated npy": "train/inputs.npy has",
    "same-size garbage": "test/labels.npy does not match its checksum",
    "broken metadata": "train/metadata.json",
    "missing file": "test/puzzle_identifiers.npy is missing",
    "broken dataset.json": "dataset.json is unreadable",
    "no dataset.json": "no dataset.json",
    "arc table garbage": "arc/counts.npy does not match its checksum",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_is_reported_in_one_line_and_rebuilt(inputs, tmp_path, capsys, damage):
    task = "arc" if damage.startswith("arc") else "life"
    out = _build(task, inputs[task], tmp_path / "data")
    before = _arrays(out)
    name, spoil = DAMAGE[damage]
    spoil(out / name)
    capsys.readouterr()
    assert _build(task, inputs[task], out) == out
    err = capsys.readouterr().err
    reports = [line for line in err.splitlines() if "rebuilding it" in line]
    assert len(reports) == 1 and str(out) in reports[0], err
    assert REPORTS[damage] in reports[0], reports[0]
    assert _check(out)[0] is None and _arrays(out) == before
    assert not [p for p in tmp_path.iterdir() if ".broken-" in p.name or ".building-" in p.name]


def test_a_failed_build_leaves_nothing_and_a_finished_cache_is_never_written(inputs, tmp_path):
    bad = {**inputs["arc"], "sets": {"a": {"source": "json", "challenges": "/nowhere.json"}}}
    with pytest.raises(DataError, match="nowhere.json"):
        _build("arc", bad, tmp_path / "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bad.lock"]
    out = _build("arc", inputs["arc"], tmp_path / "data")
    manifest = json.loads((out / "dataset.json").read_text())["manifest"]
    assert {"arc/augmentations.npy", "arc/counts.npy", "arc/test_tasks.json"} <= set(manifest)
    before = _snapshot(out)
    task = get_registry().get("task", "arc")()
    task.configure(inputs["arc"])
    assert task.build_dataset(inputs["arc"], out) == out  # reused
    split = read_split(out / "train", task)
    task.training_example(split, 0, 1, 7)
    assert task.tables(read_split(out / "test", task)).test_tasks
    assert _snapshot(out) == before


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process's umask for the test; the old one comes back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_the_cache_honours_the_umask(inputs, tmp_path, umask, mask):
    umask(mask)
    out = _build("sudoku", inputs["sudoku"], tmp_path / "data")
    split = write_split(tmp_path / "alone", np.ones((2, 3)), np.ones((2, 3)))
    folders = [out, split, *(p for p in out.rglob("*") if p.is_dir())]
    files = [p for root in (out, split) for p in root.rglob("*") if p.is_file()]
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o777 & ~mask)}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~mask)}


def test_write_split_replaces_a_split_a_reader_is_reading(tmp_path):
    """A reader holding the old split keeps it; readers meanwhile get one whole version,
    or a DataError (in the instant between the two renames, "missing"); never a mix."""
    path = tmp_path / "train"

    def version(v: int) -> Path:
        rows = np.full((4, 3), v)
        return write_split(path, rows, rows, np.full(4, v), version=v)

    old = read_split(version(1))
    version(2)
    assert old.inputs[0, 0] == 1 and read_split(path).inputs[0, 0] == 2
    stop, seen, problems = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            try:
                split = read_split(path)
            except DataError as error:  # in the instant between renames, or when rushed
                if "missing" not in str(error) and "while being read" not in str(error):
                    problems.append(str(error))
                continue
            values = {int(split.inputs[0, 0]), int(split.labels[-1, -1])}
            values |= {int(split.puzzle_identifiers[0]), split.metadata["version"]}
            if len(values) != 1:
                problems.append(f"a mix of versions {values}")
            seen.add(split.metadata["version"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in range(3, 60):
            version(v)
            time.sleep(0.002)
    finally:
        stop.set()
        reader.join()
    assert not problems, problems[:3]
    assert len(seen) > 1 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
