"""The Life presets: a CPU recipe that learns in a minute or so, and the paper's model size.

``cpu`` (the default without CUDA): 8x8 boards, the MLP mixer (it mixes all 64
cells, so it can learn which 8 are a cell's neighbours), hidden size 32, one
supervision step of three think steps, batch 64, lr 1e-2, 250 steps; the rest
is :func:`trm_core.cpu_recipe`. It beats copying the board (64% of cells right)
within about 120 steps; Life is hard for a network to learn exactly, and this
recipe is a quick start, not a solver.

``paper`` (the default on CUDA): the model and optimiser of the TRM paper
(arXiv:2510.04871; attention with rotary positions, hidden size 512, T=3 cycles
of n=6 think steps, up to 16 supervision steps, EMA 0.999: the rest is
:func:`trm_core.paper_recipe`) on 16x16 boards, with the 8 dihedral transforms
and the shifts of the torus as augmentations. The paper has no result on Life:
this is a larger recipe for a GPU, not a reproduction.
"""

from __future__ import annotations

from typing import Any

from trm_core import cpu_recipe, paper_recipe

CPU = cpu_recipe(
    model={
        "options": {"grid": {"positions": "none"}},  # the MLP mixer has its own positions
        "hidden_size": 32,
        "expansion": 2,
        "think_steps": 3,
        "puzzle_emb_dim": 0,  # one puzzle identifier: a puzzle embedding adds nothing
        "halt_max_steps": 1,
    },
    data={
        "options": {"seed": 0, "side": 8, "train_count": 5000, "test_count": 500},
        "augmentations": 0,  # fresh random boards are as good as transformed ones
    },
    train={"steps": 250, "lr": 1e-2, "lr_warmup_steps": 10, "ema_rate": 0.95},
    eval={"interval_steps": 125, "batch_size": 500},
    by_mixer={"attention": {"model": {"options": {"grid": {"positions": "rope"}}}}},
)

PAPER = paper_recipe(
    model={"mixer": "attention", "think_steps": 6, "puzzle_emb_dim": 0},
    data={
        "options": {"seed": 0, "side": 16, "train_count": 10000, "test_count": 1000},
        "augmentations": 7,  # 7 random symmetries of each board per epoch
    },
    train={"steps": 20000},
    eval={"interval_steps": 2000},
    by_mixer={"mlp": {"model": {"options": {"grid": {"positions": "none"}}}}},
)

PRESETS: dict[str, dict[str, Any]] = {"cpu": CPU, "paper": PAPER}
