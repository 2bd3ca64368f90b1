"""The grid encoder: token table, puzzle-embedding prefix and positions (docs/architecture.md).

Options (``model.options.grid``): ``positions`` (rope, learned or none) and
``rope_theta``.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from trm_core import (
    CastedEmbedding,
    Encoder,
    ModelConfig,
    PuzzleEmbedding,
    Rotary,
    hookimpl,
    one_of,
    positive,
    rotary_tables,
)

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2

LEARNED_POSITION_SCALE = 0.707106781  # ~1/sqrt(2): keeps the variance of token + position
POSITIONS = ("rope", "learned", "none")


@attrs.define(kw_only=True)
class GridOptions:
    """How the grid encoder gives positions."""

    positions: str = attrs.field(
        default="rope",
        validator=one_of(POSITIONS),
        metadata={"doc": "rope (rotary, for attention), learned (a table) or none"},
    )
    rope_theta: float = attrs.field(
        default=10000.0,
        converter=float,
        validator=positive,
        metadata={"doc": "the rotary base wavelength"},
    )


class GridEncoder(Encoder):
    """x = sqrt(D) * [puzzle prefix (P tokens); token embeddings] (+ learned positions)."""

    Options = GridOptions

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
        if self.options.positions == "learned":
            self.embed_positions = CastedEmbedding(length, dim, std=1 / self.scale, dtype=dtype)

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

    def rotary(self, length: int, dim: int) -> Rotary:
        if self.options.positions != "rope":
            return None
        return rotary_tables(length, dim, self.options.rope_theta)  # [L, dim] each

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
