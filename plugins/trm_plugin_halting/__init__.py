"""The paper's halting head: a linear map of the answer state at position 0."""

from __future__ import annotations

import torch
from torch import Tensor

from trm_core import CastedLinear, HaltingHead, ModelConfig, hookimpl

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


class FirstTokenHead(HaltingHead):
    """``[halt, continue] = Linear(y[:, 0])``; only the halt logit drives halting."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.linear = CastedLinear(config.hidden_size, 2, bias=True)
        with torch.no_grad():
            # Start almost sure to continue: halting must be learned.
            self.linear.weight.zero_()
            self.linear.bias.fill_(-5.0)

    def forward(self, y: Tensor) -> dict[str, Tensor]:
        logits = self.linear(y[:, 0]).float()  # [B, 2]
        return {"halt_logits": logits[:, 0], "continue_logits": logits[:, 1]}

    def reference_keys(self) -> dict[str, str]:
        return {"linear.weight": "q_head.weight", "linear.bias": "q_head.bias"}


@hookimpl
def register_halting_heads(register):
    register("first_token", FirstTokenHead)
