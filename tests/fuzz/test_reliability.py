"""Nothing lost, ever: one writer per run folder, honest resume, caches that know their
sources, clean interrupts, every command guarded.

The writer and interrupt cases use real processes and real signals: the commands run
as their console scripts do (``trm_core.cli.run``, which turns SIGTERM into a clean
stop), with the tiny reverse task of ``tests/tiny_task.py`` registered in the child.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

import trm_core
from trm_core.bench import main as bench_main
from trm_core.cli import convert_main, eval_main, run_main
from trm_core.files import LOCK_NAME
from trm_core.registry import use_registry
from trm_core.solve import main as solve_main

from .. import tiny_task
from ..reference_oracle import make_reference_state_dict

ROOT = Path(__file__).resolve().parents[2]
TASK = ["--task", "reverse", "--device", "cpu"]
#: A child process: one trm command, as its console script runs it, with the tiny task.
RUNNER = """
import sys
from tests import tiny_task
from trm_core import cli, export, solve
from trm_core.registry import use_registry

mains = {"run": cli.run_main, "eval": cli.eval_main, "solve": solve.main,
         "export": export.main}
name, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["trm-" + name, *argv]
with use_registry(tiny_task.registry()):
    cli.run(lambda: mains[name](argv))
"""
TIMEOUT = 120  # seconds any child may take: a hang fails the test


@pytest.fixture(autouse=True)
def interruptible_children():
    """The children these tests interrupt with SIGINT must not inherit it ignored.

    A shell without job control (a script's ``pytest &``, ``nohup``) starts its background
    jobs with SIGINT ignored, and an ignored signal stays ignored across ``exec``: Python
    then installs no KeyboardInterrupt handler, and a Ctrl-C never reaches the child. Any
    handler here is reset to the default in a child, so the child gets Python's own.
    """
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("TRM_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def long_run(tmp_path, data_dir) -> Path:
    """A run of the tiny task planned for 100,000 steps, stopped at its checkpoint of step 4
    (so that a resume keeps training until it is stopped)."""
    with use_registry(tiny_task.registry()):
        argv = [*TASK, "--out", str(tmp_path / "runs"), "--max-steps", "4",
                "--set", "train.steps=100000", "--set", "eval.interval_steps=4"]  # fmt: skip
        assert run_main(argv) == 0
    (run,) = (tmp_path / "runs").iterdir()
    return run


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRM_LOAD_PLUGINS"}
    env.update(TRM_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def _start(command: str, *argv, data_dir: Path, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, command, *map(str, argv)], cwd=ROOT,
        env=_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **options,
    )  # fmt: skip


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()  # a hung child must not go on taking the cores from the next tests
        process.communicate()
        raise
    return process.returncode, out, err


def _holder(run: Path) -> dict | None:
    try:
        text = (run / LOCK_NAME).read_text()
    except OSError:
        return None
    return json.loads(text) if text.strip() else None


def _wait_for(condition, what: str, seconds: float = TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _training(run: Path, process: subprocess.Popen) -> None:
    """Wait until ``process`` holds ``run`` and is past its first evaluation."""
    _wait_for(lambda: (_holder(run) or {}).get("pid") == process.pid or process.poll() is not None,
              "the resume to take the lock")  # fmt: skip
    assert process.poll() is None, process.communicate()
    step = trm_core.read_checkpoint(run / "checkpoints" / "last.pt")["step"]
    _wait_for(lambda: trm_core.read_checkpoint(run / "checkpoints" / "last.pt")["step"] > step,
              "a checkpoint of the resumed run")  # fmt: skip


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, err
    return lines[-1]


# -- one writer per run folder --------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_ones_lock_is_taken_over(
    long_run, data_dir
):
    first = _start("run", "--resume", long_run, data_dir=data_dir)
    try:
        _training(long_run, first)
        for command, argv in (
            ("run", ["--resume", long_run]),
            ("run", ["--resume", long_run, "--max-steps", "2"]),
            ("export", [long_run, long_run / "another-model"]),
        ):
            code, _, err = _finish(_start(command, *argv, data_dir=data_dir))
            line = _one_line(err)
            assert code == 2 and line.startswith("error: "), err
            assert f"{long_run} is being written by process {first.pid}" in line, line
            assert f"trm-run --resume {long_run}" in line, line
        assert not (long_run / "another-model").exists()
    finally:
        first.kill()
        first.wait(TIMEOUT)
    # Killed: its lock is left behind, and the next writer takes it over, saying so.
    assert _holder(long_run)["pid"] == first.pid
    step = trm_core.read_checkpoint(long_run / "checkpoints" / "last.pt")["step"]
    history = json.loads((long_run / "metrics.json").read_text())
    code, out, err = _finish(
        _start("run", "--resume", long_run, "--max-steps", step + 4, data_dir=data_dir)
    )
    assert code == 0, err
    assert f"took over the lock of process {first.pid}" in out
    assert trm_core.read_checkpoint(long_run / "checkpoints" / "last.pt")["step"] == step + 4
    after = json.loads((long_run / "metrics.json").read_text())
    assert after[: len(history)] == history  # the history is kept, and goes on
    assert _holder(long_run) is None  # released at the end


def test_readers_need_no_lock(long_run, data_dir):
    first = _start("run", "--resume", long_run, data_dir=data_dir)
    try:
        _training(long_run, first)
        code, out, err = _finish(_start("solve", "--run", long_run, "01234012", data_dir=data_dir))
        assert code == 0 and "the puzzle:" in out, err
    finally:
        first.kill()
        first.wait(TIMEOUT)


# -- interrupts -----------------------------------------------------------------------------


INTERRUPTS = [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]


@pytest.mark.parametrize(("signum", "code", "name"), INTERRUPTS)
def test_an_interrupted_run_says_what_is_kept_and_resumes(long_run, data_dir, signum, code, name):
    process = _start("run", "--resume", long_run, data_dir=data_dir)
    _training(long_run, process)
    process.send_signal(signum)
    returncode, _, err = _finish(process)
    line = _one_line(err)
    assert returncode == code, err
    assert line.startswith(f"interrupted ({name}): training {long_run} at step "), line
    kept = trm_core.read_checkpoint(long_run / "checkpoints" / "last.pt")["step"]
    assert f"the checkpoint of step {kept} is kept" in line, line
    assert f"resume with: trm-run --resume {long_run}" in line, line
    assert _holder(long_run) is None  # released: the next resume takes no one's lock over
    assert not list(long_run.rglob("*.tmp"))
    again = _start("run", "--resume", long_run, "--max-steps", kept + 4, data_dir=data_dir)
    returncode, out, err = _finish(again)
    assert returncode == 0 and "took over" not in out, err
    assert f"resumed at step {kept}" in out


def test_an_interrupted_read_of_standard_input_is_one_line(long_run, data_dir):
    process = _start("solve", "--run", long_run, "-", data_dir=data_dir, stdin=subprocess.PIPE)
    time.sleep(0.5)
    _wait_for(lambda: _loaded(process), "trm-solve to wait on its input", seconds=60)
    process.send_signal(signal.SIGINT)
    code, _, err = _finish(process)
    assert code == 130, err
    assert _one_line(err) == (
        "interrupted (SIGINT): reading puzzles from standard input; nothing was answered"
    )


def _loaded(process: subprocess.Popen) -> bool:
    """Whether a child is blocked reading its standard input (Linux: its wchan)."""
    try:
        state = Path(f"/proc/{process.pid}/stat").read_text().split()[2]
        syscall = Path(f"/proc/{process.pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return process.poll() is not None
    return state == "S" and syscall == "0"  # sleeping in read(2)


# -- honest resume --------------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path, data_dir) -> Path:
    with use_registry(tiny_task.registry()):
        argv = [*TASK, "--out", str(tmp_path / "runs"), "--set", "train.steps=4",
                "--set", "eval.interval_steps=2"]  # fmt: skip
        assert run_main(argv) == 0
    (run,) = (tmp_path / "runs").iterdir()
    return run


def _edit(run: Path, key: str, value) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    section, _, name = key.rpartition(".")
    target = config
    for part in section.split(".") if section else []:
        target = target[part]
    target[name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("train.global_batch_size", 16, "train.global_batch_size 32 -> 16"),
        ("train.lr", 0.1, "train.lr 0.003 -> 0.1"),
        ("data.augmentations", 0, "data.augmentations 3 -> 0"),
        ("data.options.train", 128, "data.options.train 256 -> 128"),
        ("model.halt_max_steps", 4, "model.halt_max_steps 2 -> 4"),
        ("train.ema_rate", 0.5, "train.ema_rate 0.9 -> 0.5"),
        ("train.seed", 7, "train.seed 0 -> 7"),
        ("train.loss", "softmax", "train.loss 'stablemax' -> 'softmax'"),
    ],
)
def test_an_edit_that_changes_what_the_checkpoint_computed_is_refused(
    refused, trained, key, value, shown
):
    _edit(trained, key, value)
    before = (trained / "checkpoints" / "last.pt").read_bytes()
    with use_registry(tiny_task.registry()):
        refused(run_main, ["--resume", trained], "was edited since the checkpoint of step 4",
                shown, "--config")  # fmt: skip
    assert (trained / "checkpoints" / "last.pt").read_bytes() == before


def test_documented_keys_may_change_on_resume(trained, capsys):
    _edit(trained, "eval.batch_size", 7)
    _edit(trained, "train.log_interval", 1)
    _edit(trained, "train.steps", 4)  # unchanged
    with use_registry(tiny_task.registry()):
        assert run_main(["--resume", str(trained), "--device", "cpu", "--time-budget", "5"]) == 0
    assert "resumed at step 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [["--out", "elsewhere"], ["--set", "eval.batch_size=3"], ["--task", "reverse"],
     ["--config", "x.yaml"], ["--mixer", "mlp"], ["--preset", "cpu"]],
)  # fmt: skip
def test_resume_takes_no_other_flag(refused, trained, extra):
    with use_registry(tiny_task.registry()):
        refused(run_main, ["--resume", trained, *extra], "--resume continues a run",
                extra[0])  # fmt: skip


def test_a_damaged_checkpoint_is_refused_and_says_how_to_start_over(refused, trained):
    path = trained / "checkpoints" / "last.pt"
    path.write_bytes(path.read_bytes()[:-100])
    history = (trained / "metrics.json").read_bytes()
    with use_registry(tiny_task.registry()):
        refused(run_main, ["--resume", trained], str(path), "cannot resume",
                f"trm-run --task reverse --config {trained / 'config.yaml'}")  # fmt: skip
    assert (trained / "metrics.json").read_bytes() == history


# -- caches that know their sources ---------------------------------------------------------


def _build(tmp_path, train_file: str, cwd: Path, monkeypatch) -> tuple[Path, int]:
    """Train one step on the tiny task with a user's file of rows; (its data folder, its
    training rows)."""
    monkeypatch.chdir(cwd)
    runs = tmp_path / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    with use_registry(tiny_task.registry()):
        argv = [*TASK, "--out", str(runs), "--max-steps", "1",
                "--set", f"data.options.train_file={train_file}"]  # fmt: skip
        assert run_main(argv) == 0
    built = [p for p in (tmp_path / "data").iterdir() if p.is_dir()]
    newest = max(built, key=lambda p: p.stat().st_mtime_ns)
    return newest, len(trm_core.read_split(newest / "train"))


def test_a_cache_built_from_a_file_knows_its_content(tmp_path, data_dir, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    rows = project / "train.rev"
    rows.write_text("01234012\n")
    first, count = _build(tmp_path, "train.rev", project, monkeypatch)
    assert count == 257
    again, count = _build(tmp_path, "train.rev", project, monkeypatch)
    assert again == first and count == 257  # unchanged: reused

    rows.write_text("01234012\n44332211\n")  # edited: rebuilt from the new content
    edited, count = _build(tmp_path, "train.rev", project, monkeypatch)
    assert edited != first and count == 258

    other = tmp_path / "other-project"  # the same relative name elsewhere: its own cache
    other.mkdir()
    (other / "train.rev").write_text("01234012\n44332211\n")
    theirs, _ = _build(tmp_path, "train.rev", other, monkeypatch)
    assert theirs not in (first, edited)

    rows.unlink()  # deleted: never served from the cache of its old content
    monkeypatch.chdir(project)
    capsys.readouterr()
    with use_registry(tiny_task.registry()):
        argv = [*TASK, "--out", str(tmp_path / "runs"), "--max-steps", "1",
                "--set", "data.options.train_file=train.rev"]  # fmt: skip
        assert run_main(argv) == 2
    assert "train.rev: no such file" in capsys.readouterr().err


def test_generated_data_stay_keyed_on_their_options(tmp_path, data_dir, monkeypatch):
    from trm_core.run import data_dir_for, source_identities

    task = tiny_task.ReverseTask()
    options = {"train": 4, "test": 4, "seed": 0}
    assert source_identities(task, options) == []
    assert data_dir_for("reverse", options, None, version="1") == data_dir_for(
        "reverse", options, None, version="1", sources=source_identities(task, options)
    )


# -- every command guarded ------------------------------------------------------------------


def test_trm_convert_survives_any_malformed_reference(tmp_path, capsys):
    """Reference-shaped state dicts with a tensor flattened, transposed, dropped, made a
    scalar, cut or of another dtype, and keys added: one line each, never a traceback."""
    base = make_reference_state_dict(
        hidden_size=16, num_heads=2, expansion=4, L_layers=2, vocab_size=11, seq_len=9,
        num_puzzle_identifiers=3, puzzle_emb_ndim=16, puzzle_emb_len=1, pos_encodings="none",
        mlp_t=True, seed=1,
    )  # fmt: skip
    rng = random.Random(0)
    source = tmp_path / "reference.pt"
    for _ in range(40):
        state = {key: value.clone() for key, value in base.items()}
        key = rng.choice(sorted(state))
        how = rng.choice(["flat", "transpose", "drop", "extra", "scalar", "int", "cut", "nan"])
        if how == "flat":
            state[key] = state[key].reshape(-1)
        elif how == "transpose" and state[key].ndim == 2:
            state[key] = state[key].T.contiguous()
        elif how == "drop":
            del state[key]
        elif how == "extra":
            state["L_level.layers.7.mlp.down_proj.weight"] = torch.zeros(3, 3)
        elif how == "scalar":
            state[key] = torch.tensor(1.0)
        elif how == "int":
            state[key] = state[key].to(torch.int64)
        elif how == "cut":
            state[key] = state[key][..., :1]
        elif how == "nan":
            state[key] = torch.full_like(state[key], float("nan"))
        torch.save({"_orig_mod.model.inner." + k: v for k, v in state.items()}, source)
        for extra in ([], ["--task", "sudoku"]):
            capsys.readouterr()
            out = tmp_path / "out"
            code = convert_main([str(source), str(out), "--force", "-o", "puzzle_emb_len=1",
                                 "-o", "seq_len=9", *extra])  # fmt: skip
            err = capsys.readouterr().err
            assert "Traceback" not in err, (how, key, err)
            assert code in (0, 2), (how, key, err)
            if code == 2:
                assert err.count("error:") == 1, (how, key, err)
            if how == "nan" and code == 2:
                assert "non-finite" in err or "does not fit" in err or "no preset" in err, err
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)


def test_trm_bench_threads_are_bounded_by_the_cores(refused):
    cores = len(os.sched_getaffinity(0))
    refused(bench_main, ["--task", "sudoku", "--device", "cpu", "--threads", "5000"],
            f"--threads must be within 1..{cores}", "5000")  # fmt: skip


def test_trm_plugins_into_a_full_output_is_one_line(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "trm_core.cli", "plugins"], stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, cwd=ROOT,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert _one_line(result.stderr) == (
        "error: cannot write the output: no space left on device"
    ), result.stderr


def test_a_damaged_metrics_json_is_named_and_never_fatal(trained, capsys):
    strategy_run = trained
    (strategy_run / "metrics.json").write_text('{"not": "a list"}')
    with use_registry(tiny_task.registry()):
        argv = ["--run", str(strategy_run), "--device", "cpu", "--strategy", "unroll"]
        assert eval_main(argv) == 0
    captured = capsys.readouterr()
    assert "exact_accuracy by selection" in captured.out
    assert "metrics.json is damaged" in captured.err and "Traceback" not in captured.err
    assert json.loads((strategy_run / "metrics.json").read_text()) == {"not": "a list"}


def test_closed_standard_input_breaks_no_command(trained, data_dir):
    for command, argv, expected in (
        ("eval", ["--run", trained, "--device", "cpu", "--strategy", "unroll"], 0),
        ("solve", ["--run", trained, "-"], 2),
    ):
        process = subprocess.run(
            [sys.executable, "-c", RUNNER, command, *map(str, argv)], cwd=ROOT,
            env=_env(data_dir), capture_output=True, text=True, timeout=TIMEOUT,
            preexec_fn=lambda: os.close(0),  # the child starts with no standard input
        )  # fmt: skip
        assert process.returncode == expected, process.stderr
        assert "Traceback" not in process.stderr, process.stderr
        if expected == 2:
            assert "standard input is closed" in _one_line(process.stderr)


def test_puzzles_from_a_fifo_and_dev_null(refused, trained, tmp_path, capsys):
    fifo = tmp_path / "puzzles"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("01234012\n"))
    writer.start()
    with use_registry(tiny_task.registry()):
        assert solve_main(["--run", str(trained), str(fifo)]) == 0
        writer.join(TIMEOUT)
        assert f"{fifo}:" in capsys.readouterr().out  # the puzzle, named by the file
        refused(solve_main, ["--run", trained, "/dev/null"], "/dev/null", "expected 8 digits")
        refused(solve_main, ["--run", trained, ""], "PUZZLE is empty")


def test_out_of_memory_names_the_keys_that_set_the_size(refused, trained, monkeypatch):
    def too_big(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 68719476736 bytes. Error code 12"
        )

    monkeypatch.setattr(trm_core.inference, "evaluate_strategy", too_big)
    with use_registry(tiny_task.registry()):
        line = refused(eval_main, ["--run", trained, "--device", "cpu", "--strategy", "rollouts",
                                   "--set", "strategy.k=4096"],
                       "out of memory (tried to allocate 64.00 GiB)", "eval.batch_size=",
                       "strategy.k=4096")  # fmt: skip
    assert "train.global_batch_size" not in line


# -- messages that say the cause ------------------------------------------------------------


def test_a_full_disk_during_a_data_build_is_called_a_full_disk(refused, tmp_path, data_dir,
                                                               monkeypatch):  # fmt: skip
    """numpy's short write (np.save onto a full disk) has no errno; the line says it."""
    import numpy as np

    def short_write(*args, **kwargs):
        raise OSError("1048576 requested and 4096 written")

    monkeypatch.setattr(np, "save", short_write)
    with use_registry(tiny_task.registry()):
        refused(run_main, [*TASK, "--out", tmp_path / "runs"], "cannot build the reverse data",
                "no space left on device (a write stopped at 4,096 of 1,048,576)")  # fmt: skip
    assert not list(data_dir.rglob("*.npy"))


@pytest.mark.parametrize(
    ("main", "argv", "fragment"),
    [
        (run_main, ["--resume", ""], "argument --resume: an empty name"),
        (run_main, [*TASK, "--out", ""], "argument --out: an empty name"),
        (eval_main, ["--run", ""], "argument --run: an empty name"),
        (eval_main, ["--model", ""], "argument --model: an empty name"),
        (solve_main, ["--model", "", "01234012"], "argument --model: an empty name"),
        (convert_main, ["", "out"], "an empty name"),
    ],
)
def test_an_empty_argument_is_called_empty(refused, main, argv, fragment):
    refused(main, argv, fragment)


def test_an_interrupted_data_build_keeps_nothing_half_built(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the Sudoku generator's
    workers leave it to the main process, which says what it stopped and keeps nothing."""
    cache = tmp_path / "cache"
    argv = ["--task", "sudoku", "--device", "cpu", "--out", str(tmp_path / "runs"), "--set",
            "data.options.train.count=200000", "--set", f"data.cache_dir={cache}"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "trm_core.cli", "run", *argv], cwd=tmp_path,
        env=_env(tmp_path / "unused"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    _wait_for(lambda: any(cache.glob(".*building-*")) or process.poll() is not None,
              "the data build to start")  # fmt: skip
    time.sleep(1.0)  # the workers are generating
    os.killpg(process.pid, signal.SIGINT)
    code, _, err = _finish(process)
    assert code == 130, err
    line = _one_line(err)
    assert line.startswith("interrupted (SIGINT): building the sudoku data in "), line
    assert line.endswith("nothing half-built is kept"), line
    assert not list(cache.glob(".*building-*")) and not [p for p in cache.iterdir() if p.is_dir()]
    with pytest.raises(ProcessLookupError):  # no worker left behind in its group
        os.killpg(process.pid, 0)
