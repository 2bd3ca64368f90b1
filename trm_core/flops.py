"""Model FLOPs: of one training step (counted from the config), and of a run's training
so far, which the run log reports so that recipes compare by compute, not steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .config import ModelConfig, RunConfig, structure
from .layers import swiglu_width
from .registry import Registry, get_registry


def step_flops(
    config: ModelConfig | Mapping[str, Any], batch: int, registry: Registry | None = None
) -> dict[str, int]:
    """Model FLOPs of one training step, counted from the config (2 FLOPs per multiply-add).

    Notation: B batch, D hidden, e expansion, V vocab, K blocks (num_layers), T cycles,
    n think steps, L = seq_len + P model positions (P = puzzle_emb_len when
    puzzle_emb_dim > 0, else 0), and ``I(w) = swiglu_width(w, e)`` =
    ceil_256(round(e * w * 2/3)) the hidden width of a SwiGLU over ``w`` features.

    Matmuls of one block, forward: the token mixer's own count (``Mixer.flops(B)``, which
    each mixer plugin states) and the channel SwiGLU over B·L rows of width D,
    ``6BLD·I(D)``.

    One reasoning-net call ``net = K · (mixer + channel)``. The heads run once per step:
    ``heads = 2BLDV`` (the LM head reads all L positions, the prefix is dropped after)
    ``+ 2BD·2`` (halting head on position 0).

    - forward  = ``T(n+1) · net + heads`` (every think and act call of all T cycles);
    - backward = ``2 · ((n+1) · net + heads)`` (only the last cycle's n+1 calls and the
      heads carry gradient; a backward matmul costs twice its forward: input and weight
      gradients);
    - total = forward + backward.

    Elementwise work (norms, SiLU, rotary, softmax, embeddings, loss, optimisers) is not
    counted. A mixer whose ``flops`` returns None has no count (``ValueError``).

    Returns:
        ``{"mixer", "channel", "net_call", "heads", "forward", "backward", "total"}``
        in FLOPs (mixer and channel per block per net call).
    """
    if not isinstance(config, ModelConfig):
        config = structure(ModelConfig, config, where="model")
    registry = registry or get_registry()
    b, d, v = batch, config.hidden_size, config.vocab_size
    length = config.total_len
    with torch.device("meta"):  # shapes only: the mixer counts its own matmuls
        mixer = registry.get("mixer", config.mixer)(config, length).flops(b)
    if mixer is None:
        raise ValueError(f"the {config.mixer} mixer does not count its FLOPs (Mixer.flops)")
    channel = 6 * b * length * d * swiglu_width(d, config.expansion)
    net = config.num_layers * (mixer + channel)
    heads = 2 * b * length * d * v + 2 * b * d * 2
    calls = config.think_steps + 1
    forward = config.cycles * calls * net + heads
    backward = 2 * (calls * net + heads)
    return {
        "mixer": mixer,
        "channel": channel,
        "net_call": net,
        "heads": heads,
        "forward": forward,
        "backward": backward,
        "total": forward + backward,
    }


# -- timing helpers ----------------------------------------------------------------------


def flops_per_step(config: RunConfig, registry: Registry | None = None) -> int | None:
    """The model FLOPs of one of ``config``'s training steps (its global batch), or
    None when the mixer does not count its own (``Mixer.flops``)."""
    try:
        return step_flops(config.model, config.train.global_batch_size, registry)["total"]
    except ValueError:
        return None


def format_flops(flops: float) -> str:
    """12_345_000_000_000 -> '12.3 TFLOP' (the largest unit of at least one)."""
    for unit, size in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if flops >= size:
            return f"{flops / size:.3g} {unit}"
    return f"{flops / 1e6:.3g} MFLOP"
