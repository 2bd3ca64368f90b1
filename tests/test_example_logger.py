"""The example logger distribution (examples/trm-logger-mlflow), installed by the
README's test command: a third-party logger through the ``register_loggers`` hook,
checked by reading back what a real run logged to a local MLflow file store (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trm_core.cli import eval_main, run_main
from trm_core.runlog import make_loggers

from . import tiny_task

pytestmark = pytest.mark.trm_plugins("trm-core", "trm-logger-mlflow")
REVERSE = ["--task", "reverse", "--preset", "cpu", "--device", "cpu"]


@pytest.fixture
def runs(trm_registry, tmp_path, monkeypatch) -> Path:
    trm_registry.add_plugin(tiny_task, distribution="tests")
    monkeypatch.setenv("TRM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "runs"


def _client(run: Path):
    from mlflow.tracking import MlflowClient

    record = json.loads((run / "mlflow_run.json").read_text())
    return MlflowClient(tracking_uri=record["tracking_uri"]), record["run_id"]


def _steps(client, run_id: str, key: str) -> list[int]:
    return [point.step for point in client.get_metric_history(run_id, key)]


def test_the_plugin_registers_a_logger(trm_registry):
    from trm_logger_mlflow import MLflow

    assert trm_registry.get("logger", "mlflow") is MLflow
    entry = trm_registry.entry("logger", "mlflow")
    assert entry.distribution == "trm-logger-mlflow"


def test_a_run_logs_params_metrics_and_resumes_into_the_same_mlflow_run(runs, capsys):
    argv = [*REVERSE, "--out", str(runs), "--set", "loggers.mlflow.experiment=reverse"]
    sets = ["train.steps=8", "train.log_interval=2", "eval.interval_steps=4"]
    assert run_main([*argv, *[f"--set={s}" for s in sets], "--max-steps", "4"]) == 0
    [run] = runs.iterdir()
    assert (run / "mlruns").is_dir()  # the default store: inside the run folder
    client, run_id = _client(run)
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.info.run_name == run.name
    assert client.get_experiment(logged.info.experiment_id).name == "reverse"
    assert logged.data.params["train.steps"] == "8"
    assert logged.data.params["loggers.mlflow.experiment"] == "reverse"
    assert _steps(client, run_id, "train/loss") == [2, 4]
    assert _steps(client, run_id, "eval/exact_accuracy") == [4]
    # TensorBoard stays on beside it.
    assert any(run.glob("events.out.tfevents.*"))

    capsys.readouterr()
    assert run_main(["--resume", str(run), "--device", "cpu"]) == 0
    again, same = _client(run)
    assert same == run_id  # the resumed run goes on in its MLflow run
    assert _steps(again, run_id, "train/loss") == [2, 4, 6, 8]
    assert _steps(again, run_id, "eval/exact_accuracy") == [4, 8]
    assert again.get_run(run_id).info.status == "FINISHED"
    history = json.loads((run / "metrics.json").read_text())
    final = history[-1]["metrics"]["exact_accuracy"]
    assert again.get_metric_history(run_id, "eval/exact_accuracy")[-1].value == final


def test_strategy_curves_from_trm_eval_go_to_the_runs_loggers(runs, capsys):
    argv = [*REVERSE, "--out", str(runs), "--set", "train.steps=2", "--set", "loggers.mlflow={}"]
    assert run_main(argv) == 0
    [run] = runs.iterdir()
    assert eval_main(["--run", str(run), "--strategy", "unroll"]) == 0
    client, run_id = _client(run)
    keys = {metric for metric in client.get_run(run_id).data.metrics}
    assert any(key.startswith("strategy/unroll/test/") for key in keys), keys


def test_only_the_loggers_named_run(runs):
    argv = [*REVERSE, "--out", str(runs), "--set", "train.steps=2"]
    assert run_main([*argv, "--set", "loggers.tensorboard=null"]) == 0
    [run] = runs.iterdir()
    assert not any(run.glob("events.out.tfevents.*")) and not (run / "mlruns").exists()


def test_bad_logger_settings_are_one_line_naming_the_key(runs, capsys):
    argv = [*REVERSE, "--out", str(runs), "--set", "train.steps=2"]
    assert run_main([*argv, "--set", "loggers.mlflow.experimnt=x"]) == 2
    err = capsys.readouterr().err
    assert "loggers.mlflow.experimnt" in err and "experiment" in err and len(err.splitlines()) == 1
    assert run_main([*argv, "--set", "loggers.wandb={}"]) == 2
    err = capsys.readouterr().err
    assert "wandb" in err and "mlflow" in err and len(err.splitlines()) == 1
    assert not runs.exists()  # refused before any run folder was made


def test_make_loggers_drops_a_null_section(tmp_path, trm_registry):
    loggers = make_loggers({"tensorboard": None, "mlflow": {"run_name": "x"}}, tmp_path)
    assert [type(logger).__name__ for logger in loggers] == ["MLflow"]
    assert loggers[0].options.run_name == "x"
