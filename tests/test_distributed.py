"""Data-parallel training: 2 CPU processes (gloo) step exactly as 1 process does.

The parent builds the tiny task's data and trains one process on the global batch;
two spawned workers, set up as torchrun would (WORLD_SIZE, RANK, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), train the same config with each rank taking half of every
global batch. Weights, puzzle embeddings, EMA shadows and carries must agree.

Halting happens inside the test: the halting head starts sure to halt (bias +5) and
half the slots explore, so which slots stop after one supervision step and which go
on is decided by the exploration draws; those are drawn for the global batch and
sliced per rank, so the two processes halt exactly the slots one process halts.
"""

from __future__ import annotations

import datetime
import functools
import os
import socket
import time
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import trm_core
from trm_core.distributed import World, init_world
from trm_core.trainer import Trainer

from . import tiny_task

STEPS = 3  # step 1 starts every slot, step 2 continues the carries, step 3 restarts them
IDENTIFIERS = 5  # puzzle identifiers 1..5 spread over the training examples
EMBEDDING = "encoder.puzzle_embedding.weights"
TIMEOUT = 60  # seconds: a broken collective fails the test instead of hanging it


def _config():
    config = tiny_task.run_config(
        model={"num_puzzle_identifiers": IDENTIFIERS + 1, "halt_exploration_prob": 0.5},
        train={"weight_decay": 0.1, "puzzle_emb_weight_decay": 0.1, "lr_warmup_steps": 1},
    )
    assert config.model.puzzle_emb_len > 0 and config.model.puzzle_emb_dim > 0
    assert config.train.global_batch_size % 2 == 0
    return config


def _build_data(root: Path) -> Path:
    """The tiny task's data, with several puzzle identifiers so that rows of the
    puzzle-embedding table are shared within and across ranks."""
    task = tiny_task.ReverseTask()
    data_dir = Path(task.build_dataset(dict(tiny_task.PRESET["data"]["options"]), root / "data"))
    for name in ("train", "test"):
        split = trm_core.read_split(data_dir / name, task)
        identifiers = 1 + np.arange(len(split)) % IDENTIFIERS
        inputs, labels = np.array(split.inputs), np.array(split.labels)
        trm_core.write_split(data_dir / name, inputs, labels, identifiers, task="reverse")
    return data_dir


def _halting_early(trainer: Trainer) -> Trainer:
    """Start the halting head sure to halt (logit +5), so exploration decides."""
    with torch.no_grad():
        trainer.model.halting_head.linear.bias[0] = 5.0
    return trainer


def _steps(trainer: Trainer) -> tuple[list[dict], list[torch.Tensor]]:
    """STEPS measured steps; their summaries and the halted mask after each."""
    summaries, halted = [], []
    for _ in range(STEPS):
        summaries.append(trainer.train_step(measure=True))
        halted.append(trainer.carry.halted.clone())
    return summaries, halted


def _snapshot(trainer: Trainer) -> dict:
    return {
        "model": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "ema": {k: v.clone() for k, v in trainer.ema.state_dict().items()},
        "carries": trainer.state()["carries"],  # collective under 2 processes
        "sampler": trainer.sampler.state_dict(),
    }


def become_rank(rank: int, port: int) -> None:
    """Make this spawned process rank ``rank`` of two, as torchrun would start it, on one
    thread, its process group with a timeout so that a failure cannot hang the test."""
    os.environ.update(
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    # init_world takes no timeout: give its process group one.
    dist.init_process_group = functools.partial(
        dist.init_process_group, timeout=datetime.timedelta(seconds=TIMEOUT)
    )


def _worker(rank: int, port: int, data_dir: str, out_dir: str) -> None:
    """One of two ranks, started as torchrun would start it."""
    become_rank(rank, port)
    out = Path(out_dir)
    world = init_world("cpu")
    try:
        assert (world.rank, world.size, world.device) == (rank, 2, torch.device("cpu"))
        registry = tiny_task.registry()
        task = registry.get("task", "reverse")()
        run_dir = out / "run" if world.is_main else None  # as trm-run does
        trainer = Trainer(_config(), task, Path(data_dir), world, run_dir, registry)
        assert trainer.sampler.local_batch_size == trainer.config.train.global_batch_size // 2
        summaries, halted = _steps(_halting_early(trainer))
        written = trainer.save()  # collective: both ranks gather the carries
        torch.save(
            {"written": written, "summaries": summaries, "halted": halted, **_snapshot(trainer)},
            out / f"rank{rank}.pt",
        )
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nan_worker(rank: int, port: int, data_dir: str, out_dir: str) -> None:
    """A rank whose loss (rank 1's only) turns NaN at step 2; it records what stopped it."""
    become_rank(rank, port)
    import trm_core.trainer as trainer_module

    real, calls = trainer_module.act_loss, []

    def poisoned(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if rank == 1 and len(calls) == 2 else loss), metrics

    trainer_module.act_loss = poisoned
    world = init_world("cpu")
    try:
        registry = tiny_task.registry()
        trainer = Trainer(_config(), registry.get("task", "reverse")(), Path(data_dir), world,
                          None, registry)  # fmt: skip
        for _ in range(3):
            trainer.train_step(measure=False)  # no rank reads anything back here
        try:
            trainer.check_finite()  # a collective: both ranks learn of rank 1's step
            message = "no error"
        except trm_core.trainer.TrainingError as error:
            message = str(error)
        Path(out_dir, f"rank{rank}.txt").write_text(message)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn_two(data_dir: Path, out_dir: Path, worker=_worker) -> None:
    """Run ``worker(rank, port, data_dir, out_dir)`` in two spawned processes, as torchrun
    would start two ranks; fail the test if either fails or both take too long."""
    context = mp.start_processes(
        worker, args=(_free_port(), str(data_dir), str(out_dir)), nprocs=2, join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + 2 * TIMEOUT
    try:
        while not context.join(timeout=1):  # raises if a worker failed, with its traceback
            if time.monotonic() > deadline:
                pytest.fail(f"the two workers did not finish within {2 * TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()


def _assert_close(actual: dict, expected: dict, what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for key, value in expected.items():
        torch.testing.assert_close(
            actual[key], value, rtol=1e-5, atol=1e-5, msg=lambda m, k=key: f"{what} {k}: {m}"
        )


def test_two_processes_step_like_one_on_the_same_global_batch(tmp_path, trm_registry):
    data_dir = _build_data(tmp_path)

    # One process on the whole global batch.
    trm_registry.add_plugin(tiny_task, distribution="tests")
    config = _config()
    single = _halting_early(Trainer(config, tiny_task.ReverseTask(), data_dir, World()))
    initial_embedding = single.model.state_dict()[EMBEDDING].clone()
    summaries, halted = _steps(single)
    expected = _snapshot(single)
    # Exploration decided halting: after each step some slots halted and some went on.
    for mask in halted:
        assert 0 < int(mask.sum()) < len(mask), mask
    assert single.step == STEPS and single.run_dir is None
    # The steps did something the comparison can see: the embedding rows of every
    # identifier and the weights moved.
    moved = (expected["model"][EMBEDDING] - initial_embedding).abs().sum(-1)
    assert torch.all(moved[1:] > 0) and moved[0] == 0  # blank row 0 is never used

    # Two processes, each on half of every global batch.
    out = tmp_path / "ranks"
    out.mkdir()
    spawn_two(data_dir, out)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]

    # Both ranks hold identical weights, embeddings and EMA shadows...
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), key
    for key, value in ranks[0]["ema"].items():
        assert torch.equal(value, ranks[1]["ema"][key]), key
    # ...which match the single process within 1e-5.
    # The two ranks halted exactly the slots the single process halted, step by step.
    for step, mask in enumerate(halted):
        assert torch.equal(torch.cat([r["halted"][step] for r in ranks]), mask), step
    for rank in ranks:
        _assert_close(rank["model"], expected["model"], "model")
        _assert_close(rank["ema"], expected["ema"], "ema")
        assert rank["sampler"] == expected["sampler"]
        # Metrics summed over ranks, the gradient norm after the all-reduce, the lr.
        for got, want in zip(rank["summaries"], summaries, strict=True):
            assert got.keys() == want.keys()
            for name, value in want.items():
                assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name

    # The carries of the two ranks are the halves of the single process's carry. y and z
    # are activations (|y| ~ 3) after the 3rd step's recursion through weights that
    # differ by float noise (~1e-6): they agree to ~4e-5, so 1e-4 here.
    [whole] = expected["carries"]
    halves = ranks[0]["carries"]
    assert len(halves) == 2
    for key in ("y", "z"):
        torch.testing.assert_close(
            torch.cat([h[key] for h in halves]), whole[key], rtol=1e-4, atol=1e-4
        )
    for key in ("steps", "halted"):
        assert torch.equal(torch.cat([h[key] for h in halves]), whole[key]), key
    for key, value in whole["data"].items():
        assert torch.equal(torch.cat([h["data"][key] for h in halves]), value), key

    # One process accumulating two micro-batches a step (train.accumulate=2) is the two
    # ranks' computation: the same shares, halting, exploration draws and updates.
    config = _config()
    config = attrs.evolve(config, train=attrs.evolve(config.train, accumulate=2))
    accumulated = _halting_early(Trainer(config, tiny_task.ReverseTask(), data_dir, World()))
    assert [feed.sampler.local_batch_size for feed in accumulated.feeds] == [
        config.train.global_batch_size // 2
    ] * 2
    for step in range(STEPS):
        got = accumulated.train_step(measure=True)
        assert torch.equal(torch.cat([c.halted for c in accumulated.carries]), halted[step])
        assert got.keys() == summaries[step].keys()
        for name, value in summaries[step].items():
            assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, name)
    state = accumulated.state()
    _assert_close(accumulated.model.state_dict(), ranks[0]["model"], "accumulated model")
    _assert_close(accumulated.ema.state_dict(), ranks[0]["ema"], "accumulated ema")
    assert state["sampler"] == [rank["sampler"] for rank in ranks]
    assert len(state["carries"]) == 2
    for mine, theirs in zip(state["carries"], halves, strict=True):
        for key in ("y", "z"):
            torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-4)
        for key in ("steps", "halted"):
            assert torch.equal(mine[key], theirs[key]), key

    # Only rank 0 wrote a run folder, holding one checkpoint with both ranks' carries.
    assert ranks[1]["written"] is None
    checkpoint_path = out / "run" / "checkpoints" / "last.pt"
    assert ranks[0]["written"] == checkpoint_path
    assert sorted(p.relative_to(out) for p in out.rglob("*.pt")) == [
        Path("rank0.pt"),
        Path("rank1.pt"),
        Path("run/checkpoints/last.pt"),
    ]
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["run"]
    checkpoint = trm_core.read_checkpoint(checkpoint_path)
    assert checkpoint["step"] == STEPS and len(checkpoint["carries"]) == 2
    for saved, gathered in zip(checkpoint["carries"], halves, strict=True):
        assert torch.equal(saved["y"], gathered["y"])
        assert torch.equal(saved["data"]["labels"], gathered["data"]["labels"])
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, ranks[0]["model"][key]), key


def test_a_non_finite_loss_on_one_rank_stops_every_rank_at_its_step(tmp_path):
    """Rank 1's loss is NaN at step 2; no step reads it back, and the next check stops
    both ranks together, naming step 2 (the rank that saw it also names the value)."""
    data_dir = _build_data(tmp_path)
    out = tmp_path / "ranks"
    out.mkdir()
    spawn_two(data_dir, out, worker=_nan_worker)
    seen_by = {rank: (out / f"rank{rank}.txt").read_text() for rank in range(2)}
    assert seen_by[1].startswith("non-finite loss (nan) at step 2; stopping."), seen_by
    assert seen_by[0].startswith("non-finite loss (on another process) at step 2;"), seen_by
