"""trm-bench: a short run's JSON, the analytic FLOP count checked by hand, usage errors.

No timing assertions: the numbers depend on the machine and its load. The models timed
come from installed tasks' presets (here Sudoku's paper recipes, the README's "tiny"
one with hidden size 128): trm-bench itself names no task.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from trm_core.bench import bench_config, format_result, main, step_flops

TINY = ["model.hidden_size=128"]  # the "tiny" model of the performance notes
#: trm-bench's arguments for the tiny Sudoku MLP model.
TINY_MLP = ["--task", "sudoku", "--preset", "paper-mlp", "--set", "model.hidden_size=128"]


def tiny(mixer: str) -> dict:
    return bench_config("sudoku", f"paper-{mixer}", overrides=TINY)[0]


# tiny-sudoku-mlp by hand: D = 128, L = 81 + 16 = 97, V = 11, 2 blocks, T = 3, n = 6.
# SwiGLU widths: round(4 * 97 * 2/3) = 259 -> 512; round(4 * 128 * 2/3) = 341 -> 512.
D, L, V, I_L, I_D, BLOCKS, T, N = 128, 97, 11, 512, 512, 2, 3, 6


def tiny_mlp_flops(b: int) -> dict[str, int]:
    mixer = 2 * (b * D) * L * (2 * I_L) + 2 * (b * D) * I_L * L  # gate/up + down, over L
    channel = 2 * (b * L) * D * (2 * I_D) + 2 * (b * L) * I_D * D  # gate/up + down, over D
    net = BLOCKS * (mixer + channel)
    heads = 2 * (b * L) * D * V + 2 * b * D * 2  # LM head on all L positions + halting head
    forward = T * (N + 1) * net + heads
    backward = 2 * ((N + 1) * net + heads)
    return {"net": net, "heads": heads, "forward": forward, "total": forward + backward}


def test_flops_of_the_tiny_presets_match_a_hand_count():
    hand = tiny_mlp_flops(2)
    assert hand["total"] == 10_681_388_544  # written out once, so the formula cannot drift
    flops = step_flops(tiny("mlp"), batch=2)
    assert flops["net_call"] == hand["net"]
    assert flops["heads"] == hand["heads"]
    assert flops["forward"] == hand["forward"]
    assert flops["total"] == hand["total"]
    assert step_flops(tiny("mlp"), batch=64)["total"] == 32 * hand["total"]

    # Attention: qkv 3D^2 + out D^2 per position, QK^T and AV L*D each (H heads x head_dim).
    b, heads = 2, 8
    head_dim = D // heads
    attention = (
        2 * b * L * D * 3 * D
        + 2 * b * heads * L * L * head_dim
        + 2 * b * heads * L * L * head_dim
        + 2 * b * L * D * D
    )
    att = step_flops(tiny("attention"), batch=b)
    assert att["mixer"] == attention
    channel = 2 * (b * L) * D * (2 * I_D) + 2 * (b * L) * I_D * D
    assert att["net_call"] == BLOCKS * (attention + channel)


def test_paper_presets_have_the_spec_parameter_counts():
    # The paper's parameter counts (arXiv:2510.04871: 5M for the Sudoku MLP model) pin the
    # preset architectures (and thus their FLOPs).
    import trm_core

    expected = {"paper-mlp": 5_028_866, "paper-attention": 6_828_034}
    for name, count in expected.items():
        config, preset = bench_config("sudoku", name, dtype="float32")
        assert preset == name
        model = trm_core.build_model(config, device="cpu")
        assert model.num_parameters() == count, name
    # Without --preset, the task's paper recipe (what a CUDA device trains by default).
    assert bench_config("sudoku", mixer="mlp")[1] == "paper-mlp"
    assert bench_config("sudoku")[1].startswith("paper")


@pytest.mark.device
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_short_run_prints_one_json_object(capsys, device, dtype):
    argv = [*TINY_MLP, "--batch", "2", "--steps", "2", "--warmup", "1"]
    assert main([*argv, "--device", device, "--dtype", dtype, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "step 2/2" in captured.err  # progress goes to stderr

    assert result["label"] == "sudoku paper-mlp model.hidden_size=128"
    assert result["config"]["hidden_size"] == 128 and result["config"]["mixer"] == "mlp"
    assert (result["batch"], result["steps"], result["warmup"]) == (2, 2, 1)
    assert result["dtype"] == dtype and result["device"].startswith(device)
    config = result["config"]
    assert config["dtype"] == dtype
    expected = {
        "hidden_size": 128, "seq_len": 81, "vocab_size": 11, "cycles": 3,
        "think_steps": 6, "mixer": "mlp", "puzzle_emb_len": 16,
        "puzzle_emb_dim": 128, "halt_max_steps": 16, "num_layers": 2, "expansion": 4.0,
    }  # fmt: skip
    assert {key: config[key] for key in expected} == expected
    assert config["options"]["grid"] == {"positions": "none"}  # the mlp mixer's need

    assert len(result["step_ms"]) == 2
    median = result["median_ms"]
    assert 0 < result["min_ms"] <= median <= result["max_ms"]
    assert result["examples_per_s"] == pytest.approx(2 / (median / 1e3))
    assert result["flops_per_step"] == tiny_mlp_flops(2)["total"]
    assert result["flops"]["total"] == result["flops_per_step"]
    achieved = result["flops_per_step"] / (median / 1e3) / 1e9
    assert result["achieved_gflops"] == pytest.approx(achieved)
    assert result["peak_gflops"] > 0 and result["peak_matmul_size"] >= 256
    # The peak is the better of the loops before and after the timed steps.
    assert result["peak_gflops"] == max(result["peak_start_gflops"], result["peak_end_gflops"])
    assert result["peak_mean_gflops"] <= result["peak_gflops"]
    assert result["peak_fraction"] == pytest.approx(achieved / result["peak_gflops"])
    assert result["parameters"] > 0 and result["threads"] >= 1
    if device == "cpu":  # no datasheet peak for a CPU
        assert result["mfu"] is None and result["datasheet_peak_tflops"] is None
    assert all(math.isfinite(t) for t in result["step_ms"])

    text = format_result(result)
    assert "median" in text and "examples/s" in text and "GFLOP/s" in text


def test_unknown_task_preset_or_setting_lists_the_choices(capsys):
    assert main(["--task", "sudoku", "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "task 'sudoku' has no preset 'tiny'" in err and "paper-mlp" in err
    assert main([]) == 2
    assert "--task is required; installed tasks:" in capsys.readouterr().err
    assert main(["--task", "sudok"]) == 2
    assert "did you mean 'sudoku'" in capsys.readouterr().err
    assert main(["--task", "sudoku", "--set", "train.lr=1"]) == 2
    assert "it takes model.KEY=VALUE" in capsys.readouterr().err
    assert main(["--task", "sudoku", "--set", "model.hiden_size=1"]) == 2
    assert "hidden_size" in capsys.readouterr().err


def test_bad_counts_are_usage_errors(capsys):
    assert main([*TINY_MLP, "--steps", "0"]) == 2
    assert main([*TINY_MLP, "--warmup", "-1"]) == 2
    assert "--warmup" in capsys.readouterr().err


def test_mfu_uses_the_datasheet_peak_or_the_one_given(monkeypatch, capsys):
    from trm_core import bench

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    assert bench.datasheet_peak_tflops(torch.device("cuda")) == 756.0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert bench.datasheet_peak_tflops(torch.device("cuda")) == 989.0
    assert bench.datasheet_peak_tflops(torch.device("cpu")) is None
    argv = [*TINY_MLP, "--batch", "1", "--steps", "1", "--warmup", "0"]
    argv += ["--device", "cpu", "--dtype", "float32", "--json", "--quiet"]
    assert main([*argv, "--peak-tflops", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mfu"] == pytest.approx(result["achieved_gflops"] / 500.0)
    assert "MFU" in format_result(result)
    assert main([*argv, "--peak-tflops", "0"]) == 2
    assert "--peak-tflops must be > 0" in capsys.readouterr().err


def test_the_bench_times_the_trainers_training_step(monkeypatch, tiny_config):
    """StepRunner.step is trm_core.trainer.training_step (the step Trainer.train_step
    takes), called with the runner's model, carry, optimisers and batch size."""
    from trm_core import bench, trainer

    calls = []

    def counted(model, carry, batch, optimizer, embedding_optimizers, **options):
        calls.append(options)
        return trainer.training_step(
            model, carry, batch, optimizer, embedding_optimizers, **options
        )

    monkeypatch.setattr(bench, "training_step", counted)
    runner = bench.StepRunner(tiny_config, batch=2, device="cpu")  # its dtype: float32
    losses = [runner.step() for _ in range(2)]
    assert len(calls) == 2 and all(math.isfinite(loss) for loss in losses)
    assert calls[0]["batch_size"] == 2 and calls[0]["forward"] is runner.forward


def test_compare_prints_the_ratio_against_a_saved_result(tmp_path, capsys):
    """--compare: the saved median over this one's, from the result of the same step in a
    file of one result or a list; the machine is recorded so the ratio says if it changed."""
    argv = [*TINY_MLP, "--batch", "1", "--steps", "1", "--warmup", "0"]
    argv += ["--device", "cpu", "--dtype", "float32", "--quiet"]
    assert main([*argv, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    machine = first["machine"]
    assert machine["cpus"] >= 1 and isinstance(machine["cpu_flags"], list)
    assert machine["native_bfloat16"] in (True, False) and machine["gpu"] is None

    slower = dict(first, median_ms=first["median_ms"] * 1000)  # a "before" 1000x slower
    other = dict(first, batch=64, median_ms=1.0)
    saved = tmp_path / "before.json"
    saved.write_text(json.dumps([other, slower]))
    assert main([*argv, "--json", "--compare", str(saved)]) == 0
    result = json.loads(capsys.readouterr().out)
    against = result["compare"]
    assert against["before_ms"] == slower["median_ms"] and against["same_machine"]
    assert against["speedup"] == pytest.approx(slower["median_ms"] / result["median_ms"])
    assert "compared" in format_result(result) and "x;" in format_result(result)

    moved = dict(slower, machine=dict(machine, cpu="another CPU"))
    saved.write_text(json.dumps(moved))
    assert main([*argv, "--compare", str(saved)]) == 0
    assert "another CPU: not a speed-up" in capsys.readouterr().out

    saved.write_text(json.dumps(other))
    assert main([*argv, "--compare", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "has no result for sudoku paper-mlp model.hidden_size=128" in err
    assert "batch 1" in err and "batch 64" in err
    for content, fragment in (("{", "line 1: not JSON"), ("[1, 2]", "not trm-bench --json")):
        saved.write_text(content)
        assert main([*argv, "--compare", str(saved)]) == 2
        assert fragment in capsys.readouterr().err
    assert main([*argv, "--compare", str(tmp_path / "none.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_the_profile_splits_a_step_into_its_categories(tiny_config):
    """--profile's split: every category present, the step's matmuls, norms and optimiser
    steps found, the parts summing to the profiled step's wall time."""
    from trm_core import bench

    tiny_config["mixer"] = "mlp"
    tiny_config["options"] = {"grid": {"positions": "none"}}
    runner = bench.StepRunner(tiny_config, batch=2, device="cpu")
    runner.step()
    table, split = bench.profile_step(runner)
    assert "aten::mm" in table
    assert list(split) == list(bench.CATEGORIES)
    for category in ("matmuls", "elementwise", "norms", "backward cat", "optimisers"):
        assert split[category] > 0, category
    assert all(ms >= 0 for ms in split.values())
    assert "profile of one step" in bench.format_split(split)
    assert "optimisers" in bench.format_split(split)
