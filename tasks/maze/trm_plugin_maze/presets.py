"""The Maze presets: the paper's recipe and a CPU recipe that learns in minutes.

``paper`` is the Maze-Hard recipe of the paper (Jolicoeur-Martineau, "Less is
More: Recursive Reasoning with Tiny Networks", 2025, arXiv:2510.04871): the
attention mixer with rotary positions, T=3 cycles of n=4 think steps, 16
supervision steps, hidden 512; 1,000 training and 1,000 test 30x30 mazes (Maze-Hard from the Hugging
Face Hub: ``pip install 'trm-plugin-maze[hub]'``; or set
``data.options.train.source=generate`` and likewise for test to generate
mazes the same way offline); no augmentation (the 8 dihedral transforms are
``data.augmentations=7``); global batch 768, lr and puzzle-embedding lr 1e-4,
weight decay 1.0, warm-up 2,000 steps, EMA 0.999, 50,000 epochs with
evaluation every 5,000 (the rest is :func:`trm_core.paper_recipe`).

``cpu`` (the default without CUDA) learns 7x7 mazes on a 2-core CPU in about
nine minutes: 30,000 generated mazes with shortest paths over 6 moves, MLP
mixer, hidden size 64, 2 supervision steps of one cycle of n=4 think steps,
batch 64, 1,800 steps, Muon for the core's matrices (``train.optimizer``; the rest is
:func:`trm_core.cpu_recipe`). ``--mixer attention`` adds rotary positions.
"""

from __future__ import annotations

from typing import Any

from trm_core import cpu_recipe, fast_recipe, paper_recipe, paper_steps

PAPER_MAZES, PAPER_EPOCHS, PAPER_EVAL_EPOCHS = 1000, 50000, 5000
# The reference's epoch is one pass over its 1,000 mazes: 50,000 x 1,000 / 768 steps.
PAPER_STEPS = paper_steps(PAPER_EPOCHS, PAPER_MAZES)  # 65,105
PAPER_EVAL_STEPS = paper_steps(PAPER_EVAL_EPOCHS, PAPER_MAZES)  # 6,511

PAPER = paper_recipe(
    model={
        "mixer": "attention",
        "options": {"grid": {"positions": "rope"}, "attention": {"num_heads": 8}},
        "think_steps": 4,
    },
    data={
        "options": {
            "seed": 0,
            "side": 30,
            "train": {"source": "hub", "split": "train"},
            "test": {"source": "hub", "split": "test"},
        },
        "augmentations": 0,
    },
    train={"steps": PAPER_STEPS},
    eval={"interval_steps": PAPER_EVAL_STEPS, "batch_size": 256},
)

#: The CPU recipe. Measured choices (each a run on the 2-core development machine):
#: few supervision steps of deeper thinking (2 steps of n=4) let the trainer take in
#: about eight times more mazes per step than 16 steps of n=2 (a slot holds its maze
#: until it halts), which is what made the difference (62% valid paths after 800 steps
#: against 4%); no augmentation keeps the label's tie-break one rule (30,000 distinct
#: generated mazes instead); the MLP mixer learns these small grids far sooner than
#: attention with 1-D rotary positions.
CPU = cpu_recipe(
    model={
        "options": {"grid": {"positions": "none"}, "attention": {"num_heads": 2}},
        "think_steps": 4,
        "puzzle_emb_dim": 0,  # one puzzle identifier: a puzzle embedding adds nothing
        "halt_max_steps": 2,
    },
    data={
        "options": {
            "seed": 0,
            "side": 7,
            # Shortest paths longer than 6 moves (7-18, median 8); walls 30-50% as Maze-Hard.
            "train": {"source": "generate", "count": 30000, "min_length": 6},
            "test": {"source": "generate", "count": 1000, "min_length": 6},
        },
        "augmentations": 0,
    },
    # Muon for the core's matrices: 93.1% exact (92.8-93.4 over 3 seeds) against Adam-atan2's
    # 90.8% (89.1-92.0) at 1.05x the training time (docs/performance.md#time-to-accuracy).
    train={"steps": 1800, "optimizer": "muon"},  # about 8.5 min on 2 AVX2 cores
    eval={"interval_steps": 600, "batch_size": 1000},
    by_mixer={"attention": {"model": {"options": {"grid": {"positions": "rope"}}}}},
)

#: The paper's recipe with CGAR's depth curriculum and supervision weights (see
#: trm_core.fast_recipe): n=1, T=1 to 30% of the steps, n=3, T=2 to 60%, then n=4, T=3.
FAST = fast_recipe(PAPER)

PRESETS: dict[str, dict[str, Any]] = {"cpu": CPU, "paper": PAPER, "fast": FAST}
