"""A depth curriculum (``train.curriculum``): shallower recursion early in training.

CGAR (Qasim and Zhang, "Accelerating Training Speed of Tiny Recursive Models with
Curriculum Guided Adaptive Recursion", 2025, arXiv:2511.08653) trains with fewer think
steps and cycles first and the full depth last; its early steps cost less and, it
reports, lose no accuracy. Here a run names its stages (``{until: FRACTION,
think_steps, cycles, halt_max_steps}``); each step uses the stage its (1-based) step
number falls in, a pure function of the step, so a resumed run follows the same
schedule. The model's own values hold after the last stage, in evaluation and in what
is saved.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .config import CurriculumStage, ModelConfig, RunConfig

#: The model values a stage may set.
DEPTH_KEYS = ("think_steps", "cycles", "halt_max_steps")


def last_step(fraction: float, total_steps: int) -> int:
    """The last 1-based step within ``fraction`` of ``total_steps``: where a stage that
    holds ``until`` that fraction ends (and where ``train.muon_from`` hands over)."""
    return math.ceil(fraction * total_steps)


def stage_ends(config: RunConfig, total_steps: int) -> list[tuple[int, CurriculumStage]]:
    """``[(last step of the stage, stage)]`` in order: a stage covers the steps up to
    :func:`last_step` of its ``until`` after the one before."""
    stages = sorted(config.train.curriculum.values(), key=lambda stage: stage.until)
    return [(last_step(stage.until, total_steps), stage) for stage in stages]


def overrides(stage: CurriculumStage) -> dict[str, int]:
    """The model values ``stage`` sets (those it leaves null keep the model's)."""
    return {key: getattr(stage, key) for key in DEPTH_KEYS if getattr(stage, key)}


def depth_at(config: RunConfig, step: int, total_steps: int) -> dict[str, Any]:
    """The model values the 1-based training ``step`` overrides (``{}``: the model's own)."""
    for last, stage in stage_ends(config, total_steps):
        if step <= last:
            return overrides(stage)
    return {}


def segments(config: RunConfig, total_steps: int, upto: int) -> list[tuple[int, ModelConfig]]:
    """``[(steps, model config)]``: how many of steps 1..``upto`` ran at each depth."""
    out, done = [], 0
    for last, stage in stage_ends(config, total_steps):
        end = min(last, upto)
        if end > done:
            out.append((end - done, attrs.evolve(config.model, **overrides(stage))))
            done = end
    if upto > done:
        out.append((upto - done, config.model))
    return out
