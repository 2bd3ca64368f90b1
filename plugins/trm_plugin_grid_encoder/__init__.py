"""The grid encoder: token table, puzzle-embedding prefix and positions (TRM_SPEC section 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from trm_core import (
    CastedEmbedding,
    ConfigError,
    Encoder,
    ModelConfig,
    PuzzleEmbedding,
    Rotary,
    hookimpl,
    rotary_tables,
)

LEARNED_POSITION_SCALE = 0.707106781  # ~1/sqrt(2): keeps the variance of token + position


class GridEncoder(Encoder):
    """x = sqrt(D) * [puzzle prefix (P tokens); token embeddings] (+ learned positions)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        dim = config.hidden_size
        dtype = getattr(torch, config.dtype)
        self.scale = math.sqrt(dim)
        self.embed_tokens = CastedEmbedding(config.vocab_size, dim, std=1 / self.scale, dtype=dtype)
        self.puzzle_embedding = (
            PuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_dim, dtype)
            if config.puzzle_emb_dim
            else None
        )
        self._prefix_len = config.prefix_len
        length = config.total_len
        self.embed_positions = None
        if config.positions == "learned":
            self.embed_positions = CastedEmbedding(length, dim, std=1 / self.scale, dtype=dtype)
        if config.positions == "rope":
            if dim % config.num_heads:
                raise ConfigError(
                    f"model.hidden_size ({dim}) must be divisible by model.num_heads "
                    f"({config.num_heads}) for rope positions"
                )
            cos, sin = rotary_tables(length, dim // config.num_heads, config.rope_theta)
            self.register_buffer("rotary_cos", cos, persistent=False)  # [L, head_dim]
            self.register_buffer("rotary_sin", sin, persistent=False)

    @property
    def prefix_len(self) -> int:
        return self._prefix_len

    def forward(self, inputs: Tensor, puzzle_identifiers: Tensor) -> Tensor:
        config = self.config
        embedding = self.embed_tokens(inputs.long())  # [B, S, D]
        if self.puzzle_embedding is not None:
            rows = self.puzzle_embedding(puzzle_identifiers.long())  # [B, puzzle_emb_dim]
            rows = F.pad(rows, (0, self._prefix_len * config.hidden_size - rows.shape[-1]))
            prefix = rows.view(-1, self._prefix_len, config.hidden_size)  # [B, P, D]
            embedding = torch.cat((prefix, embedding), dim=-2)  # [B, L, D]
        if self.embed_positions is not None:
            if embedding.shape[1] != self.embed_positions.weight.shape[0]:
                raise ValueError(
                    f"inputs have {inputs.shape[1]} tokens but the learned positions were "
                    f"built for seq_len {config.seq_len}"
                )
            positions = self.embed_positions.weight.to(embedding.dtype)
            embedding = LEARNED_POSITION_SCALE * (embedding + positions)
        return self.scale * embedding

    def rotary(self, length: int) -> Rotary:
        if self.config.positions != "rope":
            return None
        if length > self.rotary_cos.shape[0]:
            head_dim = self.config.hidden_size // self.config.num_heads
            return rotary_tables(
                length, head_dim, self.config.rope_theta, device=self.rotary_cos.device
            )
        return self.rotary_cos[:length], self.rotary_sin[:length]

    def reference_keys(self) -> dict[str, str]:
        keys = {"embed_tokens.weight": "embed_tokens.embedding_weight"}
        if self.puzzle_embedding is not None:
            keys["puzzle_embedding.weights"] = "puzzle_emb.weights"
        if self.embed_positions is not None:
            keys["embed_positions.weight"] = "embed_pos.embedding_weight"
        return keys


@hookimpl
def register_encoders(register):
    register("grid", GridEncoder)
