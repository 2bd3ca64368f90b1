"""Multi-head non-causal self-attention with a fused qkv projection and rotary positions.

Options (``model.options.attention``): ``num_heads``.
"""

from __future__ import annotations

import attrs
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
    positive,
    rms_norm,
)

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


@attrs.define(kw_only=True)
class AttentionOptions:
    """The attention mixer's own option."""

    num_heads: int = attrs.field(
        default=8,
        validator=positive,
        metadata={"doc": "attention heads; hidden_size must be a multiple (head width = D/H)"},
    )


class AttentionMixer(Mixer):
    """``h = rms(h + Attn(h))``: every position attends to every other (no mask)."""

    reference_prefix = "self_attn"
    reference_mlp_t = False
    Options = AttentionOptions

    def __init__(self, config: ModelConfig, length: int) -> None:
        super().__init__(config, length)
        dim, heads = config.hidden_size, self.options.num_heads
        if dim % heads:
            raise ConfigError(
                f"model.hidden_size ({dim}) must be divisible by "
                f"model.options.{config.mixer}.num_heads ({heads})"
            )
        self.num_heads, self.head_dim = heads, dim // heads
        self.rotary_dim = self.head_dim  # rope rotates each head's query and key
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

    def flops(self, batch: int) -> int:
        """qkv ``2BL·D·3D`` + scores QKᵀ ``2BL²D`` + weights·V ``2BL²D`` + output
        ``2BL·D·D``, i.e. ``2BL(4D² + 2LD)``."""
        dim, length = self.config.hidden_size, self.length
        return 2 * batch * length * (4 * dim * dim + 2 * length * dim)


@hookimpl
def register_mixers(register):
    register("attention", AttentionMixer)
