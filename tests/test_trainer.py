"""The trainer end to end on the tiny reverse task: learning, run folder, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import trm_core
from trm_core.cli import eval_main, run_main
from trm_core.config import build_run_config

from . import tiny_task

# The reverse task's cpu preset on the CPU (its preset pins dtype float32).
REVERSE = ["--task", "reverse", "--preset", "cpu", "--device", "cpu"]


def _only_run(runs: Path) -> Path:
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


# Bounds of the learning test, well inside the worst of the seeds and dtypes measured
# (see the test's docstring).
BOUNDS = {"loss_drop": 0.3, "token_accuracy": 0.35, "token_accuracy_rise": 0.1}


def train(out: Path, device: str, *extra: str) -> int:
    """trm-run on the reverse task (its preset pins the dtype, float32) for 80 steps."""
    argv = ["--task", "reverse", "--preset", "cpu", "--device", device, "--out", str(out)]
    return run_main([*argv, "--set", "train.steps=80", *extra])


def figures(run: Path) -> dict[str, float]:
    """What the learning test checks: the train loss's fall from the first logged value
    to the last, the final test token accuracy and its rise since the first evaluation."""
    losses = [e.value for e in _events(run).Scalars("train/loss")]
    history = json.loads((run / "metrics.json").read_text())
    first, last = history[0]["metrics"], history[-1]["metrics"]
    return {
        "loss_drop": losses[0] - losses[-1],
        "token_accuracy": last["token_accuracy"],
        "token_accuracy_rise": last["token_accuracy"] - first["token_accuracy"],
    }


@pytest.mark.device
def test_trm_run_learns_and_writes_a_complete_run_folder(reverse, device, capsys):
    """Figures measured with benchmarks/learning_margins.py over train.seed 0-4 on an AVX2
    CPU (bfloat16 emulated there; data, test set and all else fixed), and the bound:

    | figure | float32 | bfloat16 | bound |
    | --- | --- | --- | --- |
    | loss_drop | 0.689-0.895 | 0.639-0.899 | > 0.3 |
    | token_accuracy | 0.541-0.703 | 0.465-0.717 | > 0.35 |
    | token_accuracy_rise | 0.322-0.445 | 0.240-0.467 | > 0.1 |
    """
    code = train(reverse, device)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].startswith("trm-run: task reverse, mixer mlp, preset cpu")
    assert "final test metrics" in out and "tensorboard --logdir" in out
    assert "puzzle embeddings: 2 x 32 float32 = 0.0 MiB (encoder.puzzle_embedding" in out
    run = _only_run(reverse)

    # The resolved config re-runs: it parses back to the same configuration.
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert {"kind": "task", "name": "reverse", "distribution": "tests", "version": ""} in written[
        "plugins"
    ]
    config = build_run_config(written)
    assert config.train.steps == 80 and config.model.dtype == "float32"
    assert config.device == device

    # It learned: the loss fell and test accuracy is well above chance (1/5 per digit).
    found = figures(run)
    assert found["loss_drop"] > BOUNDS["loss_drop"], found
    assert found["token_accuracy"] > BOUNDS["token_accuracy"], found
    assert found["token_accuracy_rise"] > BOUNDS["token_accuracy_rise"], found
    history = json.loads((run / "metrics.json").read_text())
    assert [h["step"] for h in history] == [20, 40, 60, 80]
    events = _events(run)

    # TensorBoard holds the train scalars, eval metrics, images and hyper-parameters.
    tags = set(events.Tags()["scalars"])
    train_tags = ["loss", "lm_loss", "halt_loss", "token_accuracy", "exact_accuracy"]
    train_tags += ["halt_accuracy", "mean_steps", "lr", "examples_per_second", "grad_norm"]
    for name in train_tags:
        assert f"train/{name}" in tags, name
    assert {"eval/exact_accuracy", "eval/token_accuracy", "eval/valid_digits"} <= tags
    assert set(events.Tags()["images"]) == {"eval/puzzle_0", "eval/puzzle_1"}
    assert "hparams" in str(events.PluginTagToContent("hparams"))

    checkpoint = trm_core.read_checkpoint(run / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 80 and checkpoint["kind"] == "run"

    # trm-eval evaluates the saved run (EMA weights) and agrees with the last evaluation.
    assert eval_main(["--run", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["step"] == 80
    assert evaluated["metrics"]["token_accuracy"] == pytest.approx(
        history[-1]["metrics"]["token_accuracy"]
    )


def _final_state(run: Path) -> dict:
    return trm_core.read_checkpoint(run / "checkpoints" / "last.pt")


# A depth curriculum whose stages end at steps 6 and 18 (the resume at 12 falls in the
# second), with decaying supervision weights.
LEVERS = ["train.curriculum.a.until=0.25", "train.curriculum.a.think_steps=1",
          "train.curriculum.a.halt_max_steps=2", "train.curriculum.b.until=0.75",
          "train.curriculum.b.cycles=2", "train.supervision_decay=0.7"]  # fmt: skip


@pytest.mark.device
@pytest.mark.parametrize(
    "prefetch, accumulate, levers",
    [("false", 1, []), ("true", 1, []), ("false", 2, []), ("false", 1, LEVERS),
     ("false", 1, ["train.optimizer=muon", "train.muon_lr_scale=0.5"]),
     ("false", 1, ["train.optimizer=muon", "train.muon_from=0.75"])],
    ids=["plain", "prefetch", "accumulate", "curriculum", "muon", "muon-from"],
)  # fmt: skip
def test_resume_continues_exactly(reverse, tmp_path, capsys, device, prefetch, accumulate, levers):
    """N steps, then a resume to 2N, gives what 2N steps in one go give: on the CPU bit for
    bit (with batches made ahead on a thread or not, in micro-batches, under a depth
    curriculum, with Muon, with Muon taking over from Adam-atan2 after the resume at 12, at
    18); on CUDA within float noise (the sign-SGD sum of duplicate
    puzzle ids uses atomic adds there)."""
    common = ["--task", "reverse", "--preset", "cpu", "--device", device]
    common += ["--set", "train.steps=24", "--set", "eval.interval_steps=6"]
    common += ["--set", f"train.prefetch={prefetch}", "--set", f"train.accumulate={accumulate}"]
    for setting in levers:
        common += ["--set", setting]
    assert run_main([*common, "--out", str(tmp_path / "straight")]) == 0
    assert run_main([*common, "--out", str(tmp_path / "split"), "--max-steps", "12"]) == 0
    split_run = _only_run(tmp_path / "split")
    assert _final_state(split_run)["step"] == 12
    assert run_main(["--resume", str(split_run)]) == 0
    out = capsys.readouterr().out
    assert "resumed at step 12 of 24" in out
    assert ("micro-batch: 16 examples per forward" in out) == (accumulate == 2)

    straight, resumed = _final_state(_only_run(tmp_path / "straight")), _final_state(split_run)
    assert resumed["step"] == straight["step"] == 24
    for part in ("model", "ema"):
        for key, value in straight[part].items():
            if device == "cpu":
                assert torch.equal(value, resumed[part][key]), key
            else:
                torch.testing.assert_close(value, resumed[part][key], rtol=1e-4, atol=1e-5)
    accuracies = [[h["metrics"]["token_accuracy"] for h in run["history"]]
                  for run in (straight, resumed)]  # fmt: skip
    assert accuracies[0] == pytest.approx(accuracies[1], abs=0 if device == "cpu" else 0.02)


def test_resume_refuses_a_checkpoint_of_another_model(reverse, tmp_path, capsys):
    assert run_main([*REVERSE, "--out", str(reverse), "--set", "train.steps=2"]) == 0
    run = _only_run(reverse)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["hidden_size"] = 48
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert run_main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'config.yaml'} was edited since the checkpoint" in err
    assert "model.hidden_size 32 -> 48" in err and "--config" in err


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(reverse, monkeypatch, capsys):
    import trm_core.trainer as trainer_module

    real = trainer_module.act_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 7 else loss), metrics

    monkeypatch.setattr(trainer_module, "act_loss", poisoned)
    args = [*REVERSE, "--out", str(reverse), "--set", "train.steps=10"]
    assert run_main([*args, "--set", "eval.interval_steps=5"]) == 2
    err = capsys.readouterr().err
    run = _only_run(reverse)
    assert "non-finite loss (nan) at step 7" in err
    assert f"last good checkpoint is kept at {run / 'checkpoints' / 'last.pt'}" in err
    assert _final_state(run)["step"] == 5  # the checkpoint of step 5 survives untouched
    assert [h["step"] for h in json.loads((run / "metrics.json").read_text())] == [5]


def test_config_errors_name_the_key_and_the_choices(reverse, tmp_path, capsys):
    out = ["--out", str(reverse)]
    assert run_main([*REVERSE, *out, "--set", "train.lrr=1"]) == 2
    assert "no key 'lrr' in train (did you mean 'lr'?)" in capsys.readouterr().err
    assert run_main([*REVERSE, *out, "--preset", "gpu"]) == 2
    assert "no preset 'gpu'" in capsys.readouterr().err
    assert run_main(["--task", "revers", "--device", "cpu", *out]) == 2
    assert "unknown task 'revers' (did you mean 'reverse'?)" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hiden_size: 8\n")
    assert run_main([*REVERSE, *out, "--config", str(bad)]) == 2
    assert "unknown key" in capsys.readouterr().err and "hiden_size" in str(bad.read_text())
    assert not reverse.exists() or not any(reverse.iterdir())  # no run folder left behind


def test_runs_leave_the_task_presets_untouched(reverse):
    before = yaml.safe_dump(tiny_task.ReverseTask().presets())
    args = [*REVERSE, "--out", str(reverse), "--set", "train.steps=1"]
    assert run_main([*args, "--set", "data.options.train=64"]) == 0
    assert yaml.safe_dump(tiny_task.ReverseTask().presets()) == before


def test_by_mixer_section_and_early_halting_evaluation(reverse, capsys):
    args = [*REVERSE, "--mixer", "attention", "--out", str(reverse)]
    assert run_main([*args, "--set", "train.steps=4", "--set", "eval.early_halting=true"]) == 0
    run = _only_run(reverse)
    config = build_run_config(yaml.safe_load((run / "config.yaml").read_text()))
    assert config.model.mixer == "attention" and config.model.options["grid"]["positions"] == "rope"
    [record] = json.loads((run / "metrics.json").read_text())
    assert 1 <= record["metrics"]["early_halting/mean_steps"] <= 2
    assert len(record["exact_accuracy_by_steps"]) == config.model.halt_max_steps


def test_extra_splits_are_scored_at_the_end_and_load_run_predicts(reverse, capsys):
    argv = [*REVERSE, "--out", str(reverse), "--set", "train.steps=40"]
    assert run_main([*argv, "--set", "data.options.extra=48"]) == 0
    out = capsys.readouterr().out
    assert "more/exact_accuracy" in out and "more/examples" in out
    run = _only_run(reverse)
    history = json.loads((run / "metrics.json").read_text())
    assert "more/token_accuracy" not in history[0]["metrics"]  # step 20: not the end
    final = history[-1]["metrics"]
    assert final["more/examples"] == 48 and final["examples"] == 64
    assert "eval/more/puzzle_0" in _events(run).Tags()["images"]

    # load_run answers with the saved EMA weights, exactly as the final evaluation did.
    loaded = trm_core.load_run(run)
    assert loaded.ema and loaded.step == 40 and loaded.config.task == "reverse"
    test = trm_core.read_split(sorted((reverse.parent / "data").iterdir())[0] / "test")
    predictions, halts = loaded.predict(np.asarray(test.inputs), batch_size=10)
    assert predictions.shape == (64, 8) and halts.shape == (64,)
    labels = np.asarray(test.labels)
    exact = float((predictions == labels).all(-1).mean())
    assert exact == pytest.approx(final["exact_accuracy"])
    assert float((predictions == labels).mean()) == pytest.approx(final["token_accuracy"])
    with pytest.raises(ValueError, match=r"inputs must be \[N, 8\]"):
        loaded.predict(np.zeros((2, 9), dtype=np.int64))


def test_the_task_scores_each_evaluation_and_writes_into_the_run_folder(
    reverse, monkeypatch, capsys
):
    seen = []

    def evaluate_predictions(self, split, rows, predictions, halt_logits, out_dir, images):
        seen.append((split.path.name, len(rows), halt_logits.shape, out_dir))
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "answers.txt").write_text(str(len(rows)))
        return {"answered": float(len(rows))}, []

    monkeypatch.setattr(tiny_task.ReverseTask, "evaluate_predictions", evaluate_predictions)
    argv = [*REVERSE, "--out", str(reverse), "--set", "train.steps=20"]
    assert run_main([*argv, "--set", "data.options.extra=48"]) == 0
    run = _only_run(reverse)
    assert seen == [("test", 64, (64,), run), ("more", 48, (48,), run / "more")]
    assert (run / "answers.txt").read_text() == "64" and (run / "more/answers.txt").exists()
    final = json.loads((run / "metrics.json").read_text())[-1]["metrics"]
    assert final["answered"] == 64 and final["more/answered"] == 48
    assert "eval/puzzle_0" not in _events(run).Tags()["images"]  # the task drew none

    (run / "answers.txt").unlink()
    capsys.readouterr()
    assert eval_main(["--run", str(run), "--max-examples", "10"]) == 0
    assert seen[-2] == ("test", 10, (10,), run) and (run / "answers.txt").read_text() == "10"


def test_rows_with_hidden_answers_are_left_out_of_the_accuracies():
    from trm_core.evaluate import score

    labels = np.array([[3, 4], [0, 0], [3, 0]])
    prediction = np.array([[3, 4], [1, 1], [2, 2]])
    metrics = score(prediction, labels, np.array([1.0, 1.0, -1.0]), ignore_id=0)
    assert metrics == {"token_accuracy": 0.5, "exact_accuracy": 0.5, "halt_accuracy": 1.0}
    assert score(prediction[1:2], labels[1:2], None, ignore_id=0) == {}


def test_a_compiled_forward_trains_as_the_model_does(tiny_config, batch):
    """training_step with ``forward=torch.compile(model)`` (the trainer's default on CUDA):
    the compiled module is called, not truth-tested (an OptimizedModule has no len()), and
    it computes the step the plain model does. Dynamo's eager backend keeps it quick."""
    from trm_core.config import TrainConfig
    from trm_core.model import build_model
    from trm_core.optim import build_optimizers
    from trm_core.trainer import training_step

    losses = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(tiny_config, device="cpu")
        optimizer, rows = build_optimizers(model, TrainConfig())
        forward = torch.compile(model, backend="eager") if compiled else None
        carry = model.initial_carry(batch)
        for _ in range(2):
            result = training_step(model, carry, batch, optimizer, rows, batch_size=4,
                                   forward=forward)  # fmt: skip
            carry = result.carry
        losses.append(result.loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
