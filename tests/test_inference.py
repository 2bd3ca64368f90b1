"""Inference: the one unroll loop, its early-halting hook, and trm-eval on the one loader.

trm-eval loads a run as trm-solve does (``load_run``: no optimiser, no training sampler)
and must report what it reported when it built a whole Trainer for the run: the old
path (Trainer, its checkpoint loaded, ``evaluate(final=True)``) is kept here as the
reference.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import trm_core
import trm_core.data
import trm_core.optim
import trm_core.trainer
from trm_core.cli import eval_main, run_main
from trm_core.config import unstructure
from trm_core.distributed import init_world
from trm_core.evaluate import EarlyHalting, unroll
from trm_core.losses import IGNORE_LABEL
from trm_core.registry import get_registry, use_registry
from trm_core.run import prepare, read_config
from trm_core.solve import main as solve_main
from trm_core.trainer import Trainer

from . import tiny_task
from .test_distributed import become_rank, spawn_two

# -- unroll -------------------------------------------------------------------------


@pytest.mark.device
def test_unroll_is_the_supervision_steps_from_a_fresh_carry(tiny_config, batch, device):
    torch.manual_seed(0)
    model = trm_core.build_model(tiny_config, device=device).eval()
    batch = {key: value.to(device) for key, value in batch.items()}
    steps = model.config.halt_max_steps
    with torch.no_grad():  # the loop unroll replaces, written out
        carry = model.initial_carry(batch)
        outs = []
        for _ in range(steps):
            carry, out = model(carry, batch)
            outs.append(out)
    seen = []
    prediction, halt_logits = unroll(model, batch, on_step=lambda s, o: seen.append((s, o)))
    assert torch.equal(prediction, outs[-1]["logits"].argmax(-1))
    assert torch.equal(halt_logits, outs[-1]["halt_logits"].float())
    assert halt_logits.dtype == torch.float32 and prediction.shape == batch["inputs"].shape
    assert [s for s, _ in seen] == list(range(1, steps + 1))
    for (_, out), want in zip(seen, outs, strict=True):
        assert torch.equal(out["logits"], want["logits"])

    first, _ = unroll(model, batch, steps=1)  # fewer steps: the answer after the first
    assert torch.equal(first, outs[0]["logits"].argmax(-1))
    for wrong in (0, steps + 1):
        with pytest.raises(ValueError, match=r"steps must lie in 1\.\.halt_max_steps"):
            unroll(model, batch, steps=wrong)
    with pytest.raises(RuntimeError, match="eval mode"):
        unroll(model.train(), batch)


def test_early_halting_takes_the_first_positive_halt_logit_and_counts_each_step():
    labels = torch.tensor([[1, 2], [1, 2], [IGNORE_LABEL, IGNORE_LABEL]])
    early = EarlyHalting(max_steps=3, device=torch.device("cpu"))

    def out(tokens, halts):
        logits = torch.nn.functional.one_hot(torch.tensor(tokens), 4).float()  # [B, S, 4]
        return {"logits": logits, "halt_logits": torch.tensor(halts)}

    early.start(labels)
    # Step 1: row 0 right and halting; row 1 wrong; row 2 (nothing scored) right.
    early(1, out([[1, 2], [3, 3], [0, 0]], [1.0, -1.0, -1.0]))
    # Step 2: row 0 now wrong (its answer stays step 1's); row 1 right and halting.
    early(2, out([[3, 3], [1, 2], [0, 0]], [1.0, 2.0, -1.0]))
    early(3, out([[3, 3], [1, 3], [1, 1]], [1.0, 1.0, -1.0]))
    answers, steps = early.finish(torch.tensor([[3, 3], [1, 3], [1, 1]]))
    assert answers.tolist() == [[1, 2], [1, 2], [1, 1]]  # row 2 never halted: the last
    assert steps.tolist() == [1, 2, 3]
    assert early.correct_by_step.tolist() == [2, 2, 1]

    early.start(labels[:1])  # the counts go on over batches
    early(1, out([[1, 2]], [-1.0]))
    assert early.correct_by_step.tolist() == [3, 2, 1]


# -- trm-eval ----------------------------------------------------------------------


def _train(runs: Path, device: str, *sets: str) -> Path:
    argv = ["--task", "reverse", "--preset", "cpu", "--device", device, "--out", str(runs)]
    for assignment in ("train.steps=6", "eval.interval_steps=6", *sets):
        argv += ["--set", assignment]
    assert run_main(argv) == 0
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run


def _old_trm_eval(run: Path, device: str, max_examples: int | None, early: bool) -> dict:
    """What trm-eval did before it had a loader: a whole Trainer, loaded, evaluated."""
    config = read_config(run)
    mapping = unstructure(config)
    mapping["device"] = device
    if max_examples is not None:
        mapping["eval"]["max_examples"] = max_examples
    if early:
        mapping["eval"]["early_halting"] = True
    registry = get_registry()
    task = registry.get("task", config.task)()
    world = init_world(device)
    config, data_dir = prepare(mapping, task, world, log=lambda *a: None)
    trainer = Trainer(config, task, data_dir, world, None, registry)
    trainer.load(run / "checkpoints" / "last.pt")
    return {"run": str(run), "step": trainer.step, "metrics": trainer.evaluate(final=True)}


def _without_seconds(report: dict) -> dict:
    """A report without its timing (trm-eval prints it beside the metrics)."""
    metrics = {k: v for k, v in report["metrics"].items() if k != "seconds"}
    return {**{k: v for k, v in report.items() if k != "seconds"}, "metrics": metrics}


@pytest.mark.device
def test_trm_eval_builds_nothing_for_training_and_reports_as_before(
    reverse, device, monkeypatch, capsys
):
    run = _train(reverse, device, "data.options.extra=24", "model.halt_max_steps=3")
    flags = {(): (None, False), ("--max-examples", "20", "--early-halting"): (20, True)}
    expected = {args: _old_trm_eval(run, device, *old) for args, old in flags.items()}
    capsys.readouterr()

    def refuse(*args, **kwargs):
        raise AssertionError("trm-eval built something only training needs")

    for owner, name in [
        (trm_core.optim.AdamAtan2, "__init__"),
        (trm_core.optim.SignSGDRows, "__init__"),
        (trm_core.optim, "build_optimizers"),
        (trm_core.trainer, "build_optimizers"),
        (trm_core.data.TrainSampler, "__init__"),
        (trm_core.trainer, "Trainer"),
    ]:
        monkeypatch.setattr(owner, name, refuse)
    for args, want in expected.items():
        assert eval_main(["--run", str(run), "--device", device, "--json", *args]) == 0
        got = json.loads(capsys.readouterr().out)
        assert _without_seconds(got) == _without_seconds(want), args
        assert got["seconds"] > 0 and "seconds" not in got["metrics"]
    assert "more/examples" in got["metrics"] and "early_halting/mean_steps" in got["metrics"]
    assert got["metrics"]["examples"] == 20 and got["metrics"]["more/examples"] == 20

    # The text report, and trm-solve through the same loader.
    assert eval_main(["--run", str(run), "--device", device]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run} at step 6:\n") and "  exact_accuracy" in out
    assert solve_main(["--run", str(run), "--device", device, "01234012"]) == 0
    assert "the puzzle:" in capsys.readouterr().out


def test_trm_eval_reports_bad_input_in_one_line(reverse, tmp_path, capsys):
    def one_line(*parts: str) -> None:
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        for part in parts:
            assert part in err, (part, err)

    assert eval_main(["--run", str(tmp_path / "nowhere"), "--device", "cpu"]) == 2
    one_line("not a run folder")
    run = _train(reverse, "cpu", "train.steps=1")
    capsys.readouterr()
    assert eval_main(["--run", str(run), "--device", "bogus"]) == 2
    one_line("is not a device")
    (run / "checkpoints" / "last.pt").unlink()
    assert eval_main(["--run", str(run), "--device", "cpu"]) == 2
    one_line("no checkpoint yet")


# -- trm-eval under torchrun ---------------------------------------------------------------


def _eval_worker(rank: int, port: int, run: str, out_dir: str) -> None:
    """One of two ranks running trm-eval, started as torchrun would start it."""
    become_rank(rank, port)
    printed = io.StringIO()
    try:
        with use_registry(tiny_task.registry()), contextlib.redirect_stdout(printed):
            code = eval_main(["--run", run, "--device", "cpu", "--json", "--early-halting"])
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps([code, printed.getvalue()]))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_trm_eval_under_torchrun_shares_the_examples_and_reports_once(reverse, tmp_path, capsys):
    """Two processes evaluate a run trained by one: rank 0 prints what one process prints
    (the two evaluate their halves in smaller batches, so within float noise)."""
    run = _train(reverse, "cpu", "data.options.extra=24")
    capsys.readouterr()
    assert eval_main(["--run", str(run), "--device", "cpu", "--json", "--early-halting"]) == 0
    single = json.loads(capsys.readouterr().out)
    out = tmp_path / "ranks"
    out.mkdir()
    spawn_two(run, out, worker=_eval_worker)
    (code0, printed0), (code1, printed1) = (
        json.loads((out / f"rank{rank}.json").read_text()) for rank in range(2)
    )
    assert code0 == code1 == 0 and printed1 == ""
    report = json.loads(printed0)
    assert (report["run"], report["step"]) == (single["run"], single["step"])
    metrics, want = _without_seconds(report)["metrics"], _without_seconds(single)["metrics"]
    assert metrics.keys() == want.keys()
    for name, value in want.items():
        assert metrics[name] == pytest.approx(value, abs=1e-6), name
    assert metrics["examples"] == 64 and metrics["more/examples"] == 24


def test_evaluation_and_plain_prediction_run_in_inference_mode(reverse, monkeypatch):
    """trm-eval's evaluation and trm-solve's plain answers build no autograd state at all
    (torch.inference_mode); a strategy's answers keep the contract's torch.no_grad."""
    run = trm_core.load_run(_train(reverse, "cpu", "model.halt_max_steps=2"))
    modes = []
    forward = type(run.model).forward

    def recorded(model, *args):
        modes.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return forward(model, *args)

    monkeypatch.setattr(type(run.model), "forward", recorded)
    run.predict(torch.randint(1, 4, (3, run.model.config.seq_len)).numpy())
    assert modes and all(inference for inference, _ in modes)
    modes.clear()
    run.evaluate(max_examples=4)
    assert modes and all(inference and not grad for inference, grad in modes)
