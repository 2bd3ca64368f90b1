"""A depthwise 1-D convolution across the sequence axis, as a trm token mixer.

Each hidden channel is convolved with its own short kernel over the L positions
(puzzle prefix included), so a position sees its ``kernel_size - 1`` nearest
neighbours in one block; recursion widens that receptive field step by step.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trm_core import ConfigError, Mixer, ModelConfig, Rotary, hookimpl, rms_norm, trunc_normal_


class ConvMixer(Mixer):
    """``h = rms(h + conv(h))`` with a depthwise, "same"-padded convolution over positions.

    The kernel size is a class attribute (model configs have no room for
    plugin options): subclass and register under another name for a wider one.
    """

    #: Positions each output sees; odd, so that "same" padding is symmetric.
    kernel_size: ClassVar[int] = 3

    def __init__(self, config: ModelConfig, length: int) -> None:
        super().__init__(config, length)
        if self.kernel_size % 2 != 1:
            raise ConfigError(f"{type(self).__name__}.kernel_size must be odd")
        # [D, 1, K]: one kernel per channel (groups = D). Stored in float32 like
        # every trm layer and cast to the activations' dtype on use; std
        # 1/sqrt(fan_in) with fan_in = K, as CastedLinear does.
        kernel = torch.empty(config.hidden_size, 1, self.kernel_size)
        self.weight = nn.Parameter(trunc_normal_(kernel, std=self.kernel_size**-0.5))

    def forward(self, hidden: Tensor, rotary: Rotary) -> Tensor:
        # Positions come from the convolution itself, so the rotary tables are unused.
        channels_first = hidden.transpose(1, 2)  # [B, D, L]
        mixed = F.conv1d(
            channels_first,
            self.weight.to(hidden.dtype),
            padding="same",
            groups=self.config.hidden_size,
        )  # [B, D, L]
        return rms_norm(hidden + mixed.transpose(1, 2), self.config.rms_norm_eps)  # [B, L, D]


@hookimpl
def register_mixers(register):
    register("conv", ConvMixer)
