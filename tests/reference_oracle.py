"""An independent oracle of the TRM reference model, for parity tests.

Written independently from the paper's description of the reference code
(Jolicoeur-Martineau, "Less is More: Recursive Reasoning with Tiny Networks",
arXiv:2510.04871), as restated in docs/architecture.md (the network, think and act,
the deep-supervision carry, and the reference checkpoint keys); it shares no code with
``trm_core``. It is deliberately plain: no modules, no autograd, no options beyond the
reference's own config keys. Weights are read straight from a *reference-format* state
dict, i.e. the keys of docs/architecture.md#checkpoints-of-the-reference-code without
the ``model.inner.`` / ``_orig_mod.model.inner.`` prefix.

Public API:
    OracleConfig                 the reference config keys the forward pass needs
    make_reference_state_dict()  random float32 weights in reference format
    reference_keys()             the exact key list a reference checkpoint holds
    save_reference_checkpoint()  ``torch.save`` with the reference's key prefix
    OracleTRM                    initial_carry() and one supervision step (__call__)
    rms_norm, swiglu, swiglu_intermediate_size, rope_cos_sin, apply_rope, attention
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

# Prefixes of the reference's saved state dicts (docs/architecture.md).
COMPILED_PREFIX = "_orig_mod.model.inner."  # model was torch.compile'd
PLAIN_PREFIX = "model.inner."

# The reference multiplies by this literal (1/sqrt(2) rounded) for learned positions.
LEARNED_POS_SCALE = 0.707106781


@dataclass(frozen=True)
class OracleConfig:
    """The reference's model config keys (same names), effective values only.

    ``puzzle_emb_len`` is the effective prefix length P (the reference derives
    ceil(puzzle_emb_ndim / hidden_size) when its config says 0).
    """

    hidden_size: int
    num_heads: int
    expansion: float
    H_cycles: int  # T
    L_cycles: int  # n
    L_layers: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    puzzle_emb_ndim: int
    puzzle_emb_len: int
    pos_encodings: str  # "rope" | "learned" | "none"
    mlp_t: bool
    halt_max_steps: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0


@dataclass
class OracleCarry:
    """ACT carry: per-slot answer/latent state, step counter, halted flag and example."""

    y: Tensor  # [B, L, D]  (reference: z_H)
    z: Tensor  # [B, L, D]  (reference: z_L)
    steps: Tensor  # [B] int32
    halted: Tensor  # [B] bool
    current_data: dict[str, Tensor]  # the batch rows each slot is working on


# --------------------------------------------------------------------------- sizes / keys


def ceil_to_multiple(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def swiglu_intermediate_size(width: int, expansion: float) -> int:
    """inter = ceil_to_multiple(round(expansion * width * 2/3), 256) (Python round)."""
    return ceil_to_multiple(round(expansion * width * 2 / 3), 256)


def reference_keys(
    *, L_layers: int, pos_encodings: str, mlp_t: bool, puzzle_emb_ndim: int
) -> list[str]:
    """The exact (unprefixed) keys of a reference checkpoint, in a fixed order."""
    keys = ["H_init", "L_init", "embed_tokens.embedding_weight", "lm_head.weight"]
    keys += ["q_head.weight", "q_head.bias"]
    if puzzle_emb_ndim > 0:
        keys.append("puzzle_emb.weights")
    if pos_encodings == "learned":
        keys.append("embed_pos.embedding_weight")
    for i in range(L_layers):
        block = f"L_level.layers.{i}."
        if mlp_t:
            keys += [block + "mlp_t.gate_up_proj.weight", block + "mlp_t.down_proj.weight"]
        else:
            keys += [block + "self_attn.qkv_proj.weight", block + "self_attn.o_proj.weight"]
        keys += [block + "mlp.gate_up_proj.weight", block + "mlp.down_proj.weight"]
    return keys


def _check_shape_options(
    hidden_size: int, num_heads: int, puzzle_emb_ndim: int, puzzle_emb_len: int, pos_encodings: str
) -> None:
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} not divisible by num_heads {num_heads}")
    if pos_encodings not in ("rope", "learned", "none"):
        raise ValueError(f"pos_encodings must be rope, learned or none, not {pos_encodings!r}")
    if puzzle_emb_ndim > puzzle_emb_len * hidden_size:
        raise ValueError("puzzle_emb_ndim does not fit in puzzle_emb_len * hidden_size")
    if puzzle_emb_ndim == 0 and puzzle_emb_len != 0:
        # The reference would prepend nothing yet still drop P positions from the logits.
        raise ValueError("puzzle_emb_ndim == 0 needs puzzle_emb_len == 0")


def make_reference_state_dict(
    *,
    hidden_size: int,
    num_heads: int,
    expansion: float,
    L_layers: int,
    vocab_size: int,
    seq_len: int,
    num_puzzle_identifiers: int,
    puzzle_emb_ndim: int,
    puzzle_emb_len: int,
    pos_encodings: str,
    mlp_t: bool,
    seed: int,
    block_weight_scale: float = 0.5,
) -> dict[str, Tensor]:
    """Random float32 weights with the reference's keys (unprefixed) and shapes.

    Plain normals with std 1/sqrt(fan_in) (the reference's init shapes, not its init
    values): the halting head and puzzle embeddings are deliberately non-zero so that
    they matter in a parity test.

    The block weights (``L_level.*``) get an extra factor ``block_weight_scale``: at
    full scale the random recursion is chaotic (with mlp_t, float32-vs-float64 logits
    drift from 1e-5 to 1e-1 relative over 4 supervision steps), so no two float32
    implementations could agree to 1e-5. At 0.5 the drift stays ~2e-7 while the
    outputs still respond strongly to inputs, initial states and every weight.
    """
    _check_shape_options(hidden_size, num_heads, puzzle_emb_ndim, puzzle_emb_len, pos_encodings)
    gen = torch.Generator().manual_seed(seed)
    D = hidden_size
    L = seq_len + puzzle_emb_len  # model sequence length

    def normal(*shape: int, std: float) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std

    def linear(out_features: int, in_features: int, scale: float = 1.0) -> Tensor:  # [out, in]
        return normal(out_features, in_features, std=scale / math.sqrt(in_features))

    def block_linear(out_features: int, in_features: int) -> Tensor:
        return linear(out_features, in_features, block_weight_scale)

    sd: dict[str, Tensor] = {
        "H_init": normal(D, std=1.0),  # [D]
        "L_init": normal(D, std=1.0),  # [D]
        "embed_tokens.embedding_weight": normal(vocab_size, D, std=1 / math.sqrt(D)),
        "lm_head.weight": linear(vocab_size, D),  # [V, D]
        "q_head.weight": linear(2, D),  # [2, D]
        "q_head.bias": normal(2, std=1.0),  # [2]
    }
    if puzzle_emb_ndim > 0:
        sd["puzzle_emb.weights"] = normal(
            num_puzzle_identifiers, puzzle_emb_ndim, std=1 / math.sqrt(D)
        )
    if pos_encodings == "learned":
        sd["embed_pos.embedding_weight"] = normal(L, D, std=1 / math.sqrt(D))  # [L, D]
    inter_d = swiglu_intermediate_size(D, expansion)
    inter_l = swiglu_intermediate_size(L, expansion)
    for i in range(L_layers):
        block = f"L_level.layers.{i}."
        if mlp_t:  # SwiGLU across the sequence axis, width L
            sd[block + "mlp_t.gate_up_proj.weight"] = block_linear(2 * inter_l, L)
            sd[block + "mlp_t.down_proj.weight"] = block_linear(L, inter_l)
        else:
            sd[block + "self_attn.qkv_proj.weight"] = block_linear(3 * D, D)
            sd[block + "self_attn.o_proj.weight"] = block_linear(D, D)
        sd[block + "mlp.gate_up_proj.weight"] = block_linear(2 * inter_d, D)
        sd[block + "mlp.down_proj.weight"] = block_linear(D, inter_d)
    expected = reference_keys(
        L_layers=L_layers, pos_encodings=pos_encodings, mlp_t=mlp_t, puzzle_emb_ndim=puzzle_emb_ndim
    )
    assert list(sd) == expected
    return sd


def save_reference_checkpoint(
    state_dict: dict[str, Tensor], path: str | Path, *, compiled: bool
) -> dict[str, Tensor]:
    """``torch.save`` the state dict the way the reference does; returns what was saved."""
    prefix = COMPILED_PREFIX if compiled else PLAIN_PREFIX
    prefixed = {prefix + key: value for key, value in state_dict.items()}
    torch.save(prefixed, path)
    return prefixed


# --------------------------------------------------------------------------- layers


def rms_norm(h: Tensor, eps: float) -> Tensor:
    """Weightless RMSNorm over the last axis, computed in (at least) float32."""
    compute_dtype = torch.promote_types(h.dtype, torch.float32)
    x = h.to(compute_dtype)
    x = x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + eps)
    return x.to(h.dtype)


def swiglu(h: Tensor, gate_up_weight: Tensor, down_weight: Tensor) -> Tensor:
    """[..., w] -> [..., w]; gate_up_weight [2*inter, w] gate rows first, down [w, inter]."""
    gate, up = F.linear(h, gate_up_weight).chunk(2, dim=-1)  # 2 x [..., inter]
    return F.linear(F.silu(gate) * up, down_weight)


def rope_cos_sin(
    length: int, head_dim: int, theta: float, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """cos, sin [length, head_dim] for positions 0..length-1, as cat(freqs, freqs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=dtype) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=dtype), inv_freq)  # [L, head_dim/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [L, head_dim]
    return emb.cos(), emb.sin()


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [B, L, H, hd]; cos/sin [L, hd]. Computed in cos's dtype, returned in x's."""
    xc = x.to(cos.dtype)
    out = xc * cos.unsqueeze(-2) + _rotate_half(xc) * sin.unsqueeze(-2)
    return out.to(x.dtype)


def attention(
    h: Tensor,
    qkv_weight: Tensor,
    o_weight: Tensor,
    num_heads: int,
    cos_sin: tuple[Tensor, Tensor] | None,
) -> Tensor:
    """Non-causal multi-head softmax attention. h [B, L, D] -> [B, L, D]."""
    B, L, D = h.shape
    head_dim = D // num_heads
    qkv = F.linear(h, qkv_weight).view(B, L, 3 * num_heads, head_dim)  # q heads, k heads, v heads
    q = qkv[:, :, :num_heads]  # [B, L, H, hd]
    k = qkv[:, :, num_heads : 2 * num_heads]
    v = qkv[:, :, 2 * num_heads :]
    if cos_sin is not None:
        cos, sin = cos_sin
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, L, hd]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)  # [B, H, L, L]
    out = torch.softmax(scores, dim=-1) @ v  # [B, H, L, hd]
    return F.linear(out.transpose(1, 2).reshape(B, L, D), o_weight)


# --------------------------------------------------------------------------- model


class OracleTRM:
    """The reference TRM (inner model + ACT wrapper, eval mode) as plain functions.

    ``dtype`` is float32 for parity; float64 is only for checking how much float32
    rounding the recursion amplifies.
    """

    def __init__(
        self,
        state_dict: dict[str, Tensor],
        config: OracleConfig,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        cfg = config
        _check_shape_options(
            cfg.hidden_size,
            cfg.num_heads,
            cfg.puzzle_emb_ndim,
            cfg.puzzle_emb_len,
            cfg.pos_encodings,
        )
        expected = reference_keys(
            L_layers=cfg.L_layers,
            pos_encodings=cfg.pos_encodings,
            mlp_t=cfg.mlp_t,
            puzzle_emb_ndim=cfg.puzzle_emb_ndim,
        )
        if set(state_dict) != set(expected):
            raise KeyError(
                f"missing {sorted(set(expected) - set(state_dict))}, "
                f"unexpected {sorted(set(state_dict) - set(expected))}"
            )
        self.cfg = cfg
        self.dtype = dtype
        self.w = {key: value.detach().to(dtype) for key, value in state_dict.items()}
        self.P = cfg.puzzle_emb_len
        self.length = cfg.seq_len + self.P  # model sequence length L
        self.cos_sin = None
        if cfg.pos_encodings == "rope":
            rope_dtype = torch.promote_types(dtype, torch.float32)
            self.cos_sin = rope_cos_sin(
                self.length, cfg.hidden_size // cfg.num_heads, cfg.rope_theta, rope_dtype
            )

    # ---- input embedding x
    def embed_input(self, inputs: Tensor, puzzle_identifiers: Tensor) -> Tensor:
        """inputs [B, seq_len], puzzle_identifiers [B] -> x [B, P + seq_len, D]."""
        D, P = self.cfg.hidden_size, self.P
        x = self.w["embed_tokens.embedding_weight"][inputs.long()]  # [B, seq_len, D]
        if self.cfg.puzzle_emb_ndim > 0:
            row = self.w["puzzle_emb.weights"][puzzle_identifiers.long()]  # [B, ndim]
            row = F.pad(row, (0, P * D - row.shape[-1]))  # [B, P*D]
            x = torch.cat((row.view(-1, P, D), x), dim=1)  # [B, P + seq_len, D]
        if self.cfg.pos_encodings == "learned":
            x = LEARNED_POS_SCALE * (x + self.w["embed_pos.embedding_weight"])
        return math.sqrt(D) * x

    # ---- one post-norm block
    def token_mixing(self, i: int, h: Tensor) -> Tensor:
        """h [B, L, D] -> [B, L, D]: attention, or SwiGLU across the sequence axis."""
        block, eps = f"L_level.layers.{i}.", self.cfg.rms_norm_eps
        if self.cfg.mlp_t:
            ht = h.transpose(1, 2)  # [B, D, L]
            mixed = swiglu(
                ht,
                self.w[block + "mlp_t.gate_up_proj.weight"],
                self.w[block + "mlp_t.down_proj.weight"],
            )
            return rms_norm(ht + mixed, eps).transpose(1, 2)  # normalised over L; back to [B, L, D]
        mixed = attention(
            h,
            self.w[block + "self_attn.qkv_proj.weight"],
            self.w[block + "self_attn.o_proj.weight"],
            self.cfg.num_heads,
            self.cos_sin,
        )
        return rms_norm(h + mixed, eps)

    def block(self, i: int, h: Tensor) -> Tensor:
        """h [B, L, D] -> [B, L, D]."""
        prefix = f"L_level.layers.{i}.mlp."
        h = self.token_mixing(i, h)
        mixed = swiglu(
            h, self.w[prefix + "gate_up_proj.weight"], self.w[prefix + "down_proj.weight"]
        )
        return rms_norm(h + mixed, self.cfg.rms_norm_eps)

    def reasoning(self, h: Tensor, injection: Tensor) -> Tensor:
        """f(h, injection): add the injection, then the L_layers blocks. [B, L, D]."""
        h = h + injection
        for i in range(self.cfg.L_layers):
            h = self.block(i, h)
        return h

    def think_act(self, y: Tensor, z: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """T cycles of (n times z = f(z, y + x); y = f(y, z)). All [B, L, D]."""
        for _ in range(self.cfg.H_cycles):
            for _ in range(self.cfg.L_cycles):
                z = self.reasoning(z, y + x)  # think
            y = self.reasoning(y, z)  # act
        return y, z

    # ---- ACT wrapper
    def initial_carry(self, batch: dict[str, Tensor]) -> OracleCarry:
        """Every slot starts halted, so the first step loads the batch and resets states."""
        B, D = batch["inputs"].shape[0], self.cfg.hidden_size
        return OracleCarry(
            y=torch.zeros(B, self.length, D, dtype=self.dtype),
            z=torch.zeros(B, self.length, D, dtype=self.dtype),
            steps=torch.zeros(B, dtype=torch.int32),
            halted=torch.ones(B, dtype=torch.bool),
            current_data={key: torch.zeros_like(value) for key, value in batch.items()},
        )

    def __call__(
        self, carry: OracleCarry, batch: dict[str, Tensor]
    ) -> tuple[OracleCarry, dict[str, Tensor]]:
        """One supervision step (eval mode: halt only at halt_max_steps)."""
        reset = carry.halted  # [B]
        y = torch.where(reset.view(-1, 1, 1), self.w["H_init"], carry.y)  # [B, L, D]
        z = torch.where(reset.view(-1, 1, 1), self.w["L_init"], carry.z)
        steps = torch.where(reset, 0, carry.steps)
        data = {  # halted slots take the new batch's row; running slots keep theirs
            key: torch.where(reset.view(-1, *[1] * (old.ndim - 1)), batch[key], old)
            for key, old in carry.current_data.items()
        }

        x = self.embed_input(data["inputs"], data["puzzle_identifiers"])  # [B, L, D]
        y, z = self.think_act(y, z, x)

        logits = F.linear(y, self.w["lm_head.weight"])[:, self.P :]  # [B, seq_len, V]
        q = F.linear(y[:, 0], self.w["q_head.weight"], self.w["q_head.bias"])  # [B, 2]
        q = q.to(torch.promote_types(q.dtype, torch.float32))
        steps = steps + 1
        halted = steps >= self.cfg.halt_max_steps
        new_carry = OracleCarry(y=y, z=z, steps=steps, halted=halted, current_data=data)
        outputs = {"logits": logits, "halt_logits": q[..., 0], "continue_logits": q[..., 1]}
        return new_carry, outputs
