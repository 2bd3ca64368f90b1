"""Model folders: trm-export writes one, load_model reads it (and everything else), read-only.

The tiny reverse task trains for a few steps; its run is exported and the folder is
used as a user would: trm-eval and trm-solve with --model, --data files, the Hub
(a stand-in at huggingface_hub's boundary, and a populated cache read offline),
and every way a folder can be damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import yaml

import trm_core
import trm_core.export
import trm_core.modelfolder
from trm_core.cli import convert_main, eval_main, run_main
from trm_core.export import main as export_main
from trm_core.solve import main as solve_main

from . import tiny_task

FILES = {"model.safetensors", "config.json", "README.md"}


def _train(runs: Path, *sets: str) -> Path:
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(runs)]
    for assignment in ("train.steps=8", "eval.interval_steps=8", *sets):
        argv += ["--set", assignment]
    assert run_main(argv) == 0
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run


@pytest.fixture
def run(reverse, capsys) -> Path:
    """A trained run of the reverse task (with an extra split), its output swallowed."""
    trained = _train(reverse, "data.options.extra=16")
    capsys.readouterr()
    return trained


def _eval_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert eval_main([*argv, "--json", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out)


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: kind, size, mtime and content hash (what a write changes)."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        seen[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return seen


# -- the folder ---------------------------------------------------------------------------


def test_trm_run_writes_a_model_folder_that_evaluates_as_the_run(run, capsys):
    model = run / "model"
    assert {p.name for p in model.iterdir()} == FILES
    for path in model.iterdir():  # no pickle: safetensors, JSON and text only
        head = path.read_bytes()[:2]
        assert head not in (b"\x80\x02", b"\x80\x04", b"PK"), path
    assert not list(run.glob(".model.*"))  # no staging folder left

    by_run = _eval_json(capsys, "--run", str(run))
    by_model = _eval_json(capsys, "--model", str(model))
    assert by_model["metrics"] == by_run["metrics"]  # bit for bit, every metric
    assert by_model["step"] == by_run["step"] == 8 and by_model["model"] == str(model)
    assert "more/exact_accuracy" in by_model["metrics"] and "seconds" not in by_model["metrics"]

    config = json.loads((model / "config.json").read_text())
    assert config["format"] == "trm-model" and config["task"] == "reverse"
    assert config["plugin_contract"] == trm_core.PLUGIN_CONTRACT
    assert config["trm_core"] == trm_core.__version__
    assert config["model"]["hidden_size"] == 32 and config["weights"]["ema"] is True
    assert config["components"]["mixer"]["distribution"] == "trm-core"
    assert config["run"]["data"]["options"]["extra"] == 16
    assert config["run"]["device"] == "auto" and config["run"]["data"]["cache_dir"] is None
    assert config["metrics"]["exact_accuracy"] == by_run["metrics"]["exact_accuracy"]
    assert config["task_state"] == {"train_examples": 256}  # the JSON part of the state


def test_the_model_card_has_front_matter_results_commands_and_versions(run):
    card = (run / "model" / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "trm"
    assert {"trm", "reverse", "mlp"} <= set(meta["tags"])
    assert "exact_accuracy" in meta["metrics"] and "token_accuracy" in meta["metrics"]
    config = json.loads((run / "model" / "config.json").read_text())
    exact = config["metrics"]["exact_accuracy"]
    assert f"| exact_accuracy | {exact:.4f} |" in body
    assert "| more/exact_accuracy |" in body  # the extra split too
    assert "8 training steps of 32 examples" in body and "preset `cpu`" in body
    assert "32 examples (Adam-atan2, learning rate" in body
    assert "trm-solve --model MODEL" in body and "trm-eval --model MODEL --data FILE" in body
    assert f"trm-core {trm_core.__version__} (plugin contract {trm_core.PLUGIN_CONTRACT})" in body
    assert f"{config['weights']['bytes']:,} bytes of float32 weights" in body


def test_the_card_shows_the_final_strategy_table(reverse, capsys):
    run = _train(reverse, "strategy.name=steps")
    printed = capsys.readouterr().out
    assert f"model:       {run / 'model'} (trm-solve --model {run / 'model'} PUZZLE)" in printed
    card = (run / "model" / "README.md").read_text()
    assert "Inference strategy `steps`" in card
    config = json.loads((run / "model" / "config.json").read_text())
    [report] = config["strategy"]["reports"]
    assert f"{report['split']}: {report['puzzles']} puzzles, exact_accuracy by selection" in card


def test_export_in_bfloat16_and_to_a_new_place(run, capsys, tmp_path):
    out = tmp_path / "shared" / "reverse-bf16"
    assert export_main([str(run), str(out), "--dtype", "bfloat16"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_tensor(key).dtype for key in weights.keys()}  # noqa: SIM118
    assert torch.bfloat16 in dtypes and torch.float32 not in dtypes
    float32 = (run / "model" / "model.safetensors").stat().st_size
    assert (out / "model.safetensors").stat().st_size < 0.6 * float32

    loaded = trm_core.load_model(out)
    assert loaded.model.encoder.embed_tokens.weight.dtype == torch.float32  # computed as trained
    reference = trm_core.load_model(run / "model")
    for (name, ours), (_, theirs) in zip(
        loaded.model.state_dict().items(), reference.model.state_dict().items(), strict=True
    ):
        assert torch.equal(ours, theirs.to(torch.bfloat16).to(ours.dtype)), name


def test_load_model_takes_a_folder_a_run_and_a_checkpoint_alike(run):
    inputs = np.array([[1, 2, 3, 4, 5, 1, 2, 3], [5, 5, 4, 4, 3, 3, 2, 2]])
    answers = []
    for source in (run / "model", run, run / "checkpoints" / "last.pt", str(run / "model")):
        loaded = trm_core.load_model(source)
        assert loaded.step == 8 and loaded.ema and loaded.config.task == "reverse"
        assert not loaded.model.training
        answers.append(loaded.predict(inputs))
    for predictions, halts in answers[1:]:
        assert np.array_equal(predictions, answers[0][0]) and np.array_equal(halts, answers[0][1])
    assert trm_core.load_run(run).record == trm_core.load_model(run / "model").record
    # The task's state came back with the folder (arrays from model.safetensors).
    state = trm_core.load_model(run / "model").task.state
    assert state["train_examples"] == 256 and state["first_row"].shape == (8,)


def test_trm_solve_on_a_read_only_copy_writes_nothing(run, capsys, tmp_path, monkeypatch):
    copy = tmp_path / "read-only"
    shutil.copytree(run / "model", copy)
    for path in [copy, *copy.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _tree(tmp_path)

    real_open = open

    def no_writes(file, mode="r", *args, **kwargs):  # root ignores the modes: catch it here
        if any(flag in mode for flag in "wax+") and str(file).startswith(str(tmp_path)):
            raise AssertionError(f"wrote {file}")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_writes)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert solve_main(["--model", str(copy), "01234012"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{copy} (reverse, step 8, EMA weights), 1 puzzle(s)")
    assert _tree(tmp_path) == before


def test_export_replaces_only_with_force_and_leaves_nothing_half_written(run, capsys, tmp_path):
    out = tmp_path / "m"
    assert export_main([str(run), str(out)]) == 0
    before = _tree(out)
    capsys.readouterr()
    assert export_main([str(run), str(out)]) == 2
    assert f"error: {out} exists; pass --force to replace it" in capsys.readouterr().err
    assert _tree(out) == before
    assert export_main([str(run), str(out), "--force"]) == 0
    assert sorted(_tree(out)) == sorted(before)

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert export_main([str(run), str(tmp_path / "notes"), "--force"]) == 2
    assert "is a folder that is not a model folder" in capsys.readouterr().err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_a_failed_export_leaves_no_folder_and_a_killed_ones_staging_goes(
    run, tmp_path, monkeypatch, capsys
):
    exports = tmp_path / "exports"
    out = exports / "m"
    written = []
    real = trm_core.modelfolder.write_synced

    def fail_second(path, data):
        written.append(path.name)
        if len(written) == 2:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(trm_core.modelfolder, "write_synced", fail_second)
    assert export_main([str(run), str(out)]) == 2
    assert "no space left on device" in capsys.readouterr().err
    assert list(exports.iterdir()) == []  # neither OUT nor a staging folder
    monkeypatch.undo()

    abandoned = exports / ".m.k3x9a0bq.export"  # what a killed export leaves
    abandoned.mkdir()
    (abandoned / ".lock").write_text("")
    (abandoned / "model.safetensors").write_bytes(b"half")
    assert export_main([str(run), str(out)]) == 0
    assert sorted(p.name for p in exports.iterdir()) == ["m"]


# -- the data a user brings ----------------------------------------------------------------


def test_trm_eval_scores_data_files_with_and_without_a_strategy(run, capsys, tmp_path):
    good = tmp_path / "held-out.rev"
    good.write_text("01234012\n44332211\n00000000\n")
    more = tmp_path / "more.rev"
    more.write_text("12341234\n")
    model = run / "model"
    scored = _eval_json(capsys, "--model", str(model), "--data", str(good), "--data", str(more))
    metrics = scored["metrics"]
    assert metrics["held-out/examples"] == 3 and metrics["more/examples"] == 1
    assert "exact_accuracy" not in metrics  # no test split: only the files
    # The same as predict's answers, scored by hand.
    loaded = trm_core.load_model(model)
    inputs = np.stack([loaded.task.parse_puzzle(line) for line in good.read_text().split()])
    predictions, _ = loaded.predict(inputs)
    exact = float((predictions == inputs[:, ::-1]).all(-1).mean())
    assert metrics["held-out/exact_accuracy"] == pytest.approx(exact)
    # --run takes --data too; nothing is written into the run for other data.
    before = _tree(run)
    assert _eval_json(capsys, "--run", str(run), "--data", str(good))["metrics"] == {
        key: value for key, value in metrics.items() if key.startswith("held-out/")
    }
    assert _tree(run) == before

    with_strategy = _eval_json(
        capsys, "--model", str(model), "--data", str(good), "--strategy", "unroll"
    )
    assert [report["split"] for report in with_strategy["reports"]] == ["held-out"]


@pytest.mark.parametrize(
    ("content", "name", "fragments"),
    [
        ("01234012\n", "puzzles.txt", ["puzzles.txt: not a reverse file (*.rev)"]),
        ("01234012\n0123\n", "short.rev", ["short.rev, line 2", "expected 8 digits"]),
    ],
)
def test_a_data_file_the_task_refuses_is_one_line(run, capsys, tmp_path, content, name, fragments):
    path = tmp_path / name
    path.write_text(content)
    capsys.readouterr()
    assert eval_main(["--model", str(run / "model"), "--data", str(path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_data_of_another_size_is_refused_by_the_engine(run, capsys, tmp_path, monkeypatch):
    def wide(self, path):  # a task that reads 9-token puzzles for an 8-token model
        inputs = np.ones((2, 9), dtype=np.int64)
        return trm_core.make_split(path, inputs, inputs)

    monkeypatch.setattr(tiny_task.ReverseTask, "read_data", wide)
    path = tmp_path / "wide.rev"
    path.write_text("x")
    assert eval_main(["--model", str(run / "model"), "--data", str(path), "--device", "cpu"]) == 2
    assert "wide.rev: puzzles of 9 tokens; the model takes 8" in capsys.readouterr().err


# -- large puzzle-embedding tables -----------------------------------------------------------


def test_a_large_embedding_table_keeps_the_rows_its_evaluation_uses(
    reverse, capsys, monkeypatch, tmp_path
):
    monkeypatch.setattr(trm_core.export, "KEEP_ALL_UP_TO", 8)
    run = _train(reverse, "data.options.identifiers=40", "model.puzzle_emb_dim=16")
    capsys.readouterr()
    config = json.loads((run / "model" / "config.json").read_text())
    kept = config["weights"]["puzzle_embeddings"]["encoder.puzzle_embedding.weights"]
    assert kept == {"identifiers": 41, "rows_kept": 21}  # test ids 1..20 and the blank 0
    by_run = _eval_json(capsys, "--run", str(run))
    by_model = _eval_json(capsys, "--model", str(run / "model"))
    assert by_model["metrics"] == by_run["metrics"]

    table = trm_core.load_model(run / "model").model.encoder.puzzle_embedding
    full = trm_core.load_run(run).model.encoder.puzzle_embedding.weights
    identifiers, rows = table.kept()
    assert identifiers.tolist() == list(range(21)) and torch.equal(rows, full[:21])
    assert torch.equal(table(torch.tensor([30, 0, 5])), full[[0, 0, 5]])  # dropped: blank

    everything = tmp_path / "all"
    assert export_main([str(run), str(everything), "--keep-all-embeddings"]) == 0
    config = json.loads((everything / "config.json").read_text())
    assert config["weights"]["puzzle_embeddings"]["encoder.puzzle_embedding.weights"] == {
        "identifiers": 41,
        "rows_kept": 41,
    }
    # Exported again from the compact folder: the same rows, nothing to rebuild.
    again = tmp_path / "again"
    assert export_main([str(run / "model"), str(again)]) == 0
    assert (
        json.loads((again / "config.json").read_text())["weights"]["puzzle_embeddings"]
        == (json.loads((run / "model" / "config.json").read_text())["weights"]["puzzle_embeddings"])
    )


# -- damaged and foreign folders ---------------------------------------------------------------


def _edit_config(folder: Path, edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def _no_checksum(config: dict) -> None:
    del config["weights"]["sha256"]


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        ("truncate", ["model.safetensors: damaged", "SHA-256"]),
        ("flip", ["model.safetensors: damaged"]),
        ("truncate-unchecked", ["model.safetensors: not a readable safetensors file"]),
        ("missing-weights", ["model.safetensors: missing"]),
        ("not-json", ["config.json: not valid JSON"]),
        ("missing-keys", ["config.json: missing key(s) model, weights"]),
        ("newer-format", ["model folder format 99 is newer", "upgrade trm-core"]),
        ("newer-trm", ["written by trm-core 9.1.0, newer than the installed"]),
        ("newer-contract", ["needs plugin contract 99", "upgrade trm-core"]),
        ("misfit", ["does not fit the model", "shape mismatch"]),
        ("no-task", ["the model's task 'sokoban' is not installed", "trm-plugin-sokoban 1.2.0",
                     "pip install trm-plugin-sokoban"]),
        ("no-mixer", ["the model's mixer 'conv' is not installed", "trm-plugin-conv"]),
        ("bad-value", ["config.json", "model.hidden_size"]),
    ],
)  # fmt: skip
def test_a_damaged_or_foreign_folder_is_one_line(run, capsys, tmp_path, damage, fragments):
    folder = tmp_path / "m"
    shutil.copytree(run / "model", folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        weights.write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    elif damage == "truncate-unchecked":
        weights.write_bytes(data[: len(data) // 2])
        _edit_config(folder, _no_checksum)
    elif damage == "missing-weights":
        weights.unlink()
    elif damage == "not-json":
        (folder / "config.json").write_text("{ not json")
    elif damage == "missing-keys":
        _edit_config(folder, lambda c: (c.pop("model"), c.pop("weights")))
    elif damage == "newer-format":
        _edit_config(folder, lambda c: c.update(format_version=99))
    elif damage == "newer-trm":
        _edit_config(folder, lambda c: c.update(trm_core="9.1.0"))
    elif damage == "newer-contract":
        _edit_config(folder, lambda c: c.update(plugin_contract=99))
    elif damage == "misfit":
        _edit_config(folder, lambda c: c["model"].update(hidden_size=64))
    elif damage == "no-task":
        task = {"name": "sokoban", "distribution": "trm-plugin-sokoban", "version": "1.2.0"}
        _edit_config(
            folder, lambda c: (c.update(task="sokoban"), c["components"].update(task=task))
        )
    elif damage == "no-mixer":
        mixer = {"name": "conv", "distribution": "trm-plugin-conv", "version": "0.2.0"}
        _edit_config(
            folder, lambda c: (c["model"].update(mixer="conv"), c["components"].update(mixer=mixer))
        )
    elif damage == "bad-value":
        _edit_config(folder, lambda c: c["model"].update(hidden_size=-3))
    for main, argv in (
        (eval_main, ["--model", str(folder), "--device", "cpu"]),
        (solve_main, ["--model", str(folder), "01234012"]),
    ):
        capsys.readouterr()
        assert main(argv) == 2, damage
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])


def test_sources_that_are_not_models_are_named(run, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (str(tmp_path / "empty"), "neither a model folder (config.json) nor a run folder"),
        (str(tmp_path / "nowhere"), "no such model folder, run folder or checkpoint"),
        ("alice/sudoku", "a model on the Hugging Face Hub is hf://alice/sudoku"),
        ("hf://not a repo", "is not a Hub model id"),
    ]
    for source, fragment in cases:
        capsys.readouterr()
        assert eval_main(["--model", source, "--device", "cpu"]) == 2
        assert fragment in capsys.readouterr().err, source


# -- the Hub ---------------------------------------------------------------------------------


class FakeHfApi:
    """huggingface_hub.HfApi as the export sees it: every call recorded, nothing sent."""

    calls: ClassVar[list[tuple[str, dict]]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        kwargs["files"] = sorted(p.name for p in folder.iterdir())
        self.calls.append(("upload_folder", kwargs))
        return type(
            "Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/1"}
        )


def test_push_uploads_the_folder_with_the_hub_id_in_its_card(run, capsys, tmp_path, monkeypatch):
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    out = tmp_path / "m"
    assert export_main([str(run), str(out), "--push", "alice/reverse", "--private"]) == 0
    assert "pushed to https://huggingface.co/alice/reverse/commit/1" in capsys.readouterr().out
    (create, created), (upload, uploaded) = FakeHfApi.calls
    assert create == "create_repo" and created["repo_id"] == "alice/reverse"
    assert created["private"] is True and created["exist_ok"] is True
    assert upload == "upload_folder" and uploaded["repo_id"] == "alice/reverse"
    assert uploaded["folder_path"] == str(out) and set(uploaded["files"]) == FILES
    assert "trm-solve --model hf://alice/reverse" in (out / "README.md").read_text()

    def refuse(self, *args, **kwargs):
        raise RuntimeError("401 Unauthorized: no token")

    monkeypatch.setattr(FakeHfApi, "create_repo", refuse)
    assert export_main([str(run), str(out), "--force", "--push", "alice/reverse"]) == 2
    err = capsys.readouterr().err
    assert "could not push" in err and "401 Unauthorized" in err and "the folder is complete" in err
    assert {p.name for p in out.iterdir()} == FILES
    assert export_main([str(run), str(tmp_path / "x"), "--push", "not-an-id"]) == 2
    assert "a Hub repository id is owner/name" in capsys.readouterr().err


def _hub_cache(root: Path, repo: str, folder: Path, revision: str = "main") -> str:
    """The Hub cache's layout for ``repo`` at one commit holding ``folder``'s files."""
    commit = hashlib.sha1(repo.encode()).hexdigest()
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / revision).write_text(commit)
    shutil.copytree(folder, base / "snapshots" / commit)
    return commit


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """A Hub cache under tmp_path, read as with HF_HUB_OFFLINE=1."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_model_loads_offline_from_the_hub_cache(run, capsys, offline_hub):
    _hub_cache(offline_hub, "alice/reverse", run / "model")
    _hub_cache(offline_hub, "alice/tagged", run / "model", revision="v1")
    before = _tree(offline_hub)
    by_run = _eval_json(capsys, "--run", str(run))
    by_hub = _eval_json(capsys, "--model", "hf://alice/reverse")
    assert by_hub["metrics"] == by_run["metrics"] and by_hub["model"] == "hf://alice/reverse"
    assert trm_core.load_model("hf://alice/tagged@v1").step == 8
    assert solve_main(["--model", "hf://alice/reverse", "01234012"]) == 0
    assert _tree(offline_hub) == before

    for source, fragment in (
        ("hf://alice/missing", "not in the Hugging Face cache"),
        ("hf://alice/tagged@v2", "not in the Hugging Face cache"),
    ):
        capsys.readouterr()
        assert solve_main(["--model", source, "01234012"]) == 2
        err = capsys.readouterr().err
        assert fragment in err and "HF_HUB_OFFLINE is set" in err, err


def test_an_unknown_hub_model_is_one_line(run, capsys, monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors

    def missing(repo_id, **kwargs):  # what the Hub answers (made without its HTTP client)
        error = errors.RepositoryNotFoundError.__new__(errors.RepositoryNotFoundError)
        error.args = (f"404 Client Error: Repository Not Found for {repo_id}",)
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    assert eval_main(["--model", "hf://alice/nothing-here", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "hf://alice/nothing-here: no such model on the Hugging Face Hub" in err


def test_load_model_is_quick(run):
    import time

    trm_core.load_model(run / "model")  # plugins loaded, caches warm
    started = time.perf_counter()
    trm_core.load_model(run / "model")
    assert time.perf_counter() - started < 1.0


def test_the_folder_records_where_the_weights_came_from(run):
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["trained_from"] == {"kind": "run", "name": run.name}
    assert (
        config["weights"]["sha256"]
        == hashlib.sha256((run / "model" / "model.safetensors").read_bytes()).hexdigest()
    )
    assert os.stat(run / "model" / "config.json").st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- reference weights -------------------------------------------------------------------------

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_reference_weights_answer_through_a_model_folder(capsys, tmp_path, trm_registry):
    """trm-convert --task writes a folder whose answers are the reference model's own."""
    from .reference_oracle import (
        OracleConfig,
        OracleTRM,
        make_reference_state_dict,
        save_reference_checkpoint,
    )

    shapes = dict(hidden_size=16, num_heads=2, expansion=4, L_layers=2, vocab_size=11,
                  seq_len=81, num_puzzle_identifiers=1, puzzle_emb_ndim=16, puzzle_emb_len=1,
                  pos_encodings="none", mlp_t=True)  # fmt: skip
    state = make_reference_state_dict(**shapes, seed=4)
    source = tmp_path / "step_65000"
    save_reference_checkpoint(state, source, compiled=True)
    out = tmp_path / "converted"
    options = ["-o", "L_cycles=2", "-o", "H_cycles=2", "-o", "halt_max_steps=3",
               "-o", "puzzle_emb_len=1"]  # fmt: skip
    assert convert_main([str(source), str(out), "--task", "sudoku", *options]) == 0
    printed = capsys.readouterr().out
    assert "task: sudoku, preset paper-mlp" in printed and f"wrote {out}" in printed
    assert {p.name for p in out.iterdir()} == FILES
    config = json.loads((out / "config.json").read_text())
    assert config["trained_from"] == {"kind": "reference", "name": "step_65000"}
    assert "Converted with `trm-convert`" in (out / "README.md").read_text()

    # The folder's answers are the reference's: its puzzles all carry identifier 0.
    loaded = trm_core.load_model(out)
    puzzles = [EASY, SOLUTION[:40] + "." * 41]
    inputs = np.stack([loaded.task.parse_puzzle(text) for text in puzzles])
    predictions, _ = loaded.predict(inputs)
    oracle = OracleTRM(state, OracleConfig(H_cycles=2, L_cycles=2, halt_max_steps=3, **shapes))
    batch = {
        "inputs": torch.from_numpy(inputs).int(),
        "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.int32),
    }
    carry = oracle.initial_carry(batch)
    for _ in range(3):
        carry, out_ = oracle(carry, batch)
    assert np.array_equal(predictions, out_["logits"].argmax(-1).numpy())

    # trm-solve answers and checks; trm-eval scores a Sudoku-Extreme CSV with it.
    capsys.readouterr()
    assert solve_main(["--model", str(out), EASY]) == 0
    assert "the answer is" in capsys.readouterr().out
    csv = tmp_path / "extreme.csv"
    csv.write_text(f"source,question,answer,rating\nx,{EASY},{SOLUTION},3\n")
    scored = _eval_json(capsys, "--model", str(out), "--data", str(csv))
    assert scored["metrics"]["extreme/examples"] == 1

    # Another task's shape, and weights that are not numbers, are refused in one line.
    capsys.readouterr()
    assert convert_main([str(source), str(tmp_path / "maze"), "--task", "maze", *options]) == 2
    err = capsys.readouterr().err
    assert "no preset of the maze task has" in err and "81 tokens" in err
    state["lm_head.weight"][0, 0] = float("nan")
    save_reference_checkpoint(state, source, compiled=True)
    assert convert_main([str(source), str(tmp_path / "nan"), "--task", "sudoku", *options]) == 2
    assert "non-finite values at lm_head.weight" in capsys.readouterr().err
    assert convert_main([str(source), str(tmp_path / "nan.pt"), *options]) == 2
    assert "non-finite values at lm_head.weight" in capsys.readouterr().err
    assert not (tmp_path / "nan").exists() and not (tmp_path / "nan.pt").exists()


@pytest.mark.parametrize(("train", "words"), [
    ({}, "Adam-atan2"),
    ({"optimizer": "adam-atan2"}, "Adam-atan2"),
    ({"optimizer": "muon", "muon_from": 0.0},
     "Muon for the core's matrices, Adam-atan2 for the rest"),
    ({"optimizer": "muon", "muon_from": 0.33},
     "Muon for the core's matrices after Adam-atan2 for the first 33% of the steps, "
     "Adam-atan2 for the rest"),
])  # fmt: skip
def test_the_card_names_the_optimiser(train, words):
    from trm_core.export import _optimizer_words

    assert _optimizer_words(train) == words
