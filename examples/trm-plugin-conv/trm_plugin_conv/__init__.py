"""A depthwise 1-D convolution across the sequence axis, as a trm token mixer.

Each hidden channel is convolved with its own short kernel over the L positions
(puzzle prefix included), so a position sees its ``kernel_size - 1`` nearest
neighbours in one block; recursion widens that receptive field step by step.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trm_core import Mixer, ModelConfig, Rotary, hookimpl, rms_norm, trunc_normal_

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


def _odd(instance, attribute, value):
    if value < 1 or value % 2 != 1:
        raise ValueError(f"must be odd and positive, got {value!r}")


@attrs.define(kw_only=True)
class ConvOptions:
    """The mixer's own options, set under ``model.options.conv`` (e.g. with
    ``--set model.options.conv.kernel_size=5``); a typo gets the nearest key."""

    #: Positions each output sees; odd, so that "same" padding is symmetric.
    kernel_size: int = attrs.field(default=3, validator=_odd)


class ConvMixer(Mixer):
    """``h = rms(h + conv(h))`` with a depthwise, "same"-padded convolution over positions."""

    Options = ConvOptions

    def __init__(self, config: ModelConfig, length: int) -> None:
        super().__init__(config, length)  # parses self.options from the config
        size = self.options.kernel_size
        # [D, 1, K]: one kernel per channel (groups = D). Stored in float32 like
        # every trm layer and cast to the activations' dtype on use; std
        # 1/sqrt(fan_in) with fan_in = K, as CastedLinear does.
        kernel = torch.empty(config.hidden_size, 1, size)
        self.weight = nn.Parameter(trunc_normal_(kernel, std=size**-0.5))

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
