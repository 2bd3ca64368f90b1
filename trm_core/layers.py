"""Building blocks shared by the component plugins (docs/architecture.md#the-network).

Weights are stored in float32 and cast to the activations' dtype on use, so a
bfloat16 forward keeps float32 master weights for the optimiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ConfigError, ModelConfig


def trunc_normal_(tensor: Tensor, std: float, bound: float = 2.0) -> Tensor:
    """Fill ``tensor`` with a normal truncated at +-``bound`` standard units.

    JAX-style: the result's standard deviation is ``std`` (the truncation's
    variance loss is compensated), values lie within +-bound * corrected std.
    """
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        # Sample by inverse CDF over the truncated range.
        lo, hi = math.erf(-bound / math.sqrt(2)), math.erf(bound / math.sqrt(2))
        tensor.uniform_(lo, hi).erfinv_()  # standard normal / sqrt(2), truncated
        # Variance of a standard normal truncated to [-bound, bound].
        mass = (hi - lo) / 2
        density = math.exp(-0.5 * bound * bound) / math.sqrt(2 * math.pi)
        truncated_var = 1 - 2 * bound * density / mass
        corrected = std / math.sqrt(truncated_var)
        tensor.mul_(math.sqrt(2) * corrected).clamp_(-bound * corrected, bound * corrected)
    return tensor


def rms_norm(hidden: Tensor, eps: float) -> Tensor:
    """Weightless RMSNorm over the last axis, computed in float32."""
    with torch.profiler.record_function(NORM_SCOPE):  # for trm-bench --profile's split
        dtype = hidden.dtype
        hidden = hidden.float()
        hidden = hidden * torch.rsqrt(hidden.square().mean(-1, keepdim=True) + eps)
        return hidden.to(dtype)


#: The profiler scope of :func:`rms_norm`'s forward (trm-bench --profile).
NORM_SCOPE = "trm::rms_norm"


class CastedLinear(nn.Module):
    """A linear layer (truncated-normal init, std 1/sqrt(fan_in)) run in the input's dtype."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            trunc_normal_(torch.empty(out_features, in_features), std=in_features**-0.5)
        )
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    """An embedding table (truncated-normal init) read out in ``dtype``."""

    def __init__(self, num: int, dim: int, std: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(num, dim), std=std))
        self.dtype = dtype

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight.to(self.dtype))


class PuzzleEmbedding(nn.Module):
    """Per-puzzle embedding rows, zero-initialised, kept as a buffer.

    The table is not an ``nn.Parameter``: it is trained by its own sign-SGD
    optimiser that touches only the rows a batch used. In training mode the
    forward returns a leaf copy of those rows that collects their gradient;
    ``last_ids`` / ``last_rows`` expose both to that optimiser.
    """

    def __init__(self, num: int, dim: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("weights", torch.zeros(num, dim), persistent=True)
        #: [num] int32 row of each identifier in ``weights`` once :meth:`keep_rows` has
        #: dropped rows (a model folder keeps only those its evaluation uses); else None.
        self.register_buffer("lookup", None)
        self.num = num
        self.dtype = dtype
        self.last_ids: Tensor | None = None
        self.last_rows: Tensor | None = None

    def keep_rows(self, identifiers: Tensor, rows: Tensor) -> None:
        """Keep only the rows of ``identifiers`` ([K] ascending, starting with the blank
        identifier 0); every other identifier reads the blank row. For inference: a
        model with rows dropped cannot train."""
        identifiers = identifiers.to(torch.long)
        if identifiers.ndim != 1 or len(identifiers) != len(rows) or int(identifiers[0]) != 0:
            raise ValueError("keep_rows: [K] identifiers from 0, one per row")
        if not bool((identifiers[1:] > identifiers[:-1]).all()) or identifiers[-1] >= self.num:
            raise ValueError(f"keep_rows: identifiers must ascend within 0..{self.num - 1}")
        lookup = torch.zeros(self.num, dtype=torch.int32, device=rows.device)
        lookup[identifiers.to(rows.device)] = torch.arange(
            len(identifiers), dtype=torch.int32, device=rows.device
        )
        self.weights = rows.to(torch.float32)
        self.lookup = lookup

    def kept(self) -> tuple[Tensor, Tensor]:
        """``(identifiers [K], rows [K, dim])``: the identifiers whose rows this table
        holds (all of them unless :meth:`keep_rows` dropped some)."""
        if self.lookup is None:
            return torch.arange(self.num, device=self.weights.device), self.weights
        identifiers = torch.nonzero(self.lookup).flatten()
        identifiers = torch.cat([identifiers.new_zeros(1), identifiers])
        return identifiers, self.weights[self.lookup[identifiers].long()]

    def forward(self, ids: Tensor) -> Tensor:
        """[B] ids -> [B, dim] rows in the forward dtype."""
        if not self.training:
            if self.lookup is not None:
                ids = self.lookup[ids].long()
            return self.weights[ids].to(self.dtype)
        if self.lookup is not None:
            raise RuntimeError("a puzzle-embedding table with rows dropped cannot train")
        rows = self.weights[ids].detach().requires_grad_(True)  # [B, dim] leaf
        self.last_ids, self.last_rows = ids, rows
        return rows.to(self.dtype)


def rotary_tables(length: int, head_dim: int, theta: float, device=None) -> tuple[Tensor, Tensor]:
    """Rotary ``(cos, sin)`` for positions 0..length-1, each [length, head_dim] float32."""
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    )
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)  # [length, head_dim]
    return angles.cos(), angles.sin()


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate [B, L, H, head_dim] queries or keys (rotate-half convention) in float32."""
    dtype = x.dtype
    x = x.to(cos.dtype)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # [L, 1, head_dim]
    return (x * cos + _rotate_half(x) * sin).to(dtype)


def swiglu_width(width: int, expansion: float) -> int:
    """Hidden width of a SwiGLU over ``width`` features: round(e*w*2/3) up to a multiple of 256."""
    inter = round(expansion * width * 2 / 3)
    if inter < 1:
        raise ConfigError(
            f"model.expansion {expansion:g} leaves a SwiGLU over {width} features no hidden "
            f"units; use at least {1.5 / width:.3g}"
        )
    return -(-inter // 256) * 256


#: Rows per slice of a sliced CPU SwiGLU (:meth:`SwiGLU.forward`), forward and backward.
CPU_SLICE_ROWS = 512
#: The widest input a CPU SwiGLU is sliced for: past it the matmuls outweigh the memory
#: traffic slicing saves (docs/performance.md).
CPU_SLICE_MAX_WIDTH = 256
#: With gradient, the smallest full ``[rows, 2I]`` projection (bytes) worth slicing: below
#: it the slices' extra weight-gradient matmuls cost what the cache saves.
CPU_SLICE_MIN_GRAD_BYTES = 16 * 2**20


class SwiGLU(nn.Module):
    """``down(silu(gate) * up)`` with gate and up stacked gate-first in one projection.

    On a CPU, over inputs at most CPU_SLICE_MAX_WIDTH wide and at least two slices of
    CPU_SLICE_ROWS rows, the rows run slice by slice (:func:`_sliced_forward`): always
    without gradient (evaluation, the first T-1 cycles), and with gradient
    (:class:`_SlicedSwiGLU`) when the full projection would take at least
    CPU_SLICE_MIN_GRAD_BYTES. The same result to rounding; measured in
    docs/performance.md. Not under ``torch.compile``, which fuses the plain graph.
    """

    def __init__(self, width: int, expansion: float) -> None:
        super().__init__()
        inter = swiglu_width(width, expansion)
        self.gate_up_proj = CastedLinear(width, 2 * inter)
        self.down_proj = CastedLinear(inter, width)

    def forward(self, x: Tensor) -> Tensor:
        if self._sliced(x):
            width = x.shape[-1]
            flat = x.reshape(-1, width)
            weights = (self.gate_up_proj.weight, self.down_proj.weight)
            if torch.is_grad_enabled():
                out = _SlicedSwiGLU.apply(flat, *weights)
            else:
                out = _sliced_forward(flat, *(w.to(x.dtype) for w in weights))[0]
            return out.view(*x.shape[:-1], width)
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)

    def _sliced(self, x: Tensor) -> bool:
        """Whether this call runs in slices (the class docstring's rule)."""
        width = x.shape[-1]
        if x.device.type != "cpu" or width > CPU_SLICE_MAX_WIDTH or width == 0:
            return False
        if torch.compiler.is_compiling():  # torch.compile fuses the plain graph
            return False
        rows = x.numel() // width
        if rows < 2 * CPU_SLICE_ROWS:
            return False
        if not torch.is_grad_enabled():
            return True
        projection = rows * self.gate_up_proj.weight.shape[0] * x.element_size()
        return projection >= CPU_SLICE_MIN_GRAD_BYTES


def _sliced_forward(
    x: Tensor, gate_up: Tensor, down: Tensor, keep: bool = False
) -> tuple[Tensor, Tensor | None]:
    """A CPU SwiGLU over [R, K] rows, CPU_SLICE_ROWS rows at a time: each slice's
    ``[rows, 2I]`` projection stays in cache from its matmul through the SiLU to the down
    matmul, instead of a full-size one travelling through memory (and being allocated,
    page by page, at each call). The result equals the unsliced one to rounding (on the
    shapes of the presets, bit for bit: a matmul over fewer rows may take another kernel).

    Returns ``(out [R, K], the [R, 2I] projection when keep else None)``."""
    out = x.new_empty(x.shape[0], down.shape[0])
    # The whole projection when it is kept, else one slice's, reused by every slice.
    projection = x.new_empty(x.shape[0] if keep else CPU_SLICE_ROWS, gate_up.shape[0])
    for start in range(0, x.shape[0], CPU_SLICE_ROWS):
        stop = min(start + CPU_SLICE_ROWS, x.shape[0])
        part = projection[start:stop] if keep else projection[: stop - start]
        gate, up = torch.mm(x[start:stop], gate_up.t(), out=part).chunk(2, dim=-1)
        torch.mm(F.silu(gate).mul_(up), down.t(), out=out[start:stop])
    return out, projection if keep else None


def _accumulate(total: Tensor, a: Tensor, b: Tensor) -> None:
    """``total += a @ b`` (total may be float32 while a and b are bfloat16)."""
    if total.dtype == a.dtype:
        total.addmm_(a, b)
    else:
        total.add_(a @ b)


class _SlicedSwiGLU(torch.autograd.Function):
    """The sliced CPU SwiGLU with gradient. Forward keeps the ``[R, 2I]`` projection
    (which autograd would keep too); backward walks the same slices: the down matmul's
    input is recomputed from the kept projection in cache, and the slice's gate and up
    gradients are written side by side into one reused buffer (no concatenation).
    Weight gradients are summed slice by slice in float32 (a different summation order
    from one large matmul: equal to rounding)."""

    @staticmethod
    def forward(ctx, x: Tensor, gate_up: Tensor, down: Tensor) -> Tensor:
        out, projection = _sliced_forward(x, gate_up.to(x.dtype), down.to(x.dtype), keep=True)
        ctx.save_for_backward(x, projection, gate_up, down)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, projection, gate_up_master, down_master = ctx.saved_tensors
        gate_up, down = gate_up_master.to(x.dtype), down_master.to(x.dtype)
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_gate_up = torch.zeros_like(gate_up_master)
        grad_down = torch.zeros_like(down_master)
        width = down.shape[1]  # I
        buffer = x.new_empty(min(CPU_SLICE_ROWS, x.shape[0]), 2 * width)
        for start in range(0, x.shape[0], CPU_SLICE_ROWS):
            stop = min(start + CPU_SLICE_ROWS, x.shape[0])
            d_out, inputs = grad_out[start:stop], x[start:stop]
            gate, up = projection[start:stop].chunk(2, dim=-1)
            d_both = buffer[: stop - start]
            d_gate, d_up = d_both.chunk(2, dim=-1)
            d_hidden = d_out @ down  # [rows, I]
            activated = F.silu(gate)
            _accumulate(grad_down, d_out.t(), activated * up)
            torch.mul(d_hidden, up, out=d_gate)
            torch.ops.aten.silu_backward.grad_input(d_gate, gate, grad_input=d_gate)
            torch.mul(activated, d_hidden, out=d_up)
            if grad_x is not None:
                torch.mm(d_both, gate_up, out=grad_x[start:stop])
            _accumulate(grad_gate_up, d_both.t(), inputs)
        return grad_x, grad_gate_up, grad_down


class Block(nn.Module):
    """One post-norm block: token mixer (its own residual + norm), then a channel SwiGLU."""

    def __init__(self, config: ModelConfig, token_mixer: nn.Module) -> None:
        super().__init__()
        self.token_mixer = token_mixer
        self.channel_mixer = SwiGLU(config.hidden_size, config.expansion)
        self.eps = config.rms_norm_eps

    def forward(self, hidden: Tensor, rotary) -> Tensor:
        hidden = self.token_mixer(hidden, rotary)  # [B, L, D]
        return rms_norm(hidden + self.channel_mixer(hidden), self.eps)


class ReasoningNet(nn.Module):
    """The tiny network f(h, injection) = blocks(h + injection), reused for think and act.

    In training mode it runs :attr:`compiled` when :func:`compile_for_training` has set
    it; evaluation (``model.eval()``) always runs eagerly.
    """

    def __init__(self, config: ModelConfig, make_mixer: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(config, make_mixer()) for _ in range(config.num_layers))
        #: ``torch.compile(self.run_blocks)`` once :func:`compile_for_training` ran, else None.
        self.compiled: Callable[..., Tensor] | None = None

    def forward(self, hidden: Tensor, injection: Tensor, rotary) -> Tensor:
        if self.training and self.compiled is not None:
            return self.compiled(hidden, injection, rotary)
        return self.run_blocks(hidden, injection, rotary)

    def run_blocks(self, hidden: Tensor, injection: Tensor, rotary) -> Tensor:
        hidden = hidden + injection  # [B, L, D]
        for block in self.blocks:
            hidden = block(hidden, rotary)
        return hidden

    def reference_keys(
        self, mixer_prefix: str | None, mixer_keys: dict[str, str]
    ) -> dict[str, str]:
        """Our keys -> reference ``L_level.layers.{i}...`` keys for every block."""
        keys = {}
        for i, block in enumerate(self.blocks):
            ref = f"L_level.layers.{i}"
            for name in ("gate_up_proj.weight", "down_proj.weight"):
                keys[f"blocks.{i}.channel_mixer.{name}"] = f"{ref}.mlp.{name}"
            if mixer_prefix is None:
                continue
            for ours in block.token_mixer.state_dict():
                theirs = mixer_keys.get(ours, ours)
                keys[f"blocks.{i}.token_mixer.{ours}"] = f"{ref}.{mixer_prefix}.{theirs}"
        return keys


def compile_for_training(model: nn.Module) -> Callable[..., object]:
    """What a training step calls to run ``model`` with ``torch.compile``.

    Where the model's core is built from :class:`ReasoningNet` (trm-core's cores are),
    only the nets are compiled: the same graph serves every think and act call, so it
    compiles once, in about half the time the whole model takes (measured on a 2-core
    Xeon, the Sudoku ``cpu`` preset's model, an empty compile cache: 24 s against 44 s),
    and a step is as fast (98.5 against 99.7 ms); the carry and halting glue around it
    stays eager, and so does evaluation. Otherwise the whole model is compiled.
    Returns the callable to use in place of ``model`` (``model`` itself in the first case).
    """
    nets = [module for module in model.modules() if isinstance(module, ReasoningNet)]
    if not nets:
        return torch.compile(model)
    for net in nets:
        net.compiled = torch.compile(net.run_blocks)
    return model
