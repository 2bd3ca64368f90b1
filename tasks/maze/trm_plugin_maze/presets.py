"""The Maze presets: the paper's recipe and a CPU recipe that learns in minutes.

``paper`` is TRM_SPEC sections 4 and 5 for Maze-Hard: the attention mixer with
rotary positions, T=3 cycles of n=4 think steps, 16 supervision steps, hidden
512; 1,000 training and 1,000 test 30x30 mazes (Maze-Hard from the Hugging
Face Hub: ``pip install 'trm-plugin-maze[hub]'``; or set
``data.options.train.source=generate`` and likewise for test to generate
mazes the same way offline); no augmentation (the 8 dihedral transforms are
``data.augmentations=7``); global batch 768, lr and puzzle-embedding lr 1e-4,
weight decay 1.0, warm-up 2,000 steps, EMA 0.999, 50,000 epochs with
evaluation every 5,000.

``cpu`` (the default without CUDA) learns 7x7 mazes on a 2-core CPU in about
nine minutes: 30,000 generated mazes with shortest paths over 6 moves, MLP
mixer, hidden size 64, 2 supervision steps of one cycle of n=4 think steps,
batch 64, 1,800 steps. ``--mixer attention`` adds rotary positions.
"""

from __future__ import annotations

import math
from typing import Any

PAPER_MAZES, PAPER_EPOCHS, PAPER_EVAL_EPOCHS, PAPER_BATCH = 1000, 50000, 5000, 768
# The reference's epoch is one pass over its 1,000 mazes: 50,000 x 1,000 / 768 steps.
PAPER_STEPS = math.ceil(PAPER_EPOCHS * PAPER_MAZES / PAPER_BATCH)  # 65,105
PAPER_EVAL_STEPS = math.ceil(PAPER_EVAL_EPOCHS * PAPER_MAZES / PAPER_BATCH)  # 6,511

PAPER = {
    "model": {
        "mixer": "attention",
        "positions": "rope",
        "hidden_size": 512,
        "num_heads": 8,
        "expansion": 4,
        "num_layers": 2,
        "cycles": 3,
        "think_steps": 4,
        "puzzle_emb_len": 16,
        "halt_max_steps": 16,
        "halt_exploration_prob": 0.1,
        "dtype": "auto",
    },
    "data": {
        "options": {
            "seed": 0,
            "side": 30,
            "train": {"source": "hub", "split": "train"},
            "test": {"source": "hub", "split": "test"},
        },
        "augmentations": 0,
    },
    "train": {
        "global_batch_size": PAPER_BATCH,
        "steps": PAPER_STEPS,
        "lr": 1e-4,
        "lr_warmup_steps": 2000,
        "lr_min_ratio": 1.0,
        "beta1": 0.9,
        "beta2": 0.95,
        "weight_decay": 1.0,
        "puzzle_emb_lr": 1e-4,
        "puzzle_emb_weight_decay": 1.0,
        "ema": True,
        "ema_rate": 0.999,
        "loss": "stablemax",
        "log_interval": 50,
    },
    "eval": {"interval_steps": PAPER_EVAL_STEPS, "batch_size": 256, "images": 4},
}

#: The CPU recipe. Measured choices (each a run on the 2-core development machine):
#: few supervision steps of deeper thinking (2 steps of n=4) let the trainer take in
#: about eight times more mazes per step than 16 steps of n=2 (a slot holds its maze
#: until it halts), which is what made the difference (62% valid paths after 800 steps
#: against 4%); no augmentation keeps the label's tie-break one rule (30,000 distinct
#: generated mazes instead); the MLP mixer learns these small grids far sooner than
#: attention with 1-D rotary positions.
CPU = {
    "model": {
        "mixer": "mlp",
        "positions": "none",
        "hidden_size": 64,
        "num_heads": 2,
        "expansion": 4,
        "num_layers": 2,
        "cycles": 1,
        "think_steps": 4,
        "puzzle_emb_dim": 0,  # one puzzle identifier: a puzzle embedding adds nothing
        "halt_max_steps": 2,
        "dtype": "auto",
    },
    "data": {
        "options": {
            "seed": 0,
            "side": 7,
            # Shortest paths longer than 6 moves (7-18, median 8); walls 30-50% as Maze-Hard.
            "train": {"source": "generate", "count": 30000, "min_length": 6},
            "test": {"source": "generate", "count": 1000, "min_length": 6},
        },
        "augmentations": 0,
    },
    "train": {
        "global_batch_size": 64,
        "steps": 1800,  # about 8.5 minutes on 2 AVX2 cores (0.28 s a step)
        "lr": 3e-3,
        "lr_warmup_steps": 200,
        "lr_min_ratio": 0.1,
        "weight_decay": 0.1,
        "puzzle_emb_lr": 1e-2,
        "puzzle_emb_weight_decay": 0.1,
        "ema_rate": 0.99,  # a short run: average over the last ~100 steps
        "log_interval": 20,
    },
    "eval": {"interval_steps": 600, "batch_size": 1000, "images": 4},
    "by_mixer": {"attention": {"model": {"positions": "rope"}}},
}

PRESETS: dict[str, dict[str, Any]] = {"cpu": CPU, "paper": PAPER}
