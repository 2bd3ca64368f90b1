"""The MLP mixer: a SwiGLU across the sequence axis (the paper's best Sudoku recipe, ``mlp_t``)."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from trm_core import Mixer, ModelConfig, Rotary, SwiGLU, hookimpl, rms_norm, swiglu_width

#: The trm plugin contract this plugin is written for (see trm_core.PLUGIN_CONTRACT).
TRM_PLUGIN_CONTRACT = 2


class MLPMixer(Mixer):
    """Transpose to [B, D, L], ``h = rms(h + SwiGLU_L(h))``, transpose back.

    As in the reference, the norm runs over the last axis of the transposed
    tensor, i.e. over positions. The mixer needs a fixed length L = P + S, and
    has no use for rotary positions: it requires the encoder's to be off.
    """

    reference_prefix = "mlp_t"
    reference_mlp_t = True
    requires: ClassVar[dict[str, tuple[str, ...]]] = {"encoder.positions": ("none", "learned")}

    def __init__(self, config: ModelConfig, length: int) -> None:
        super().__init__(config, length)
        self.mlp = SwiGLU(length, config.expansion)

    def forward(self, hidden: Tensor, rotary: Rotary) -> Tensor:
        if hidden.shape[1] != self.length:
            raise ValueError(
                f"the mlp mixer was built for {self.length} positions (seq_len + prefix) "
                f"but got {hidden.shape[1]}"
            )
        transposed = hidden.transpose(1, 2)  # [B, D, L]
        transposed = rms_norm(transposed + self.mlp(transposed), self.config.rms_norm_eps)
        return transposed.transpose(1, 2)  # [B, L, D]

    def flops(self, batch: int) -> int:
        """A SwiGLU over B·D rows of width L: gate/up ``2BD·L·2I`` + down ``2BD·I·L``,
        i.e. ``6BDL·I`` with ``I = swiglu_width(L, expansion)``."""
        dim, length = self.config.hidden_size, self.length
        return 6 * batch * dim * length * swiglu_width(length, self.config.expansion)

    def reference_keys(self) -> dict[str, str]:
        return {f"mlp.{name}": name for name in ("gate_up_proj.weight", "down_proj.weight")}


@hookimpl
def register_mixers(register):
    register("mlp", MLPMixer)
