"""The task kit: build-once data folders, subsampling, the dihedral group, recipes, cache keys."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import trm_core
from trm_core import (
    DIHEDRAL_NAMES,
    INVERSE_DIHEDRAL,
    Task,
    build_once,
    cpu_recipe,
    dihedral,
    dihedral_flat,
    dihedral_permutation,
    inverse_dihedral,
    mix_seed,
    paper_recipe,
    read_split,
    subsample,
    task_data_version,
    write_split,
)
from trm_core.run import data_dir_for

from .tiny_task import ReverseTask

ROOT = Path(__file__).resolve().parents[1]


def _writer(calls: list | None = None, pause: float = 0.0):
    """A build function writing two splits and a side file; records its calls."""

    def build(tmp: Path) -> dict:
        if calls is not None:
            calls.append(tmp)
        time.sleep(pause)
        inputs = np.arange(24).reshape(4, 6) % 5
        write_split(tmp / "train", inputs, inputs, task="toy")
        write_split(tmp / "extra" / "hard", inputs[:2], inputs[:2], task="toy")
        (tmp / "notes.txt").write_text("side file\n")
        return {"examples": 4}

    return build


def test_a_build_writes_a_manifest_and_is_reused(tmp_path, capsys):
    calls = []
    out = tmp_path / "data"
    assert build_once(out, _writer(calls), what="the toy data") == out
    record = json.loads((out / "dataset.json").read_text())
    assert record["examples"] == 4 and "seconds" in record
    assert set(record["manifest"]) == {
        "notes.txt",
        *(f"{split}/{name}" for split in ("train", "extra/hard")
          for name in ("inputs.npy", "labels.npy", "puzzle_identifiers.npy", "metadata.json")),
    }  # fmt: skip
    digest = hashlib.sha256(b"side file\n").hexdigest()
    assert record["manifest"]["notes.txt"] == {"bytes": 10, "sha256": digest}
    assert len(read_split(out / "train")) == 4
    assert "building the toy data in" in capsys.readouterr().err
    before = (out / "dataset.json").stat().st_mtime_ns
    seen = []
    assert build_once(out, _writer(calls), what="the toy data", stale=seen.append) == out
    assert len(calls) == 1 and (out / "dataset.json").stat().st_mtime_ns == before
    assert seen == [{"examples": 4, "seconds": record["seconds"]}]  # the summary, no manifest
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.lock", "data"]


def test_stale_data_are_rebuilt(tmp_path, capsys):
    calls, out = [], tmp_path / "data"
    build_once(out, _writer(calls), what="the toy data")
    build_once(out, _writer(calls), what="the toy data", stale=lambda summary: "a new file")
    assert len(calls) == 2
    assert f"the toy data: {out}: a new file; rebuilding it" in capsys.readouterr().err


def _truncate(out: Path) -> None:
    path = out / "train" / "inputs.npy"
    path.write_bytes(path.read_bytes()[:-5])


def _alter(out: Path) -> None:
    path = out / "notes.txt"
    path.write_text("side fil3\n")


def _bad_split(out: Path) -> None:
    """A split read_split refuses, with its manifest made to match."""
    write_split(out / "train", np.zeros((4, 6)), np.zeros((4, 6)), task="toy")
    np.save(out / "train" / "labels.npy", np.zeros((3, 6), dtype=np.uint8))
    record = json.loads((out / "dataset.json").read_text())
    from trm_core.taskkit import _manifest

    record["manifest"] = _manifest(out)
    (out / "dataset.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda out: (out / "train" / "labels.npy").unlink(), "train/labels.npy is missing"),
        (_truncate, "train/inputs.npy has"),
        (_alter, "notes.txt does not match its checksum"),
        (lambda out: (out / "dataset.json").unlink(), "no dataset.json"),
        (lambda out: (out / "dataset.json").write_text("{"), "dataset.json is unreadable"),
        (lambda out: (out / "dataset.json").write_text("{}"), "dataset.json has no manifest"),
        (_bad_split, "the split train is unreadable"),
    ],
)
def test_a_damaged_folder_is_reported_and_rebuilt(tmp_path, capsys, damage, problem):
    calls, out = [], tmp_path / "data"
    build_once(out, _writer(calls), what="the toy data")
    damage(out)
    capsys.readouterr()
    assert build_once(out, _writer(calls), what="the toy data") == out
    err = capsys.readouterr().err.splitlines()
    assert len(calls) == 2
    assert err[0].startswith(f"the toy data: {out}: {problem}") and "rebuilding" in err[0]
    assert len(read_split(out / "train")) == 4 and (out / "notes.txt").read_text() == "side file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.lock", "data"]


def test_leftovers_of_a_killed_build_are_cleaned(tmp_path):
    out = tmp_path / "data"
    leftover = tmp_path / ".data.building-abc123"
    (leftover / "train").mkdir(parents=True)
    (leftover / "train" / "inputs.npy").write_bytes(b"half")
    (tmp_path / ".data.broken-xyz").mkdir()
    unrelated = tmp_path / ".other.building-abc"
    unrelated.mkdir()
    build_once(out, _writer(), what="the toy data")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".data.lock",
        ".other.building-abc",
        "data",
    ]


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def fails(tmp: Path) -> dict:
        write_split(tmp / "train", np.zeros((2, 3)), np.zeros((2, 3)))
        raise RuntimeError("no source file")

    with pytest.raises(RuntimeError, match="no source file"):
        build_once(tmp_path / "data", fails, what="the toy data")
    assert [p.name for p in tmp_path.iterdir()] == [".data.lock"]
    with pytest.raises(TypeError, match="not a dict"):
        build_once(tmp_path / "data", lambda tmp: None, what="the toy data")
    assert not (tmp_path / "data").exists()


def test_two_threads_building_at_once_build_once(tmp_path, capsys):
    calls, out = [], tmp_path / "data"
    results = []

    def run():
        results.append(build_once(out, _writer(calls, pause=0.5), what="the toy data"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [out, out] and len(calls) == 1
    assert "waiting for another process building" in capsys.readouterr().err


def _build_in_process(out: str, log: str) -> None:
    def build(tmp: Path) -> dict:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return _writer(pause=0.5)(tmp)

    build_once(Path(out), build, what="the toy data")


def test_two_processes_building_at_once_build_once(tmp_path):
    out, log = tmp_path / "data", tmp_path / "calls.log"
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_build_in_process, args=(str(out), str(log))) for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    assert [p.exitcode for p in processes] == [0, 0]
    assert len(log.read_text().split()) == 1
    assert len(read_split(out / "train")) == 4


def test_subsample_is_the_tasks_draw():
    rows = subsample(1000, 10, 7, "train")
    rng = np.random.default_rng(mix_seed(7, zlib.crc32(b"train")))
    np.testing.assert_array_equal(rows, np.sort(rng.choice(1000, 10, replace=False)))
    np.testing.assert_array_equal(rows, subsample(1000, 10, 7, "train"))
    assert (np.diff(rows) > 0).all()
    assert not np.array_equal(rows, subsample(1000, 10, 7, "test"))
    assert not np.array_equal(rows, subsample(1000, 10, 8, "train"))
    np.testing.assert_array_equal(subsample(5, None, 0, "x"), np.arange(5))
    np.testing.assert_array_equal(subsample(5, 5, 0, "x"), np.arange(5))
    np.testing.assert_array_equal(subsample(5, 9, 0, "x"), np.arange(5))
    with pytest.raises(ValueError):
        subsample(5, -1, 0, "x")


def test_dihedral_numbering():
    grid = np.arange(12).reshape(3, 4)
    expected = [grid, np.rot90(grid), np.rot90(grid, 2), np.rot90(grid, 3), np.fliplr(grid),
                np.flipud(grid), grid.T, np.rot90(grid, 2).T]  # fmt: skip
    for k, want in enumerate(expected):
        np.testing.assert_array_equal(dihedral(grid, k), want, err_msg=DIHEDRAL_NAMES[k])
    assert len(DIHEDRAL_NAMES) == len(INVERSE_DIHEDRAL) == 8
    with pytest.raises(ValueError, match="not 0-7"):
        dihedral(grid, 8)
    with pytest.raises(ValueError, match="not 0-7"):
        inverse_dihedral(-1)
    square = np.arange(9).reshape(3, 3)
    assert len({dihedral(square, k).tobytes() for k in range(8)}) == 8
    np.testing.assert_array_equal(dihedral_permutation(3, 0), np.arange(9))


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, array_shapes(min_dims=2, max_dims=2, max_side=9)), st.integers(0, 7))
def test_every_dihedral_transform_has_its_inverse(grid, k):
    back = inverse_dihedral(k)
    assert (dihedral(dihedral(grid, k), back) == grid).all()
    assert (dihedral(dihedral(grid, back), k) == grid).all()
    stacked = np.stack([grid, grid + 1])
    np.testing.assert_array_equal(dihedral(stacked, k)[1], dihedral(grid + 1, k))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda s: arrays(np.uint8, (2, s * s))), st.integers(0, 7))
def test_flat_transforms_match_the_grid_ones_and_invert(tokens, k):
    side = int(np.sqrt(tokens.shape[-1]))
    moved = dihedral_flat(tokens, k)
    np.testing.assert_array_equal(
        moved.reshape(2, side, side), dihedral(tokens.reshape(2, side, side), k)
    )
    np.testing.assert_array_equal(dihedral_flat(moved, k, inverse=True), tokens)


def test_recipes_update_sections_and_copy():
    preset = paper_recipe(model={"mixer": "mlp"}, train={"steps": 10}, data={"augmentations": 3})
    assert preset["model"]["mixer"] == "mlp" and preset["model"]["hidden_size"] == 512
    assert preset["train"]["steps"] == 10 and preset["train"]["global_batch_size"] == 768
    assert preset["data"] == {"augmentations": 3} and preset["eval"]["batch_size"] == 768
    preset["train"]["lr"] = 5.0
    assert paper_recipe()["train"]["lr"] == 1e-4
    assert cpu_recipe(train={"steps": 600})["train"]["steps"] == 600
    assert cpu_recipe()["train"]["steps"] == 1800


def test_the_cache_key_follows_the_data_version(tmp_path):
    options = {"seed": 0}
    first = data_dir_for("toy", options, str(tmp_path), version="1")
    assert first == data_dir_for("toy", dict(options), str(tmp_path), version="1")
    assert first.parent == tmp_path and first.name.startswith("toy-")
    assert first != data_dir_for("toy", options, str(tmp_path), version="2")
    assert first != data_dir_for("toy", {"seed": 1}, str(tmp_path), version="1")


def test_the_data_version_of_a_task():
    class Versioned(ReverseTask):
        data_version = "2025-01"

    assert task_data_version(Versioned) == "2025-01"
    assert task_data_version(Versioned()) == "2025-01"

    class Unversioned(Task):
        pass

    Unversioned.data_version = None
    Unversioned.__module__ = "no_distribution_installs_this"
    assert task_data_version(Unversioned) == "unknown"
    Unversioned.__module__ = "trm_core.fake"
    assert task_data_version(Unversioned) == f"trm-core {trm_core.__version__}"


PINNED_TASKS = [
    ("sudoku", "trm_plugin_sudoku"),
    ("maze", "trm_plugin_maze"),
    ("arc", "trm_plugin_arc"),
]


#: Preset keys owned by the component options (the attention mixer's and grid encoder's),
#: which move out of ``model`` independently of the kit: left out of the comparison.
COMPONENT_KEYS = {"num_heads", "positions", "rope_theta", "options"}


def _without_component_keys(presets: dict) -> dict:
    out = json.loads(json.dumps(presets))
    for preset in out.values():
        preset.pop("by_mixer", None)
        for key in COMPONENT_KEYS:
            preset.get("model", {}).pop(key, None)
    return out


@pytest.mark.parametrize(("name", "module"), PINNED_TASKS)
def test_presets_are_what_they_were_before_the_kit(name, module):
    """Each task's presets as they were before the kit (tasks/<name>/tests/presets.json).

    One change on purpose: Sudoku's ``cpu`` extra test ``magictour`` was read from a path
    outside the project (a sibling data folder); its ``path`` is now null, and the test set is
    added only when a user gives one (``--set data.options.extra_tests.magictour.path=F``).
    A second: Maze's ``cpu`` trains with Muon (``train.optimizer: muon``), the lever that
    won there over three seeds (docs/performance.md#time-to-accuracy). A third: Sudoku's
    ``cpu`` hands its matrices from Adam-atan2 to Muon after a third of the steps
    (``muon_from: 0.33``), has hidden size 96, not 64, and trains on puzzles with 36-45
    givens, not 40-45 (its test set is unchanged), evaluated every 900 steps, not 600:
    the levers that won there.
    The component keys (:data:`COMPONENT_KEYS`, ``by_mixer``) are not compared. Presets
    added since (the ``fast`` variants, tests/test_curriculum.py) are new names only.
    """
    plugin = pytest.importorskip(module)
    task = next(v for k, v in vars(plugin).items() if k.endswith("Task") and k != "Task")()
    pinned = json.loads((ROOT / "tasks" / name / "tests" / "presets.json").read_text())
    now = _without_component_keys(task.presets())
    assert {key: now[key] for key in pinned if key in now} == _without_component_keys(pinned)
    assert all(key.startswith("fast") for key in set(now) - set(pinned))
