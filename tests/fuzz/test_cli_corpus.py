"""The commands' corpus: every mistake a user can type or leave in a file (``--set``,
``--config``, arguments, run folders) ends in exit code 2 and one ``error:`` line that
names the key, file or argument, and the valid choices where there are some.

The run these cases start from is the tiny reverse task of ``tests/tiny_task.py``
(trained for 2 steps once per module), so every case takes milliseconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trm_core.bench import main as bench_main
from trm_core.cli import convert_main, eval_main, plugins_main, run_main
from trm_core.registry import use_registry
from trm_core.solve import main as solve_main

from .. import tiny_task


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """(folder, trained run folder): the tiny task registered alone, its data cached in
    the folder, and a run trained for 2 steps (a checkpoint, config.yaml, metrics.json)."""
    folder = tmp_path_factory.mktemp("corpus")
    with pytest.MonkeyPatch.context() as patch, use_registry(tiny_task.registry()):
        patch.setenv("TRM_DATA_DIR", str(folder / "data"))
        assert run_main([*TASK, "--out", str(folder / "runs"), "--set", "train.steps=2"]) == 0
        (run,) = (folder / "runs").iterdir()
        yield folder, run


TASK = ["--task", "reverse", "--device", "cpu"]


@pytest.fixture
def run_with(home, tmp_path):
    """``run_with(*argv)``: trm-run's argv for the tiny task, out into tmp_path."""
    return lambda *argv: [*TASK, "--out", str(tmp_path / "runs"), *argv]


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    return copy


# -- --set: shapes, types and ranges ----------------------------------------------------------

SET_CASES = [
    # (assignment, fragments the one line must hold)
    ("model=5", ["model is a mapping"]),
    ("model=null", ["model is a mapping"]),
    ("data=null", ["data is a mapping"]),
    ("train=[1, 2]", ["train is a mapping"]),
    ("eval=abc", ["eval is a mapping"]),
    ("strategy=5", ["strategy is a mapping"]),
    ("data.options=null", ["data.options is a mapping"]),
    ("model.options=3", ["model.options is a mapping"]),
    ("data.options.seed.x=1", ["data.options.seed is 0, not a mapping"]),
    ("train.steps=abc", ["train.steps must be an integer", "'abc'"]),
    ("train.steps=2.5", ["train.steps must be an integer", "2.5"]),
    ("train.steps=true", ["train.steps must be an integer"]),
    ("train.steps=0", ["train.steps must be positive"]),
    ("train.steps=-3", ["train.steps must be positive"]),
    ("train.epochs=-1", ["train.epochs must be positive"]),
    ("train.epochs=abc", ["train.epochs must be a number"]),
    ("train.seed=abc", ["train.seed must be an integer"]),
    ("train.seed=1.5", ["train.seed must be an integer"]),
    ("train.compile=maybe", ["train.compile must be a boolean", "'maybe'"]),
    ("train.ema=2", ["train.ema must be a boolean"]),
    ("train.prefetch=[]", ["train.prefetch must be a boolean"]),
    ("eval.early_halting=1", ["eval.early_halting must be a boolean"]),
    ("train.lr=-1", ["train.lr must be >= 0"]),
    ("train.lr=nan", ["train.lr must be a finite number"]),
    ("train.lr=.inf", ["train.lr must be a finite number"]),
    ("train.lr=fast", ["train.lr must be a number"]),
    ("train.beta2=1.5", ["train.beta2 must be within [0, 1]"]),
    ("train.global_batch_size=0", ["train.global_batch_size must be positive"]),
    ("train.log_interval=0", ["train.log_interval must be positive"]),
    ("train.loss=x", ["train.loss 'x' is not one of stablemax, softmax"]),
    ("eval.batch_size=0", ["eval.batch_size must be positive"]),
    ("eval.images=-1", ["eval.images must be >= 0"]),
    ("eval.max_examples=0", ["eval.max_examples must be positive"]),
    ("eval.max_examples=-1", ["eval.max_examples must be positive"]),
    ("eval.interval_steps=-1", ["eval.interval_steps must be positive"]),
    ("eval.interval_steps=0", ["eval.interval_steps must be positive"]),
    ("eval.interval_epochs=0", ["eval.interval_epochs must be positive"]),
    ("data.augmentations=-1", ["data.augmentations must be >= 0"]),
    ("data.augmentations=1.5", ["data.augmentations must be an integer"]),
    ("data.cache_dir=5", ["data.cache_dir must be a string"]),
    ("model.hidden_size=64.5", ["model.hidden_size must be an integer", "64.5"]),
    ("model.hidden_size=0", ["model.hidden_size must be positive"]),
    ("model.expansion=0.01", ["model.expansion 0.01", "no hidden units"]),
    ("model.expansion=abc", ["model.expansion must be a number"]),
    ("model.dtype=float64", ["model.dtype 'float64' is not one of auto, float32"]),
    ("model.mixer=nope", ["nope", "mlp"]),
    ("model.halt_exploration_prob=2", ["model.halt_exploration_prob must be within [0, 1]"]),
    ("model.options.grid.positions=rotary", ["positions 'rotary' is not one of"]),
    ("train.lrr=1", ["train.lrr", "did you mean 'lr'"]),
    ("trian.lr=1", ["trian", "did you mean 'train'"]),
    ("model.num_heads=4", ["model.options.attention.num_heads"]),
    ("strategy.name=nope", ["nope", "rollouts"]),
    ("train.steps", ["dotted.key=value"]),
    ("=3", ["dotted.key=value"]),
    ("train.steps=[1", ["train.steps", "not YAML"]),
]


@pytest.mark.parametrize(("assignment", "fragments"), SET_CASES, ids=[c[0] for c in SET_CASES])
def test_set_mistakes_are_one_line(refused, run_with, tmp_path, assignment, fragments):
    refused(run_main, run_with("--set", assignment), *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=st.sampled_from(
        [
            "train.steps",
            "train.seed",
            "train.global_batch_size",
            "eval.batch_size",
            "eval.max_examples",
            "data.augmentations",
            "model.hidden_size",
            "train.compile",
            "train.ema",
            "eval.early_halting",
            "train.lr",
            "model.expansion",
        ]
    ),
    value=st.one_of(
        st.text(alphabet="abcxyz!?", min_size=1, max_size=5),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer()),
        st.integers(max_value=-1),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_any_wrong_value_is_one_line_naming_its_key(refused, home, tmp_path_factory, key, value):
    """Wrong types and out-of-range values of every kind the YAML of --set can spell."""
    out = tmp_path_factory.mktemp("runs")
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    text = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}.get(text, text)
    if key == "train.lr" and isinstance(value, float) and value >= 0:
        return  # a non-negative rate is a rate
    if key == "train.seed" and isinstance(value, int):
        return  # any integer seeds
    if key == "model.expansion" and isinstance(value, float) and value >= 0.1:
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRM_DATA_DIR", str(home[0] / "data"))
        refused(run_main, [*TASK, "--out", str(out), "--set", f"{key}={text}"], key)
    assert not any(out.iterdir())


# -- command-line arguments -------------------------------------------------------------------

ARG_CASES = [
    (["--max-steps", "0"], ["--max-steps", "must be positive"]),
    (["--max-steps", "-1"], ["--max-steps", "must be positive"]),
    (["--max-steps", "abc"], ["--max-steps", "not an integer"]),
    (["--max-steps", "2.5"], ["--max-steps", "not an integer"]),
    (["--time-budget", "nan"], ["--time-budget", "positive number"]),
    (["--time-budget", "-1"], ["--time-budget", "positive number"]),
    (["--time-budget", "inf"], ["--time-budget", "positive number"]),
    (["--time-budget", "soon"], ["--time-budget", "not a number"]),
    (["--device", "bogus"], ["bogus", "cpu"]),
    (["--preset", "gpu"], ["no preset 'gpu'", "cpu"]),
    (["--mixer", "mpl"], ["mpl", "mlp"]),
    (["--frobnicate"], ["unrecognized arguments: --frobnicate", "trm-run --help"]),
    (["--resume", "x", "--preset", "cpu"], ["--resume continues a run as configured"]),
]


@pytest.mark.parametrize(("argv", "fragments"), ARG_CASES, ids=[" ".join(c[0]) for c in ARG_CASES])
def test_argument_mistakes_are_one_line(refused, run_with, argv, fragments):
    refused(run_main, run_with(*argv), *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_the_machine_lacks_is_one_line(refused, home, tmp_path):
    task = ["--task", "reverse", "--out", tmp_path]
    refused(run_main, [*task, "--device", "cuda"], "CUDA is not available")
    refused(run_main, [*task, "--set", "device=cuda:1"], "cuda:1")
    refused(run_main, [*task, "--set", "device=bogus"], "bogus", "cpu")
    refused(run_main, [*task, "--set", "device=5"], "device", "5")


def test_unknown_task_names_the_installed_ones(refused, home, tmp_path):
    refused(run_main, ["--task", "revers", "--device", "cpu", "--out", tmp_path], "reverse")
    refused(run_main, ["--device", "cpu", "--out", tmp_path], "--task is required", "reverse")


# -- --config files ---------------------------------------------------------------------------

CONFIG_CASES = [
    # (file content, fragments; "{path}" stands for the file's path)
    (b"\xff\xfe\x00garbage\x81", ["{path}", "not UTF-8"]),
    (b"train:\n  steps: [1\n", ["{path}", "line", "not valid YAML"]),
    (b"train:\n\tsteps: 1\n", ["{path}", "not valid YAML"]),
    (b"- 1\n- 2\n", ["{path}", "must be a mapping of sections"]),
    (b"", ["{path}", "must be a mapping of sections"]),
    (b"model: 5\n", ["{path}", "model must be a mapping"]),
    (b"train: [1, 2]\n", ["{path}", "train must be a mapping"]),
    (b"data: null\n", ["{path}", "data must be a mapping", "leave it out"]),
    (b"data:\n  options: 7\n", ["{path}", "data.options must be a mapping"]),
    (b"train:\n  steps: 2.5\n", ["train.steps must be an integer"]),
    (b"train:\n  compile: maybe\n", ["train.compile must be a boolean"]),
    (b"trian:\n  steps: 2\n", ["trian", "did you mean 'train'"]),
    (b"[" * 50_000 + b"]" * 50_000, ["{path}", "nested too deeply"]),
]


@pytest.mark.parametrize(
    ("content", "fragments"), CONFIG_CASES, ids=[repr(c[0][:20]) for c in CONFIG_CASES]
)
def test_config_file_mistakes_are_one_line(refused, run_with, tmp_path, content, fragments):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    refused(
        run_main, run_with("--config", path), *[f.replace("{path}", str(path)) for f in fragments]
    )


def test_a_config_file_that_is_missing_or_a_folder_is_one_line(refused, run_with, tmp_path):
    refused(run_main, run_with("--config", tmp_path / "none.yaml"), "none.yaml", "cannot read")
    refused(run_main, run_with("--config", tmp_path), str(tmp_path), "cannot read")


# -- folders that cannot be written -----------------------------------------------------------


def test_an_out_folder_that_cannot_be_made_is_one_line(refused, home, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused(
        run_main, [*TASK, "--out", blocker / "runs", "--set", "train.steps=2"], "--out", "a-file"
    )
    assert blocker.read_text() == "not a folder"


def test_a_cache_dir_that_cannot_be_made_is_one_line(refused, run_with, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = refused(
        run_main, run_with("--set", f"data.cache_dir={blocker}/cache"), "a-file", "data.cache_dir"
    )
    assert "nothing half-built was kept" in line


# -- run folders: --resume, trm-eval, trm-solve -----------------------------------------------

RUN_FILE_CASES = [
    # (file in the run folder, content, fragments)
    ("config.yaml", b"\x80\x81\x82", ["config.yaml", "not UTF-8"]),
    ("config.yaml", b"task: [\n", ["config.yaml", "not valid YAML"]),
    ("config.yaml", b"just a string\n", ["config.yaml", "must be a mapping of sections"]),
    ("config.yaml", b"task: reverse\nmodel: 5\n", ["config.yaml", "model must be a mapping"]),
    ("config.yaml", b"task: reverse\n", ["config.yaml", "the model section is missing"]),
    ("checkpoints/last.pt", b"not a checkpoint", ["last.pt", "not a readable PyTorch"]),
    ("checkpoints/last.pt", b"", ["last.pt"]),
]


@pytest.mark.parametrize("command", ["resume", "eval", "solve"])
@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    RUN_FILE_CASES,
    ids=[f"{c[0]}:{c[1][:12]!r}" for c in RUN_FILE_CASES],
)
def test_a_damaged_run_folder_is_one_line(
    refused, home, tmp_path, command, name, content, fragments
):
    run = _copy_run(home[1], tmp_path)
    (run / name).write_bytes(content)
    argv = {
        "resume": (run_main, ["--resume", run]),
        "eval": (eval_main, ["--run", run, "--device", "cpu"]),
        "solve": (solve_main, ["--run", run, "01234012"]),
    }[command]
    refused(*argv, *fragments)


@pytest.mark.parametrize("command", ["resume", "eval", "solve"])
def test_a_folder_that_is_not_a_run_is_one_line(refused, home, tmp_path, command):
    argv = {
        "resume": (run_main, ["--resume", tmp_path]),
        "eval": (eval_main, ["--run", tmp_path, "--device", "cpu"]),
        "solve": (solve_main, ["--run", tmp_path, "01234012"]),
    }[command]
    refused(*argv, str(tmp_path), "not a run folder")


def test_a_checkpoint_from_another_model_is_refused_by_solve_and_eval(refused, home, tmp_path):
    """A checkpoint copied in from a run of another size: named, never a shape traceback."""
    folder, run = home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRM_DATA_DIR", str(folder / "data"))
        other = tmp_path / "other"
        assert run_main([*TASK, "--out", str(other), "--set", "train.steps=1",
                         "--set", "model.hidden_size=48"]) == 0  # fmt: skip
    copy = _copy_run(run, tmp_path)
    (checkpoint,) = other.glob("*/checkpoints/last.pt")
    shutil.copy(checkpoint, copy / "checkpoints" / "last.pt")
    for main, argv in (
        (solve_main, ["--run", copy, "01234012"]),
        (eval_main, ["--run", copy, "--device", "cpu"]),
    ):
        refused(main, argv, "last.pt", "model.hidden_size 48 in the checkpoint, 32 in config.yaml")


def test_resume_without_a_checkpoint_never_starts_over_its_history(refused, home, tmp_path):
    """A run folder whose checkpoint is gone is refused, its history kept, and the line
    says how to start over: in a new run folder, from the same config."""
    run = _copy_run(home[1], tmp_path)
    (run / "checkpoints" / "last.pt").unlink()
    history = (run / "metrics.json").read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRM_DATA_DIR", str(home[0] / "data"))
        again = f"trm-run --task reverse --config {run / 'config.yaml'}"
        refused(run_main, ["--resume", run], "has no checkpoint to resume from", "history", again)
    assert (run / "metrics.json").read_bytes() == history
    assert not (run / "checkpoints" / "last.pt").exists()


def test_resume_past_max_steps_trains_nothing_and_says_so(home, tmp_path, capsys):
    run = _copy_run(home[1], tmp_path)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRM_DATA_DIR", str(home[0] / "data"))
        assert run_main(["--resume", str(run), "--max-steps", "1"]) == 0
    assert "leaves nothing to train" in capsys.readouterr().out
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


EVAL_CASES = [
    (["--max-examples", "0"], ["--max-examples", "must be positive"]),
    (["--max-examples", "x"], ["--max-examples", "not an integer"]),
    (["--strategy", "nope"], ["nope", "rollouts"]),
    (["--set", "strategy.k=2"], ["needs --strategy"]),
    (["--set", "train.lr=1"], ["--set train.lr", "strategy.<option>"]),
    (["--set", "eval.batch_size=0"], ["eval.batch_size must be a positive integer"]),
    (["--set", "eval.batch_size=2.5"], ["eval.batch_size must be a positive integer"]),
    (["--set", "nonsense"], ["KEY=VALUE"]),
    (["--split", "test"], ["--split applies to --strategy"]),
    (
        ["--strategy", "rollouts", "--set", "strategy.k=[1,"],
        ["--set strategy.k: the value is not YAML"],
    ),
    (
        ["--strategy", "unroll", "--metric", "exact_acuracy"],
        ["--metric exact_acuracy: not a metric", "did you mean 'exact_accuracy'", "token_accuracy"],
    ),
    (["--data", ""], ["argument --data: an empty name"]),
    (["--data", "/dev/null"], ["/dev/null", "not a reverse file"]),
    (["--strategy", "rollouts", "--set", "strategy.k=0"], ["k"]),
    (["--strategy", "rollouts", "--set", "strategy.k=abc"], ["k", "integer"]),
    (["--strategy", "rollouts", "--set", "strategy.kk=2"], ["kk", "did you mean 'k'"]),
    (["--device", "bogus"], ["bogus"]),
]


@pytest.mark.parametrize(
    ("argv", "fragments"), EVAL_CASES, ids=[" ".join(c[0]) for c in EVAL_CASES]
)
def test_eval_mistakes_are_one_line(refused, home, argv, fragments):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRM_DATA_DIR", str(home[0] / "data"))
        refused(eval_main, ["--run", home[1], *argv], *fragments)


SOLVE_CASES = [
    (["0123"], ["'0123' is not a puzzle", "expected 8 digits"]),
    (["puzzles.txt"], ["'puzzles.txt' is not a puzzle", "nor a file"]),
    (["--strategy", "nope", "01234012"], ["nope", "rollouts"]),
    (["--set", "strategy.k=2", "01234012"], ["needs --strategy"]),
    (["--device", "bogus", "01234012"], ["bogus"]),
]


@pytest.mark.parametrize(
    ("argv", "fragments"), SOLVE_CASES, ids=[" ".join(c[0]) for c in SOLVE_CASES]
)
def test_solve_mistakes_are_one_line(refused, home, argv, fragments):
    refused(solve_main, ["--run", home[1], *argv], *fragments)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"\xff\xfe0123\x00", ["not UTF-8"]),
        (b"01234012\n0123\n", ["0123"]),
    ],
)
def test_solve_puzzle_files_are_read_or_refused_in_one_line(
    refused, home, tmp_path, content, fragments
):
    path = tmp_path / "puzzles.txt"
    path.write_bytes(content)
    refused(solve_main, ["--run", home[1], path], str(path), *fragments)
    refused(solve_main, ["--run", home[1], tmp_path], str(tmp_path), "a folder")


# -- the other commands -----------------------------------------------------------------------


def test_convert_mistakes_are_one_line(refused, home, tmp_path):
    garbage = tmp_path / "reference.pt"
    garbage.write_bytes(b"\x00" * 64)
    out = tmp_path / "out.pt"
    refused(convert_main, [tmp_path / "none.pt", out], "none.pt", "no such checkpoint file")
    refused(convert_main, [garbage, out], "reference.pt", "not a readable PyTorch")
    torch.save({"x": torch.zeros(2)}, garbage)
    refused(convert_main, [garbage, out], "not a reference TRM state dict")
    refused(convert_main, [garbage, out, "-o", "nonsense"], "KEY=VALUE")
    out.write_text("keep me")
    refused(convert_main, [garbage, out], "exists; pass --force")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--task", "reverse", "--preset", "nope"], ["nope", "presets: cpu, paper"]),
        (["--task", "reverso"], ["reverso", "did you mean 'reverse'"]),
        ([], ["--task is required", "reverse"]),
        (["--task", "reverse", "--batch", "0"], ["--batch"]),
        (["--task", "reverse", "--steps", "abc"], ["--steps", "invalid int"]),
        (["--task", "reverse", "--dtype", "float64"], ["--dtype", "float32"]),
        (["--task", "reverse", "--device", "bogus"], ["bogus"]),
        (["--task", "reverse", "--set", "data.options.train=4"], ["takes model.KEY=VALUE"]),
        (["--task", "reverse", "--set", "model.hiden_size=8"], ["hiden_size", "hidden_size"]),
    ],
)
def test_bench_mistakes_are_one_line(refused, argv, fragments):
    with use_registry(tiny_task.registry()):
        refused(bench_main, argv, *fragments)


def test_plugins_mistakes_are_one_line(refused, home):
    refused(plugins_main, ["--kind", "mixr"], "mixr", "mixer")
    refused(plugins_main, ["--bogus"], "unrecognized arguments")


def test_a_recorded_run_config_round_trips_through_the_strict_types(home):
    """What trm-run writes, strict reading accepts (no value recorded as a string)."""
    config = yaml.safe_load((home[1] / "config.yaml").read_text())
    assert isinstance(config["train"]["compile"], bool | None)
    assert isinstance(config["train"]["steps"], int)


# -- the machine's limits ---------------------------------------------------------------------


def test_a_batch_no_machine_holds_is_refused_before_training(refused, run_with, tmp_path):
    line = refused(run_main, run_with("--set", "train.global_batch_size=100000000"), "GiB", "lower")
    assert "train.global_batch_size 100000000" in line


@pytest.mark.parametrize(
    "failure",
    [
        MemoryError(),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 40000000000000 bytes. Error code 12"
        ),
    ],
    ids=["MemoryError", "CPU allocator"],
)
def test_memory_running_out_mid_run_is_one_line(refused, run_with, monkeypatch, failure):
    import trm_core.trainer

    def out_of_memory(*args, **kwargs):
        raise failure

    monkeypatch.setattr(trm_core.trainer, "micro_step", out_of_memory)
    refused(run_main, run_with("--set", "train.steps=2"), "out of memory")


def test_a_full_disk_mid_run_is_one_line(refused, run_with, monkeypatch):
    import errno

    import trm_core.run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/config.yaml")

    monkeypatch.setattr(trm_core.run, "atomic_write_text", full)
    refused(run_main, run_with("--set", "train.steps=2"), "no space left on device")
