"""trm-run top to bottom as a library function: trm_core.train."""

from __future__ import annotations

import json

import attrs
import pytest
import torch

import trm_core
from trm_core.cli import run_main
from trm_core.errors import ConfigError


def test_train_runs_a_resolved_config_as_trm_run_does(reverse, capsys):
    mapping, _, chosen = trm_core.resolve(
        "reverse", preset="cpu", overrides=["train.steps=4", "device=cpu"]
    )
    lines = []
    result = trm_core.train(mapping, out=reverse, say=lines.append, chosen=chosen)
    assert result.trained and result.step == result.total_steps == 4
    assert result.run_dir.parent == reverse and result.checkpoint.is_file()
    assert (result.model_dir / "model.safetensors").is_file()
    history = json.loads((result.run_dir / "metrics.json").read_text())
    assert history[-1]["metrics"] == result.metrics
    assert lines[0].startswith("trm-run: task reverse, mixer mlp, preset cpu")

    # Resumed from the folder alone (its config.yaml), further than it went.
    again = trm_core.train(resume=result.run_dir, max_steps=4, say=lines.append)
    assert not again.trained and again.step == 4  # nothing left below --max-steps


def test_a_value_a_flag_overrides_is_still_checked(reverse, capsys):
    argv = ["--task", "reverse", "--preset", "cpu", "--out", str(reverse)]
    assert run_main([*argv, "--set", "device=tpu", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "device 'tpu' is not a device" in err and len(err.splitlines()) == 1
    assert not reverse.exists()


def test_the_device_argument_is_checked(reverse):
    mapping, _, _ = trm_core.resolve("reverse", preset="cpu", overrides=["train.steps=1"])
    with pytest.raises(ConfigError, match="--device 'gpu' is not a device"):
        trm_core.train(mapping, out=reverse, device="gpu")


def test_every_check_comes_before_any_data_or_folder(reverse, tmp_path, monkeypatch):
    """A bad strategy option, logger or component option is refused before the data is
    built (the data folder stays empty) and before a run folder is made."""
    data = tmp_path / "data"
    base = ["train.steps=1", "device=cpu"]
    for bad, key in (
        ("strategy.kk=3", "strategy.kk is set but strategy.name is not"),
        ("strategy.name=rollouts --set strategy.kk=3", "strategy.kk"),
        ("loggers.nosuch={}", "nosuch"),
        ("loggers.tensorboard.every=3", "logger 'tensorboard' takes no options"),
        ("model.options.mlp.nosuch=1", "model.options.mlp: the mixer 'mlp' takes no options"),
    ):
        bad = bad.split(" --set ")
        mapping, _, _ = trm_core.resolve("reverse", preset="cpu", overrides=[*base, *bad])
        with pytest.raises((ConfigError, trm_core.PluginError), match=key):
            trm_core.train(mapping, out=reverse)
        assert not reverse.exists() and not (data.exists() and any(data.iterdir()))


def test_the_training_flops_are_reported(reverse, capsys):
    from trm_core.flops import format_flops, step_flops

    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(reverse)]
    assert run_main([*argv, "--set", "train.steps=4", "--set", "train.log_interval=2"]) == 0
    out = capsys.readouterr().out
    [run] = reverse.iterdir()
    config = trm_core.run.read_config(run)
    per_step = step_flops(config.model, config.train.global_batch_size)["total"]
    history = json.loads((run / "metrics.json").read_text())
    assert history[-1]["train_flops"] == 4 * per_step
    assert f"({format_flops(4 * per_step)} of training)" in out
    assert format_flops(3.27e15) == "3.27 PFLOP" and format_flops(8.12e11) == "812 GFLOP"


def test_a_batch_too_large_for_the_device_names_an_accumulate_that_fits(monkeypatch):
    import trm_core.devices as devices

    from . import tiny_task

    config = tiny_task.run_config(train={"global_batch_size": 64})
    examples, needed = devices.micro_batch(config)
    assert examples == 64 and needed > 0
    # Twice the memory is refused: 2/7 of the batch's fits, so micro-batches of 16.
    monkeypatch.setattr(devices, "memory_of", lambda device: needed // 7)
    line = devices.training_memory_problem(config, torch.device("cpu"))
    assert "set train.accumulate=4 (micro-batches of 16 examples, the same training)" in line
    halved = attrs.evolve(config, train=attrs.evolve(config.train, accumulate=4))
    assert devices.micro_batch(halved)[0] == 16
    assert devices.training_memory_problem(halved, torch.device("cpu")) is None
    monkeypatch.setattr(devices, "memory_of", lambda device: 1)  # nothing fits
    assert devices.training_memory_problem(config, torch.device("cpu")).endswith(
        "; lower train.global_batch_size"
    )


def test_an_accumulate_that_does_not_divide_the_batch_is_one_line(reverse, capsys):
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(reverse)]
    assert run_main([*argv, "--set", "train.accumulate=3"]) == 2
    err = capsys.readouterr().err
    assert "train.global_batch_size (32) must divide evenly over 1 process(es) x " in err
    assert "train.accumulate 3" in err and len(err.splitlines()) == 1
    assert not reverse.exists()  # refused before any data or run folder
