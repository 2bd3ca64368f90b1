"""Multi-head non-causal self-attention with a fused qkv projection and rotary positions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from trm_core import (
    CastedLinear,
    ConfigError,
    Mixer,
    ModelConfig,
    Rotary,
    apply_rotary,
    hookimpl,
    rms_norm,
)


class AttentionMixer(Mixer):
    """``h = rms(h + Attn(h))``: every position attends to every other (no mask)."""

    reference_prefix = "self_attn"
    reference_mlp_t = False

    def __init__(self, config: ModelConfig, length: int) -> None:
        super().__init__(config, length)
        dim, heads = config.hidden_size, config.num_heads
        if dim % heads:
            raise ConfigError(
                f"model.hidden_size ({dim}) must be divisible by model.num_heads ({heads})"
            )
        self.num_heads, self.head_dim = heads, dim // heads
        self.qkv_proj = CastedLinear(dim, 3 * dim)  # rows: q heads, then k heads, then v heads
        self.o_proj = CastedLinear(dim, dim)

    def forward(self, hidden: Tensor, rotary: Rotary) -> Tensor:
        batch, length, dim = hidden.shape
        qkv = self.qkv_proj(hidden).view(batch, length, 3 * self.num_heads, self.head_dim)
        query, key, value = qkv.split(self.num_heads, dim=2)  # [B, L, H, head_dim] each
        if rotary is not None:
            cos, sin = rotary
            query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        attended = F.scaled_dot_product_attention(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
        )  # [B, H, L, head_dim]
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        return rms_norm(hidden + self.o_proj(attended), self.config.rms_norm_eps)


@hookimpl
def register_mixers(register):
    register("attention", AttentionMixer)
