"""Inference strategies: the first-party ones, the engine's building blocks, the commands
that take them, and a strategy from a distribution of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import trm_core
from trm_core import (
    ConfigError,
    build_model,
    doubling,
    make_strategy,
    select_by_halt,
    select_by_vote,
    select_checked,
    trajectories,
    unroll,
)
from trm_core.cli import eval_main, run_main
from trm_core.model import Carry
from trm_core.solve import main as solve_main

from . import tiny_task

ROOT = Path(__file__).resolve().parents[1]
TASK = tiny_task.ReverseTask()  # checks no answers
FIRST_PARTY = ["augment-vote", "rollouts", "steps", "unroll"]


@pytest.fixture
def model(tiny_config):
    torch.manual_seed(0)
    tiny_config["halt_max_steps"] = 4
    model = build_model(tiny_config, device="cpu").eval()
    with torch.no_grad():  # a halting head that reads the state (it starts at zero weights)
        for parameter in model.halting_head.parameters():
            parameter.normal_()
    return model


def test_first_party_strategies_are_plugins():
    registry = trm_core.Registry(select={"trm-core"}).load()
    assert registry.names("strategy") == FIRST_PARTY
    assert all(e.distribution == "trm-core" for e in registry.entries("strategy"))


def test_doubling_budgets():
    assert doubling(1) == [1]
    assert doubling(16) == [1, 2, 4, 8, 16]
    assert doubling(12) == [1, 2, 4, 8, 12]


def test_unroll_strategy_is_the_unroll(model, batch):
    _, strategy = make_strategy({"name": "unroll"})
    answers = strategy.answer(model, TASK, batch, seed=0)
    expected, _ = unroll(model, batch)
    assert answers.by_budget.keys() == {4} and answers.passes == {4: 4.0}
    assert torch.equal(answers.by_budget[4]["answer"], expected)


@pytest.mark.parametrize("sigma", [0.0, 1.5])
def test_one_rollout_is_the_unroll_whatever_the_noise(model, batch, sigma):
    _, strategy = make_strategy({"name": "rollouts", "k": 4, "sigma": sigma})
    answers = strategy.answer(model, TASK, batch, seed=3)
    expected, _ = unroll(model, batch)
    assert list(answers.by_budget) == [1, 2, 4]
    assert answers.passes == {1: 4.0, 2: 8.0, 4: 16.0}
    for selection in ("halt", "vote"):
        assert torch.equal(answers.by_budget[1][selection], expected)
    if sigma == 0:  # every trajectory is the deterministic one
        for budget in (2, 4):
            assert torch.equal(answers.by_budget[budget]["halt"], expected)


def test_noise_is_seeded_and_spares_the_first_trajectory(model, batch):
    rows = {key: value.repeat_interleave(3, dim=0) for key, value in batch.items()}
    one = trajectories(model, rows, 3, sigma=1.0, seed=7)
    again = trajectories(model, rows, 3, sigma=1.0, seed=7)
    other = trajectories(model, rows, 3, sigma=1.0, seed=8)
    assert torch.equal(one[0], again[0]) and torch.equal(one[1], again[1])
    assert not torch.equal(one[1], other[1])  # other draws, other halt logits
    expected, halts = unroll(model, batch)
    assert torch.equal(one[0][:, 0], expected)
    assert torch.allclose(one[1][:, 0], halts)
    noisy_y = trajectories(model, rows, 3, sigma=1.0, perturb="y", seed=7)
    assert not torch.equal(noisy_y[1], one[1])


def test_steps_past_halt_max_steps_keep_refining(model, batch):
    _, strategy = make_strategy({"name": "steps", "n": 6})
    answers = strategy.answer(model, TASK, batch, seed=0)
    assert list(answers.by_budget) == [1, 2, 4, 6]
    expected, _ = unroll(model, batch)
    assert torch.equal(answers.by_budget[4]["answer"], expected)
    for steps in (1, 2):
        assert torch.equal(answers.by_budget[steps]["answer"], unroll(model, batch, steps)[0])
    # Step 5 continues from step 4's state; a restart would repeat step 1's answer.
    seen = {}
    trajectories(model, batch, 1, steps=5, on_step=lambda s, p, h: seen.setdefault(s, h))
    assert not torch.allclose(seen[5], seen[1])


def test_selections():
    candidates = torch.tensor([[[1, 1], [2, 2], [2, 2], [3, 3]]])  # one puzzle, 4 answers
    halts = torch.tensor([[5.0, -1.0, -2.0, 0.0]])
    assert select_by_halt(candidates, halts).tolist() == [[1, 1]]
    assert select_by_vote(candidates, halts).tolist() == [[2, 2]]  # two votes beat one
    tie = torch.tensor([[[1, 1], [2, 2]]])
    assert select_by_vote(tie, torch.tensor([[-3.0, 3.0]])).tolist() == [[2, 2]]
    valid = torch.tensor([[False, False, False, True]])
    assert select_checked(candidates, halts, valid).tolist() == [[3, 3]]
    none = torch.zeros_like(valid)
    assert select_checked(candidates, halts, none).tolist() == [[1, 1]]  # falls back


def test_augmented_copies_answer_in_the_puzzles_own_frame(tiny_config):
    """With an exact-copy model (the reverse task's augmentation relabels digits), every
    copy's answer maps back to the same grid, so the vote is unanimous."""
    task = tiny_task.ReverseTask()
    _, strategy = make_strategy({"name": "augment-vote", "augmentations": 4})

    class Copy(torch.nn.Module):  # answers the input itself, whatever the relabelling
        config = type("C", (), {"halt_max_steps": 2, "num_puzzle_identifiers": 2})()

        def initial_carry(self, batch):
            return Carry(
                torch.zeros(1), torch.zeros(1), torch.zeros(len(batch["inputs"])),
                torch.ones(len(batch["inputs"]), dtype=torch.bool), dict(batch),
            )  # fmt: skip

        def forward(self, carry, batch):
            logits = torch.nn.functional.one_hot(batch["inputs"], 6).float()
            return carry, {"logits": logits, "halt_logits": torch.zeros(len(logits))}

    inputs = torch.tensor([[1, 2, 3, 4, 5, 1, 2, 3], [5, 4, 3, 2, 1, 5, 4, 3]])
    batch = {"inputs": inputs, "puzzle_identifiers": torch.ones(2, dtype=torch.long)}
    answers = strategy.answer(Copy(), task, batch, seed=0)
    assert answers.budget == "augmentations" and list(answers.by_budget) == [1, 2, 4]
    for budget, selections in answers.by_budget.items():
        assert list(selections) == ["vote", "halt"]
        assert torch.equal(selections["vote"], inputs), budget
    assert answers.passes[4] == 8.0  # 4 copies x 2 steps


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"name": "rolouts"}, "unknown strategy 'rolouts' (did you mean 'rollouts'?)"),
        ({"name": "rollouts", "k": 0}, "strategy.k must be positive, got 0"),
        ({"name": "rollouts", "sigma": -1}, "strategy.sigma must be >= 0, got -1"),
        ({"name": "rollouts", "kk": 2}, "unknown key strategy.kk (did you mean 'k'?)"),
        ({"name": "rollouts", "perturb": "x"}, "strategy.perturb 'x' is not one of z, y, yz"),
        ({"name": "unroll", "k": 2}, "this strategy takes no options, got k"),
    ],
)
def test_bad_strategy_settings_name_the_key(section, says):
    with pytest.raises(ConfigError) as error:
        make_strategy(section)
    assert says in str(error.value)


def test_augment_vote_needs_a_task_with_augmentations(model):
    class Plain(trm_core.Task):
        vocab_size, grid_shape = 11, (3, 3)

        def presets(self):
            return {}

        def build_dataset(self, options, out_dir):
            return out_dir

        def metrics(self, inputs, labels, predictions):
            return {}

    name, strategy = make_strategy({"name": "augment-vote"})
    with pytest.raises(ConfigError, match="has no augmentations to vote over"):
        trm_core.strategies.check_strategy(name, strategy, Plain(), model)
    name, strategy = make_strategy({"name": "rollouts", "augmentations": 2})
    with pytest.raises(ConfigError, match="set strategy.augmentations=1"):
        trm_core.strategies.check_strategy(name, strategy, Plain(), model)


# -- the commands ---------------------------------------------------------------------------


def _train(runs, *sets: str):
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(runs)]
    for assignment in ("train.steps=20", "eval.interval_steps=20", *sets):
        argv += ["--set", assignment]
    assert run_main(argv) == 0
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run


def test_trm_eval_prints_accuracy_against_compute(reverse, capsys):
    run = _train(reverse, "model.halt_max_steps=3", "data.options.extra=16")
    capsys.readouterr()
    plain = {}
    assert eval_main(["--run", str(run), "--device", "cpu", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["metrics"]

    argv = ["--run", str(run), "--device", "cpu", "--strategy", "rollouts"]
    assert eval_main([*argv, "--set", "strategy.k=4", "--set", "strategy.sigma=0"]) == 0
    out = capsys.readouterr().out
    assert "strategy rollouts (k=4, sigma=0, perturb=z" in out
    assert "test: 64 puzzles" in out and "more: 16 puzzles" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("k "))
    assert header.split() == ["k", "passes/puzzle", "s/puzzle", "halt", "vote"]

    assert eval_main([*argv, "--set", "strategy.k=4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [test, more] = report["reports"]
    assert [row["budget"] for row in test["rows"]] == [1, 2, 4]
    assert [row["passes"] for row in test["rows"]] == [3, 6, 12]
    one = test["rows"][0]["selections"]["halt"]
    assert one["exact_accuracy"] == plain["exact_accuracy"]  # k=1: the unroll, exactly
    assert one["token_accuracy"] == plain["token_accuracy"]
    assert more["rows"][0]["selections"]["halt"]["exact_accuracy"] == plain["more/exact_accuracy"]

    assert eval_main([*argv, "--split", "more", "--json"]) == 0
    [only] = json.loads(capsys.readouterr().out)["reports"]
    assert only["split"] == "more" and only["puzzles"] == 16
    assert eval_main([*argv, "--split", "moar"]) == 2
    assert "no split 'moar'; its splits: test, more" in capsys.readouterr().err

    assert eval_main(["--run", str(run), "--device", "cpu", "--strategy", "unroll", "--json"]) == 0
    unrolled = json.loads(capsys.readouterr().out)["reports"][0]["rows"]
    assert unrolled == [{"budget": 3, "passes": 3.0, "selections": {"answer": one}}]

    # Recorded beside the training evaluations, and in TensorBoard.
    history = json.loads((run / "metrics.json").read_text())
    assert [record["strategy"]["name"] for record in history if "strategy" in record] == [
        "rollouts", "rollouts", "rollouts", "unroll",
    ]  # fmt: skip
    events = [p for p in run.iterdir() if p.name.startswith("events.out.tfevents")]
    assert len(events) >= 2


def test_augment_vote_and_steps_through_trm_eval(reverse, capsys):
    run = _train(reverse, "model.halt_max_steps=2")
    capsys.readouterr()
    base = ["--run", str(run), "--device", "cpu", "--json"]
    assert (
        eval_main([*base, "--strategy", "augment-vote", "--set", "strategy.augmentations=4"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)["reports"][0]["rows"]
    assert [row["budget"] for row in rows] == [1, 2, 4]
    assert list(rows[0]["selections"]) == ["vote", "halt"]
    assert eval_main([*base, "--strategy", "steps", "--set", "strategy.n=5"]) == 0
    rows = json.loads(capsys.readouterr().out)["reports"][0]["rows"]
    assert [row["budget"] for row in rows] == [1, 2, 4, 5]


def test_trm_eval_and_trm_solve_refuse_bad_strategies_in_one_line(reverse, capsys):
    run = _train(reverse, "train.steps=2")
    capsys.readouterr()
    cases = [
        (["--strategy", "rolout"], "unknown strategy 'rolout' (did you mean 'rollouts'?)"),
        (["--strategy", "rollouts", "--set", "strategy.k=0"], "strategy.k must be positive"),
        (["--strategy", "rollouts", "--set", "strategy.sigma=-0.5"], "strategy.sigma must be"),
        (["--set", "strategy.k=3"], "--set strategy.<option> needs --strategy NAME"),
        (["--strategy", "rollouts", "--set", "model.hidden_size=3"], "trm-eval takes strategy."),
    ]
    for extra, says in cases:
        for command, head in ((eval_main, ["--run", str(run)]), (solve_main, ["--run", str(run)])):
            argv = [*head, "--device", "cpu", *extra]
            if command is solve_main:
                argv.append("01234012")
            assert command(argv) == 2, (command, extra)
            err = capsys.readouterr().err
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert says in err, (says, err)


def test_trm_solve_answers_with_a_strategy(reverse, capsys):
    run = _train(reverse)
    capsys.readouterr()
    argv = ["--run", str(run), "--device", "cpu", "01234012"]
    assert solve_main(argv) == 0
    plain = capsys.readouterr().out
    assert solve_main([*argv, "--strategy", "rollouts", "--set", "strategy.sigma=0"]) == 0
    assert capsys.readouterr().out == plain  # noise-free rollouts answer as the unroll


def test_the_final_evaluation_can_use_a_strategy(reverse, capsys):
    run = _train(reverse, "strategy.name=rollouts", "strategy.k=2", "strategy.sigma=0.5")
    out = capsys.readouterr()
    assert "strategy rollouts:" in out.out + out.err
    history = json.loads((run / "metrics.json").read_text())
    final = history[-1]
    assert final["strategy"]["name"] == "rollouts" and final["strategy"]["options"]["k"] == 2
    [report] = final["strategy"]["reports"]
    assert report["split"] == "test" and [r["budget"] for r in report["rows"]] == [1, 2]
    assert report["rows"][0]["selections"]["halt"]["exact_accuracy"] == pytest.approx(
        final["metrics"]["exact_accuracy"]
    )


def test_a_bad_strategy_section_stops_trm_run_before_any_data(reverse, capsys, tmp_path):
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(reverse)]
    assert run_main([*argv, "--set", "strategy.name=rollouts", "--set", "strategy.k=-1"]) == 2
    assert "strategy.k must be positive" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not reverse.exists()


# -- a strategy from a distribution of its own ------------------------------------------------

FIRST_STEP = """
import trm_core

TRM_PLUGIN_CONTRACT = trm_core.PLUGIN_CONTRACT


class FirstStep(trm_core.Strategy):
    \"\"\"The answer after one supervision step (a cheap, worse strategy).\"\"\"

    def answer(self, model, task, batch, seed):
        prediction, _ = trm_core.unroll(model, batch, steps=1)
        return trm_core.Answers({1: {"first": prediction}}, {1: 1.0}, "steps")


@trm_core.hookimpl
def register_strategies(register):
    register("first-step", FirstStep)
"""


def test_a_strategy_plugin_from_its_own_distribution_is_listed_and_run(reverse, tmp_path):
    run = _train(reverse, "model.halt_max_steps=3")
    site = tmp_path / "site"
    info = site / "trm_strategy_first-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: trm-strategy-first\nVersion: 1.0.0\n"
        "Requires-Dist: trm-core>=0.2,<0.3\n"
    )
    (info / "entry_points.txt").write_text("[trm]\nfirst-step = trm_strategy_first\n")
    (site / "trm_strategy_first.py").write_text(textwrap.dedent(FIRST_STEP))
    # The run's task lives in the tests; the subprocess registers it as the fixture does.
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(site)!r}, {str(ROOT)!r}]
        import trm_core
        from tests import tiny_task
        registry = trm_core.Registry.from_environment()
        registry.add_plugin(tiny_task, distribution="tests")
        from trm_core.cli import eval_main, plugins_main
        with trm_core.use_registry(registry):
            code = plugins_main(["--kind", "strategy"])
            code |= eval_main(sys.argv[1:])
        raise SystemExit(code)
    """)
    env = {**os.environ, "TRM_LOAD_PLUGINS": "trm-core,first-step",
           "TRM_DATA_DIR": os.environ["TRM_DATA_DIR"]}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, "--run", str(run), "--device", "cpu",
         "--strategy", "first-step", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.split()[:3] == ["strategy", "first-step", "trm-strategy-first"] for line in lines
    )
    report = json.loads(lines[-1])
    [row] = report["reports"][0]["rows"]
    assert row["budget"] == 1 and list(row["selections"]) == ["first"]
    assert 0 <= row["selections"]["first"]["exact_accuracy"] <= 1
    assert np.isfinite(row["selections"]["first"]["token_accuracy"])


def test_augmented_copies_are_distinct_where_the_task_allows():
    """A seed that repeats a copy already made is skipped; with fewer distinct copies
    than asked for, the puzzle itself fills in (and is not mapped back)."""

    class Mirror(tiny_task.ReverseTask):  # two augmentations: as is, and reversed
        def augment(self, inputs, labels, seed):
            return (inputs[::-1], labels[::-1]) if seed % 2 else (inputs, labels)

        def inverse_augment(self, tokens, seed):
            return tokens[::-1] if seed % 2 else tokens

    _, strategy = make_strategy({"name": "augment-vote", "augmentations": 3})
    puzzle = np.array([1, 2, 3, 4, 5, 1, 2, 3])
    copies, seeds = strategy._copies(Mirror(), puzzle)
    assert copies.tolist() == [puzzle.tolist(), puzzle[::-1].tolist(), puzzle.tolist()]
    assert seeds[0] is None and seeds[1] % 2 == 1 and seeds[2] is None
    palindrome = np.array([1, 2, 3, 4, 4, 3, 2, 1])
    copies, seeds = strategy._copies(Mirror(), palindrome)
    assert seeds == [None, None, None]  # its reversal is itself: nothing new to make
