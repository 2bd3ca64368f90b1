"""benchmarks/gpu_check.py as far as a CPU allows: its argument handling, its plan (every
stage and command of a GPU run), and its torchrun stage run for real, tiny, on the CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_cuda(machine):
    machine.setattr(torch.cuda, "is_available", lambda: False)
    machine.setattr(torch.cuda, "device_count", lambda: 0)


def test_usage_errors_are_one_line_and_exit_2(no_cuda, capsys):
    check = _load()
    for argv, expected in [
        (["--stages", "bench", "tset"], "unknown stage 'tset'; stages: env, tests, bench"),
        (["--device", "cuda"], "CUDA is not available on this machine; devices here: cpu; run"),
        (["--device", "cpu"], "--device cpu is no GPU: full sizes need CUDA (--quick runs"),
        (["--budget", "0"], "--budget must be > 0"),
    ]:
        assert check.main([*argv, "--no-install"]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, (argv, err)


def test_the_plan_names_every_stage_and_command(no_cuda, capsys, tmp_path):
    check = _load()
    assert check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for stage in ("env", "tests", "bench", "train", "torchrun"):
        assert f"== {stage} " in out, stage
    assert "-m pytest -q -p no:cacheprovider -m device --device cuda tests" in out
    for model, batch in check.PAPER_BENCHES:
        chosen = " ".join(check.MODELS[model])  # --task T --preset P [--set model.K=V]
        line = f"{chosen} --batch {batch} --dtype bfloat16 --device cuda"
        assert line in out and f"{line} --steps 10 --warmup 3 --json --quiet --compile" in out
    assert "run --task sudoku --preset paper-mlp --device cuda --max-steps 300" in out
    assert "torch.distributed.run --nproc-per-node 1 -m trm_core.cli run" in out
    assert "every stage run passed" in out and list(tmp_path.iterdir()) == []


def test_the_torchrun_stage_runs_tiny_on_the_cpu(tmp_path):
    """A 1-process torchrun (gloo here, NCCL on CUDA) trains a few steps and reports it."""
    argv = [sys.executable, SCRIPT, "--device", "cpu", "--quick", "--stages", "torchrun"]
    done = subprocess.run(
        [*map(str, argv), "--out", str(tmp_path), "--no-install"], cwd=ROOT,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "device cpu x1 processes (gloo)" in done.stdout
    assert "| 4 |" in done.stdout and "every stage run passed" in done.stdout
    assert (tmp_path / "torchrun.log").is_file()
