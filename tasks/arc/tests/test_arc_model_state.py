"""A model folder's ARC state: exported from built data, imported into a fresh task,
and ARC files read with it as the built test split is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from trm_core import DataError, read_split
from trm_plugin_arc import ArcTask

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "arc"


def _options(files: Path) -> dict:
    def json_set(name):
        return {"source": "json", "challenges": f"{name}_challenges.json",
                "solutions": f"{name}_solutions.json"}  # fmt: skip

    return {"sets": {"training": json_set("train"), "evaluation": json_set("eval")},
            "test_set": "evaluation", "data_dir": str(files), "augmentations": 6,
            "canvas": 8, "seed": 5}  # fmt: skip


def _through_a_model_folder(state: dict) -> dict:
    """What the engine gives back: arrays through safetensors, the rest through JSON."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    rest = {k: v for k, v in state.items() if k not in arrays}
    assert all(v.dtype.kind in "iu" for v in arrays.values())
    return {**load_tensors(save_tensors(arrays)), **json.loads(json.dumps(rest))}


def _fresh(options: dict, state: dict) -> ArcTask:
    task = ArcTask()
    task.configure(options)
    task.import_state(_through_a_model_folder(state))
    return task


@pytest.fixture
def model(files, tmp_path):
    """(the built data's task, its data folder, a fresh task holding the exported state)."""
    built = ArcTask()
    options = _options(files)
    built.configure(options)
    out = built.build_dataset(options, tmp_path / "data")
    return built, out, _fresh(options, built.export_state(out))


def _score(task, split, out_dir):
    rows = np.arange(len(split))
    labels = np.asarray(split.labels)
    metrics, _ = task.evaluate_predictions(split, rows, labels, np.zeros(len(rows)), out_dir, 0)
    return metrics


def test_the_state_is_the_test_sets_tasks_alone(model):
    built, out, _ = model
    state = built.export_state(out)
    json_keys = {"format", "task_ids", "test_set", "augmentations", "canvas"}
    json_keys.add("num_puzzle_identifiers")
    assert set(state) == json_keys | {"groups", "counts", "augmentation_sets"}
    assert state["task_ids"] == ["ev0", "ev1"] and state["test_set"] == "evaluation"
    assert (state["augmentations"], state["canvas"], state["num_puzzle_identifiers"]) == (6, 8, 31)
    assert state["groups"].dtype == np.int32 and state["groups"].tolist() == [3, 4]
    assert state["counts"].dtype == np.int32 and state["counts"].tolist() == [6, 6]
    assert state["augmentation_sets"].dtype == np.int8
    assert state["augmentation_sets"].shape == (2, 6, 11)
    tables = built.tables(read_split(out / "test"))
    np.testing.assert_array_equal(state["augmentation_sets"], tables.augmentations[3:5])
    assert ArcTask.supports("read_data") and ArcTask.supports("export_state")
    assert ArcTask.supports("import_state")


def test_a_file_of_the_test_tasks_reads_as_the_built_test_split(model, files, tmp_path):
    built, out, task = model
    test = read_split(out / "test", built)
    split = task.read_data(files / "eval_challenges.json")
    assert split.path == files / "eval_challenges.json"
    np.testing.assert_array_equal(split.inputs, test.inputs)
    np.testing.assert_array_equal(split.labels, test.labels)
    np.testing.assert_array_equal(split.puzzle_identifiers, test.puzzle_identifiers)
    assert split.inputs.dtype == np.uint8 and split.puzzle_identifiers.dtype == np.int32
    assert split.metadata == test.metadata
    # votes over augmentations and pass@k, from the tables read_data made
    assert _score(task, split, tmp_path / "file") == _score(built, test, tmp_path / "run")
    assert _score(task, split, None)["pass@1"] == 1.0
    assert (tmp_path / "file" / "submission.json").read_text() == (
        tmp_path / "run" / "submission.json"
    ).read_text()
    # the built split is still scored from its folder
    assert task.tables(test) is not task.tables(split)
    # trm-solve reads the same file as before
    puzzles = task.read_puzzles((files / "eval_challenges.json").read_text(), "eval")
    assert [where for where, _ in puzzles] == ["eval, task ev0, test 0", "eval, task ev1, test 0",
                                               "eval, task ev1, test 1"]  # fmt: skip


def test_one_task_or_a_few_read_as_their_rows_of_the_test_split(model, files, tmp_path):
    built, out, task = model
    test = read_split(out / "test", built)
    # ev1 alone, in a challenges file with its solutions beside it
    challenges = json.loads((files / "eval_challenges.json").read_text())
    solutions = json.loads((files / "eval_solutions.json").read_text())
    (tmp_path / "one_challenges.json").write_text(json.dumps({"ev1": challenges["ev1"]}))
    (tmp_path / "one_solutions.json").write_text(json.dumps({"ev1": solutions["ev1"]}))
    split = task.read_data(tmp_path / "one_challenges.json")
    np.testing.assert_array_equal(split.inputs, test.inputs[6:18])
    np.testing.assert_array_equal(split.labels, test.labels[6:18])
    np.testing.assert_array_equal(split.puzzle_identifiers, test.puzzle_identifiers[6:18])
    metrics = _score(task, split, None)
    assert metrics["pass@1"] == 1.0 and metrics["test_inputs"] == 2
    # ev0 as one task's JSON (its id the file's stem), test outputs inline
    single = challenges["ev0"]
    single["test"][0]["output"] = solutions["ev0"][0]
    (tmp_path / "ev0.json").write_text(json.dumps(single))
    split = task.read_data(tmp_path / "ev0.json")
    np.testing.assert_array_equal(split.inputs, test.inputs[:6])
    np.testing.assert_array_equal(split.labels, test.labels[:6])
    assert _score(task, split, None)["pass@1"] == 1.0


def test_tasks_the_model_never_learned_are_refused(model, files, tmp_path, make_task):
    _, _, task = model
    # tr0 trained, but a model folder keeps the test set's embeddings alone
    challenges = json.loads((files / "train_challenges.json").read_text())
    challenges.update({f"new{i}": make_task(20 + i) for i in range(3)})
    (tmp_path / "other.json").write_text(json.dumps(challenges))
    with pytest.raises(DataError) as error:
        task.read_data(tmp_path / "other.json")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'other.json'}: ")
    assert "6 of its 6 tasks are unknown to this model (new0, new1, new2 and 3 more)" in message
    assert "puzzle embeddings are per task" in message and "demonstrations" in message
    assert "(the 2 tasks of 'evaluation')" in message
    assert message.endswith("add the file as a set in data.options.sets (source: json, "
                            "challenges: FILE) and train")  # fmt: skip


def test_a_missing_solutions_file_reads_as_a_hidden_set(model, files, tmp_path, capsys):
    _, _, task = model
    shutil.copy(files / "eval_challenges.json", tmp_path / "hidden_challenges.json")
    split = task.read_data(tmp_path / "hidden_challenges.json")
    assert len(split) == 18 and not np.asarray(split.labels).any()
    note = capsys.readouterr().err
    assert "3 of 3 test inputs have no known output" in note
    assert "no solutions file hidden_solutions.json beside it" in note
    metrics, _ = task.evaluate_predictions(
        split, np.arange(18), np.asarray(split.inputs), np.zeros(18), tmp_path / "run", 0
    )
    assert "pass@1" not in metrics and metrics["test_inputs"] == 3
    payload = json.loads((tmp_path / "run" / "submission.json").read_text())
    assert sorted(payload) == ["ev0", "ev1"] and len(payload["ev1"]) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"ev0": [[[1]]]}', "not an ARC challenges file: expected an object of task id -> "),
        ("[1, 2]", "not an ARC challenges file"),
        ("{}", "not an ARC challenges file"),
        ("012\n345\n", "not readable JSON"),
    ],
)
def test_a_file_that_is_no_arc_json_is_refused(model, tmp_path, content, message):
    _, _, task = model
    path = tmp_path / "x_challenges.json"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        task.read_data(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_a_grid_larger_than_the_canvas_is_refused(model, files, tmp_path):
    _, _, task = model
    challenges = json.loads((files / "eval_challenges.json").read_text())
    challenges["ev0"]["test"][0]["input"] = [[1] * 9] * 9
    (tmp_path / "big.json").write_text(json.dumps(challenges))
    with pytest.raises(DataError) as error:
        task.read_data(tmp_path / "big.json")
    assert str(error.value) == (
        f"{tmp_path / 'big.json'}: task ev0: test input 1 is 9x9, larger than the model's 8x8 "
        "canvas (data.options.canvas): the model cannot take it"
    )


def test_reading_before_import_state_says_so(files):
    task = ArcTask()
    task.configure(_options(files))
    with pytest.raises(DataError, match="has no model state to read it with") as error:
        task.read_data(files / "eval_challenges.json")
    assert "Task.import_state" in str(error.value) and "trm-eval --model" in str(error.value)


def _bad(state: dict, key: str, value) -> dict:
    return {**state, key: value} if value is not None else {k: state[k] for k in state if k != key}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("canvas", 10, "canvas 10, but the task is configured for 8 (data.options.canvas)"),
        ("format", 2, "format 2, this version of trm-plugin-arc reads 1"),
        ("groups", None, "no groups (the state ArcTask.export_state gives; keys: "),
        ("counts", np.array([1.0, 2.0]), "counts is float64 [2], not integers [2]"),
        ("augmentation_sets", np.zeros((2, 6, 10), np.int8),
         "augmentation_sets is int8 [2, 6, 10], not integers [2, N, 11]"),
        ("augmentation_sets", np.zeros((2, 6, 11), np.int8),
         "augmentation_sets[0, 0] is [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], not a dihedral"),
        ("counts", np.array([6, 7], np.int32), "counts must be 1..6"),
        ("groups", np.array([3, 3], np.int32), "groups are not distinct task numbers"),
        ("groups", np.array([3, 5], np.int32), "task 5 has identifiers past num_puzzle_ident"),
        ("task_ids", ["ev0", 1], "task_ids is not a non-empty list of task ids"),
        ("augmentations", True, "augmentations is True, not a positive integer"),
    ],
)  # fmt: skip
def test_a_state_that_does_not_fit_is_refused(model, files, key, value, message):
    built, out, _ = model
    state = _bad(built.export_state(out), key, value)
    task = ArcTask()
    task.configure(_options(files))
    with pytest.raises(DataError) as error:
        task.import_state(state)
    assert str(error.value).startswith("the model's ARC state: ") and message in str(error.value)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/arc is not beside the project")
def test_conceptarc_files_read_against_a_model_of_three_concept_tasks(tmp_path):
    concept = SHARED / "arc-agi_concept_challenges.json"
    options = {"sets": {"concept": {"source": "json", "challenges": concept.name,
                                    "solutions": "arc-agi_concept_solutions.json", "max_tasks": 3}},
               "test_set": "concept", "data_dir": str(SHARED), "augmentations": 2}  # fmt: skip
    built = ArcTask()
    built.configure(options)
    out = built.build_dataset(options, tmp_path / "data")
    task = _fresh(options, built.export_state(out))
    # the whole file: 157 of its tasks were never learned
    with pytest.raises(DataError, match=r": 157 of its 160 tasks are unknown to this model"):
        task.read_data(concept)
    # the three learned tasks, from ARC Prize files
    ids = built.tables(read_split(out / "test")).test_tasks
    challenges = json.loads(concept.read_text())
    solutions = json.loads((SHARED / "arc-agi_concept_solutions.json").read_text())
    (tmp_path / "three_challenges.json").write_text(json.dumps({i: challenges[i] for i in ids}))
    (tmp_path / "three_solutions.json").write_text(json.dumps({i: solutions[i] for i in ids}))
    split = task.read_data(tmp_path / "three_challenges.json")
    test = read_split(out / "test")
    np.testing.assert_array_equal(split.inputs, test.inputs)
    np.testing.assert_array_equal(split.labels, test.labels)
    np.testing.assert_array_equal(split.puzzle_identifiers, test.puzzle_identifiers)
    assert _score(task, split, None)["pass@1"] == 1.0
