"""The Life presets: a CPU recipe that learns in seconds, and the paper's model size.

``cpu`` (the default without CUDA): 8x8 boards, the MLP mixer (it mixes all 64
cells, so it can learn each cell's 8 neighbours), hidden size 64, two
supervision steps of one cycle of two think steps, batch 64; the rest is
:func:`trm_core.cpu_recipe`.

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
        "think_steps": 2,
        "puzzle_emb_dim": 0,  # one puzzle identifier: a puzzle embedding adds nothing
        "halt_max_steps": 2,
    },
    data={
        "options": {"seed": 0, "side": 8, "train_count": 5000, "test_count": 500},
        "augmentations": 0,  # fresh random boards are as good as transformed ones
    },
    train={"steps": 300, "lr_warmup_steps": 30, "ema_rate": 0.95},
    eval={"interval_steps": 100, "batch_size": 500},
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
