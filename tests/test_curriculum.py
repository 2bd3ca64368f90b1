"""Recipe levers: the depth curriculum (``train.curriculum``) and decaying supervision
weights (``train.supervision_decay``): the schedule, the model's depth inside and
outside a stage, the weights, the training FLOPs, and the config's refusals."""

from __future__ import annotations

import json

import attrs
import pytest
import torch
import yaml

from trm_core import ConfigError, build_model
from trm_core.cli import run_main
from trm_core.config import build_run_config
from trm_core.curriculum import depth_at, segments
from trm_core.flops import step_flops
from trm_core.losses import act_loss, supervision_weights

from . import tiny_task


def run_config(curriculum=None, **train):
    return tiny_task.run_config(
        model={"think_steps": 3, "cycles": 2, "halt_max_steps": 8},
        train={"steps": 100, "curriculum": curriculum or {}, **train},
    )


STAGES = {
    "shallow": {"until": 0.3, "think_steps": 1, "cycles": 1},
    "middle": {"until": 0.6, "think_steps": 2, "halt_max_steps": 4},
}


def test_each_step_takes_the_stage_it_falls_in():
    config = run_config(STAGES)
    assert depth_at(config, 1, 100) == {"think_steps": 1, "cycles": 1}
    assert depth_at(config, 30, 100) == {"think_steps": 1, "cycles": 1}
    assert depth_at(config, 31, 100) == {"think_steps": 2, "halt_max_steps": 4}
    assert depth_at(config, 60, 100) == {"think_steps": 2, "halt_max_steps": 4}
    assert depth_at(config, 61, 100) == {}  # the model's own
    assert depth_at(run_config(), 1, 100) == {}
    # stages are taken in order of until, whatever order they are named in
    swapped = run_config({"b": STAGES["shallow"], "a": STAGES["middle"]})
    assert depth_at(swapped, 10, 100) == {"think_steps": 1, "cycles": 1}


def test_segments_count_the_steps_at_each_depth():
    config = run_config(STAGES)
    got = [(n, m.think_steps, m.cycles, m.halt_max_steps) for n, m in segments(config, 100, 100)]
    assert got == [(30, 1, 1, 8), (30, 2, 2, 4), (40, 3, 2, 8)]
    assert [n for n, _ in segments(config, 100, 45)] == [30, 15]
    assert [n for n, _ in segments(run_config(), 100, 7)] == [7]


def test_the_model_runs_a_stage_inside_the_block_and_its_own_after(tiny_config, batch):
    model = build_model(tiny_config, device="cpu")
    core_config = model.core.config
    calls = []
    model.core.net.register_forward_hook(lambda *_: calls.append(1))
    carry = model.initial_carry(batch)
    with torch.no_grad():
        with model.depth(think_steps=1, cycles=1, halt_max_steps=1):
            assert model.config.think_steps == model.core.config.think_steps == 1
            carry, _ = model(carry, batch)
            assert carry.halted.all()  # one supervision step at most
        assert len(calls) == 2  # one think and one act
        assert model.config.think_steps == 2 and model.core.config is core_config
        calls.clear()
        model(model.initial_carry(batch), batch)
        assert len(calls) == 3 * (2 + 1)  # T=3 cycles of n=2 thinks and an act


def test_supervision_weights_decay_and_average_one():
    steps = torch.arange(1, 9)
    weights = supervision_weights(steps, 0.5, 8)
    assert weights.mean().item() == pytest.approx(1.0)
    assert torch.allclose(weights[1:] / weights[:-1], torch.full((7,), 0.5))
    assert torch.equal(supervision_weights(steps, 1.0, 8), torch.ones(8))


def test_the_loss_weighs_each_slot_by_its_step():
    generator = torch.Generator().manual_seed(0)
    out = {"logits": torch.randn(3, 5, 7, generator=generator),
           "halt_logits": torch.randn(3, generator=generator)}  # fmt: skip
    labels = torch.randint(1, 7, (3, 5), generator=generator)
    halted, steps = torch.ones(3, dtype=torch.bool), torch.tensor([1, 2, 3])
    plain, _ = act_loss(out, labels, halted, steps)
    each = [act_loss({k: v[i : i + 1] for k, v in out.items()}, labels[i : i + 1],
                     halted[:1], steps[i : i + 1])[0] for i in range(3)]  # fmt: skip
    assert plain.item() == pytest.approx(sum(e.item() for e in each), rel=1e-6)
    weighted, _ = act_loss(out, labels, halted, steps, supervision_decay=0.5, max_steps=4)
    weights = supervision_weights(steps, 0.5, 4)
    expected = sum(w.item() * e.item() for w, e in zip(weights, each, strict=True))
    assert weighted.item() == pytest.approx(expected, rel=1e-5)


def test_a_run_reports_the_flops_each_stage_cost(reverse, capsys):
    stage = ["--set", "train.curriculum.early.until=0.5", "--set",
             "train.curriculum.early.think_steps=1"]  # fmt: skip
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--out", str(reverse)]
    argv += ["--set", "train.steps=10", "--set", "eval.interval_steps=null", *stage]
    assert run_main(argv) == 0
    [run] = list(reverse.iterdir())
    [record] = json.loads((run / "metrics.json").read_text())
    config = build_run_config(yaml.safe_load((run / "config.yaml").read_text()))
    batch = config.train.global_batch_size
    full = step_flops(config.model, batch)["total"]
    early = step_flops(attrs.evolve(config.model, think_steps=1), batch)["total"]
    assert early < full
    assert record["train_flops"] == 5 * early + 5 * full
    assert 0 < record["train_seconds"] < 60  # training's own wall-clock seconds
    assert "of training" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"curriculum": {"a": {"until": 0}}}, "train.curriculum.a.until must be within (0, 1]"),
        ({"curriculum": {"a": {"until": 0.5, "think_steps": 0}}}, "think_steps must be positive"),
        ({"curriculum": {"a": {"until": 0.5, "depth": 2}}}, "train.curriculum.a.depth. Valid keys"),
        ({"curriculum": {"a": {"think_steps": 1}}}, "train.curriculum.a: a stage needs until"),
        ({"curriculum": {"a": {"until": 0.5}, "b": {"until": 0.5}}}, "0.5 ends more than one"),
        ({"supervision_decay": 0}, "train.supervision_decay must be within (0, 1]"),
        ({"supervision_decay": 1.5}, "train.supervision_decay must be within (0, 1]"),
    ],
)
def test_bad_levers_are_refused_naming_the_key(train, message):
    with pytest.raises(ConfigError) as error:
        tiny_task.run_config(train=train)
    assert message in str(error.value)


def test_muon_takes_the_cores_matrices_and_adam_the_rest(tiny_config):
    from trm_core.optim import AdamAtan2, Optimizers, build_optimizers, muon_parameters

    model = build_model(tiny_config, device="cpu")
    train = tiny_task.run_config(train={"optimizer": "muon", "muon_lr_scale": 0.5}).train
    weights, _ = build_optimizers(model, train)
    assert isinstance(weights, Optimizers)
    muon, adam = weights.parts["muon"], weights.parts["adam"]
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, AdamAtan2)
    matrices = {id(p) for p in muon_parameters(model)}
    assert matrices and all(p.ndim == 2 for p in muon_parameters(model))
    in_adam = {id(p) for group in adam.param_groups for p in group["params"]}
    assert not matrices & in_adam
    assert matrices | in_adam == {id(p) for p in model.parameters()}
    assert [g["lr_scale"] for g in muon.param_groups] == [0.5]
    assert set(weights.state_dict()) == {"muon", "adam"}
    with pytest.raises(ValueError, match="another train.optimizer"):
        weights.load_state_dict(AdamAtan2(model.parameters()).state_dict())


def test_muon_from_hands_the_matrices_from_adam_to_muon(tiny_config):
    """``train.muon_from: 0.25``: Adam-atan2 trains the core's matrices for the first
    quarter of the steps, Muon after; the rest stays with Adam-atan2 throughout."""
    from trm_core.optim import build_optimizers, group_active, muon_parameters

    model = build_model(tiny_config, device="cpu")
    train = tiny_task.run_config(train={"optimizer": "muon", "muon_from": 0.25}).train
    weights, _ = build_optimizers(model, train)
    muon, adam = weights.parts["muon"], weights.parts["adam"]
    matrices = {id(p) for p in muon_parameters(model)}
    rest, handed = adam.param_groups
    assert {id(p) for p in handed["params"]} == matrices
    assert not matrices & {id(p) for p in rest["params"]}
    [late] = muon.param_groups

    def active(step: int) -> tuple[bool, bool, bool]:  # 1-based, as the schedule counts
        return tuple(group_active(g, step, total_steps=100) for g in (rest, handed, late))

    assert active(1) == active(25) == (True, True, False)
    assert active(26) == active(100) == (True, False, True)


def test_muon_from_is_a_fraction():
    with pytest.raises(ConfigError, match=r"train.muon_from must be within \[0, 1\]"):
        tiny_task.run_config(train={"optimizer": "muon", "muon_from": 1.5})


@pytest.mark.parametrize(("task", "paper", "fast"), [
    ("sudoku", "paper-mlp", "fast-mlp"), ("sudoku", "paper-attention", "fast-attention"),
    ("maze", "paper", "fast"), ("arc", "paper-arc1", "fast-arc1"),
    ("arc", "paper-arc2", "fast-arc2"),
])  # fmt: skip
def test_each_fast_preset_is_its_paper_preset_with_cgars_levers(task, paper, fast):
    from trm_core import fast_recipe, get_registry

    presets = get_registry().get("task", task)().presets()
    assert presets[fast] == fast_recipe(presets[paper])
    assert presets[paper]["train"].get("curriculum", {}) == {}  # the paper's stays exact
    train = presets[fast]["train"]
    assert train["supervision_decay"] == 0.7
    n = presets[paper]["model"].get("think_steps", 6)
    stages = sorted(train["curriculum"].values(), key=lambda stage: stage["until"])
    assert [s["until"] for s in stages] == [0.3, 0.6]
    assert stages[0]["think_steps"] < stages[1]["think_steps"] <= n
    if (task, n) == ("sudoku", 6):  # CGAR's own schedule: (2, 1), (4, 2), then (6, 3)
        assert [(s["think_steps"], s["cycles"]) for s in stages] == [(2, 1), (4, 2)]
