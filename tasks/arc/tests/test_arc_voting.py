"""The evaluator with synthetic predictions: voting, confidence ties, pass@k, submissions."""

from __future__ import annotations

import numpy as np
import pytest

from trm_plugin_arc.augment import IDENTITY, augmentation_set
from trm_plugin_arc.grid import encode
from trm_plugin_arc.voting import (
    EMPTY_ANSWER,
    Ranking,
    answers_of,
    pass_at_k,
    rank,
    submission,
    submission_problems,
)

SOLUTION = np.array([[1, 2, 0], [0, 3, 4]], dtype=np.uint8)
WRONG = np.array([[5, 5], [5, 5]], dtype=np.uint8)


def _predictions(answers, augmentations):
    """Each answer (original frame) as the model would emit it under its augmentation."""
    return np.stack([encode(a.apply(g), 30) for g, a in zip(answers, augmentations, strict=True)])


def _result(answers, halts, augmentations, task="t", index=0, solution=SOLUTION):
    predictions = _predictions(answers, augmentations)
    candidates = rank(answers_of(predictions, np.asarray(halts, dtype=float), augmentations))
    return Ranking(task, index, candidates, solution, len(answers))


def test_perfect_predictions_under_every_augmentation_give_pass_at_1():
    augmentations = augmentation_set([SOLUTION], 1000, seed=3)
    assert len(augmentations) == 1000 and augmentations[0] == IDENTITY
    result = _result([SOLUTION] * 1000, np.zeros(1000), augmentations)
    assert len(result.candidates) == 1 and result.candidates[0].votes == 1000
    metrics = pass_at_k([result])
    assert metrics == {f"pass@{k}": 1.0 for k in (1, 2, 5, 10, 100, 1000)}


def test_a_wrong_answer_that_outvotes_the_right_one_moves_it_to_pass_at_2():
    augmentations = augmentation_set([SOLUTION], 5, seed=0)
    answers = [WRONG, WRONG, WRONG, SOLUTION, SOLUTION]
    result = _result(answers, [-5, -5, -5, 5, 5], augmentations)  # the right one more confident
    assert [c.votes for c in result.candidates] == [3, 2] and result.answer_rank == 2
    metrics = pass_at_k([result])
    assert metrics["pass@1"] == 0.0 and metrics["pass@2"] == 1.0


def test_equal_votes_are_ranked_by_mean_halt_confidence():
    augmentations = augmentation_set([SOLUTION], 4, seed=1)
    answers = [WRONG, SOLUTION, WRONG, SOLUTION]
    right_first = _result(answers, [0.0, 2.0, 0.0, 1.0], augmentations)
    assert right_first.answer_rank == 1 and pass_at_k([right_first])["pass@1"] == 1.0
    wrong_first = _result(answers, [3.0, -1.0, 3.0, -1.0], augmentations)
    assert wrong_first.answer_rank == 2 and pass_at_k([wrong_first])["pass@1"] == 0.0
    confidence = wrong_first.candidates[0].confidence
    assert confidence == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_pass_at_k_gives_partial_credit_per_task_then_averages_tasks():
    augmentations = augmentation_set([SOLUTION], 2, seed=2)
    right = _result([SOLUTION] * 2, [0, 0], augmentations, task="a", index=0)
    wrong = _result([WRONG] * 2, [0, 0], augmentations, task="a", index=1)
    other = _result([SOLUTION] * 2, [0, 0], augmentations, task="b")
    assert pass_at_k([right, wrong, other])["pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    hidden = Ranking("c", 0, right.candidates, None, 2)  # no solution: not scored
    assert pass_at_k([right, wrong, other, hidden])["pass@1"] == pytest.approx(0.75)
    assert pass_at_k([hidden]) == {}


def test_predictions_without_a_grid_cast_no_vote():
    augmentations = [IDENTITY, IDENTITY]
    predictions = np.stack([np.zeros(900, dtype=np.uint8), encode(SOLUTION)])
    candidates = rank(answers_of(predictions, np.zeros(2), augmentations))
    assert len(candidates) == 1 and candidates[0].votes == 1


def test_submission_has_two_attempts_for_every_test_input_of_every_task():
    augmentations = augmentation_set([SOLUTION], 3, seed=0)
    first = _result([WRONG, SOLUTION, SOLUTION], [0, 0, 0], augmentations, task="a", index=0)
    single = _result([WRONG] * 3, [0, 0, 0], augmentations, task="a", index=1)
    tasks = {"a": 2, "b": 1}  # b was not evaluated
    payload = submission([first, single], tasks)
    assert submission_problems(payload, tasks) == []
    assert payload["a"][0] == {"attempt_1": SOLUTION.tolist(), "attempt_2": WRONG.tolist()}
    assert payload["a"][1] == {"attempt_1": WRONG.tolist(), "attempt_2": WRONG.tolist()}
    assert payload["b"] == [{"attempt_1": EMPTY_ANSWER, "attempt_2": EMPTY_ANSWER}]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "a submission must be a JSON object"),
        ({"a": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}, "task b: missing"),
        ({"a": [], "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]},
         "task a: expected a list of 1 test entries"),
        ({"a": [{"attempt_1": [[1]]}], "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]},
         "task a, test 0: expected exactly attempt_1 and attempt_2"),
        ({"a": [{"attempt_1": [[1, 2], [3]], "attempt_2": [[1]]}],
          "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]},
         "task a, test 0, attempt_1: ragged rows"),
        ({"a": [{"attempt_1": [[1]], "attempt_2": [[10]]}],
          "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]},
         "task a, test 0, attempt_2: a cell that is not a colour 0-9"),
        ({"a": [{"attempt_1": [[1]] * 31, "attempt_2": [[1]]}],
          "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}, "expected 1 to 30 rows"),
        ({"a": [{"attempt_1": [[1]], "attempt_2": [[1]]}],
          "b": [{"attempt_1": [[1]], "attempt_2": [[1]]}], "z": []},
         "task z: not a task of the test set"),
    ],
)  # fmt: skip
def test_submission_validation_names_each_problem(payload, problem):
    problems = submission_problems(payload, {"a": 1, "b": 1})
    assert any(problem in p for p in problems), problems
