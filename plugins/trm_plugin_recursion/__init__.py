"""The paper's think/act core: one tiny network, T cycles of n thinks and one act."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from trm_core import Mixer, ModelConfig, ReasoningNet, Rotary, ThinkActCore, hookimpl, trunc_normal_

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


class RecursiveCore(ThinkActCore):
    """T-1 cycles without gradient, then one with (docs/architecture.md#think-and-act)."""

    def __init__(self, config: ModelConfig, make_mixer: Callable[[], Mixer]) -> None:
        super().__init__(config, make_mixer)
        self.net = ReasoningNet(config, make_mixer)
        dim = config.hidden_size
        # Fixed starting points, broadcast over positions; persistent buffers, never trained.
        self.register_buffer("y_init", trunc_normal_(torch.empty(dim), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(dim), std=1.0))

    def initial_state(self) -> tuple[Tensor, Tensor]:
        return self.y_init, self.z_init

    def think(self, y: Tensor, z: Tensor, x: Tensor, rotary: Rotary) -> Tensor:
        """n latent updates z <- f(z, y + x)."""
        for _ in range(self.config.think_steps):
            z = self.net(z, y + x, rotary)
        return z

    def act(self, y: Tensor, z: Tensor, rotary: Rotary) -> Tensor:
        """One answer update y <- f(y, z)."""
        return self.net(y, z, rotary)

    def forward(self, y: Tensor, z: Tensor, x: Tensor, rotary: Rotary) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            for _ in range(self.config.cycles - 1):
                z = self.think(y, z, x, rotary)
                y = self.act(y, z, rotary)
        z = self.think(y, z, x, rotary)  # gradient flows through this last cycle only
        y = self.act(y, z, rotary)
        return y, z

    def reference_keys(self) -> dict[str, str]:
        mixer = self.net.blocks[0].token_mixer
        net_keys = self.net.reference_keys(type(mixer).reference_prefix, mixer.reference_keys())
        keys = {"y_init": "H_init", "z_init": "L_init"}
        keys.update({f"net.{ours}": ref for ours, ref in net_keys.items()})
        return keys


@hookimpl
def register_cores(register):
    register("trm", RecursiveCore)
