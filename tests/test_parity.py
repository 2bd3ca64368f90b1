"""Parity of trm_core with the reference TRM, via the independent oracle.

Tests named ``*oracle*`` check the oracle itself and need no trm_core
(``pytest tests/test_parity.py -k oracle``). The others load a random
reference-format checkpoint with ``trm_core.load_reference_checkpoint`` and compare
logits and halting logits with the oracle over several supervision steps, within
1e-5 relative error in float32 (docs/architecture.md). trm_core is imported inside
those tests so that the oracle tests run on their own, while a missing trm_core
fails loudly rather than skipping.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from .reference_oracle import (
    COMPILED_PREFIX,
    LEARNED_POS_SCALE,
    PLAIN_PREFIX,
    OracleConfig,
    OracleTRM,
    attention,
    make_reference_state_dict,
    reference_keys,
    rope_cos_sin,
    save_reference_checkpoint,
    swiglu_intermediate_size,
)

RTOL = 1e-5  # parity: within 1e-5 relative error in float32 (docs/architecture.md)

# Tiny recipes: one per kind of token mixing / positions. P=16 with puzzle_emb_ndim = D
# exercises the zero padding of the puzzle-embedding row (15 all-zero prefix tokens).
RECIPES: dict[str, dict[str, Any]] = {
    "attention-rope": dict(
        pos_encodings="rope", mlp_t=False, seq_len=9, puzzle_emb_len=16, H_cycles=3, L_cycles=2
    ),
    "attention-learned": dict(
        pos_encodings="learned", mlp_t=False, seq_len=16, puzzle_emb_len=4, H_cycles=2, L_cycles=3
    ),
    "mlp_t-none": dict(
        pos_encodings="none", mlp_t=True, seq_len=9, puzzle_emb_len=4, H_cycles=3, L_cycles=3
    ),
}
RECIPE_SEEDS = {name: 100 + i for i, name in enumerate(RECIPES)}

# Options a loader cannot infer from weight shapes (plus forward_dtype).
MINIMAL_OPTION_KEYS = (
    "num_heads",
    "H_cycles",
    "L_cycles",
    "pos_encodings",
    "mlp_t",
    "puzzle_emb_len",
    "halt_max_steps",
    "seq_len",
)

STATE_DICT_KEYS = (
    "hidden_size",
    "num_heads",
    "expansion",
    "L_layers",
    "vocab_size",
    "seq_len",
    "num_puzzle_identifiers",
    "puzzle_emb_ndim",
    "puzzle_emb_len",
    "pos_encodings",
    "mlp_t",
)


# --------------------------------------------------------------------------- helpers


def tiny_reference_config(recipe: str) -> OracleConfig:
    return OracleConfig(
        hidden_size=64,
        num_heads=4,
        expansion=4,
        L_layers=2,
        vocab_size=11,
        num_puzzle_identifiers=5,
        puzzle_emb_ndim=64,
        halt_max_steps=4,
        **RECIPES[recipe],
    )


def state_dict_for(cfg: OracleConfig, seed: int) -> dict[str, Tensor]:
    return make_reference_state_dict(
        **{key: getattr(cfg, key) for key in STATE_DICT_KEYS}, seed=seed
    )


def model_options(cfg: OracleConfig, *, full: bool) -> dict[str, Any]:
    """The reference's own config keys: all of them, or only the non-inferable ones."""
    options = dataclasses.asdict(cfg)
    if not full:
        options = {key: options[key] for key in MINIMAL_OPTION_KEYS}
    options["forward_dtype"] = "float32"
    return options


def make_batch(
    cfg: OracleConfig, *, batch_size: int, seed: int, index_dtype: torch.dtype = torch.int32
) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch_size, cfg.seq_len)
    inputs = torch.randint(1, cfg.vocab_size, shape, generator=gen).to(index_dtype)
    labels = torch.randint(1, cfg.vocab_size, shape, generator=gen)
    labels[torch.rand(shape, generator=gen) < 0.3] = -100  # some unscored positions
    ids = torch.randperm(cfg.num_puzzle_identifiers, generator=gen)[:batch_size]
    return {
        "inputs": inputs,  # [B, seq_len]
        "labels": labels.to(index_dtype),  # [B, seq_len]
        "puzzle_identifiers": ids.to(torch.int32),  # [B]
    }


def assert_rel_close(actual: Tensor, expected: Tensor, what: str) -> None:
    """Elementwise |a - e| <= RTOL * (|e| + max|e|): relative error at the output's scale."""
    actual = actual.detach().cpu()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == torch.float32, f"{what}: dtype {actual.dtype}, expected float32"
    scale = expected.abs().max().item()
    torch.testing.assert_close(
        actual, expected, rtol=RTOL, atol=RTOL * scale, msg=lambda m: f"{what}: {m}"
    )


def write_checkpoint(
    tmp_path: Path, state_dict: dict[str, Tensor], *, compiled: bool = False
) -> Path:
    path = tmp_path / ("compiled.pt" if compiled else "plain.pt")
    save_reference_checkpoint(state_dict, path, compiled=compiled)
    return path


# --------------------------------------------------------------------------- oracle self-checks


@pytest.mark.parametrize("recipe", RECIPES)
def test_oracle_state_dict_matches_spec_keys_and_shapes(recipe: str) -> None:
    cfg = tiny_reference_config(recipe)
    sd = state_dict_for(cfg, seed=0)
    assert list(sd) == reference_keys(
        L_layers=2, pos_encodings=cfg.pos_encodings, mlp_t=cfg.mlp_t, puzzle_emb_ndim=64
    )
    D, L, V = 64, cfg.seq_len + cfg.puzzle_emb_len, cfg.vocab_size
    assert sd["H_init"].shape == sd["L_init"].shape == (D,)
    assert sd["embed_tokens.embedding_weight"].shape == sd["lm_head.weight"].shape == (V, D)
    assert sd["q_head.weight"].shape == (2, D) and sd["q_head.bias"].shape == (2,)
    assert sd["puzzle_emb.weights"].shape == (5, 64)
    # Non-zero halting head and puzzle rows, so the parity test exercises them.
    assert sd["q_head.weight"].abs().min() > 0 and sd["q_head.bias"].abs().min() > 0
    assert (sd["puzzle_emb.weights"].abs().sum(dim=1) > 0).all()
    assert ("embed_pos.embedding_weight" in sd) == (cfg.pos_encodings == "learned")
    block = "L_level.layers.1."
    if cfg.mlp_t:
        inter_l = swiglu_intermediate_size(L, 4)
        assert sd[block + "mlp_t.gate_up_proj.weight"].shape == (2 * inter_l, L)
        assert sd[block + "mlp_t.down_proj.weight"].shape == (L, inter_l)
    else:
        assert sd[block + "self_attn.qkv_proj.weight"].shape == (3 * D, D)
        assert sd[block + "self_attn.o_proj.weight"].shape == (D, D)
    assert sd[block + "mlp.gate_up_proj.weight"].shape == (2 * 256, D)  # round(170.7) -> 256
    assert all(t.dtype == torch.float32 for t in sd.values())


@pytest.mark.parametrize(
    ("seq_len", "vocab", "mlp_t", "expected"),
    [
        (81, 11, True, 5_028_866),  # Sudoku, MLP-mixer
        (81, 11, False, 6_828_034),  # Sudoku, attention
        (900, 6, False, 6_822_914),  # Maze, attention
        (900, 12, False, 6_829_058),  # ARC, attention
    ],
)
def test_oracle_parameter_counts_match_spec_table(
    seq_len: int, vocab: int, mlp_t: bool, expected: int
) -> None:
    sd = make_reference_state_dict(
        hidden_size=512,
        num_heads=8,
        expansion=4,
        L_layers=2,
        vocab_size=vocab,
        seq_len=seq_len,
        num_puzzle_identifiers=1,
        puzzle_emb_ndim=512,
        puzzle_emb_len=16,
        pos_encodings="none" if mlp_t else "rope",
        mlp_t=mlp_t,
        seed=0,
    )
    buffers = {"H_init", "L_init", "puzzle_emb.weights"}  # not parameters in the reference
    assert sum(t.numel() for k, t in sd.items() if k not in buffers) == expected


@pytest.mark.parametrize("compiled", [True, False])
def test_oracle_save_uses_reference_prefix(tmp_path: Path, compiled: bool) -> None:
    sd = state_dict_for(tiny_reference_config("attention-rope"), seed=0)
    path = write_checkpoint(tmp_path, sd, compiled=compiled)
    loaded = torch.load(path, weights_only=True)
    prefix = COMPILED_PREFIX if compiled else PLAIN_PREFIX
    assert list(loaded) == [prefix + key for key in sd]
    assert all(torch.equal(loaded[prefix + key], value) for key, value in sd.items())


@pytest.mark.parametrize("recipe", ["attention-rope", "attention-learned"])
def test_oracle_input_embedding_by_hand(recipe: str) -> None:
    cfg = tiny_reference_config(recipe)
    sd = state_dict_for(cfg, seed=1)
    oracle = OracleTRM(sd, cfg)
    batch = make_batch(cfg, batch_size=2, seed=2)
    x = oracle.embed_input(batch["inputs"], batch["puzzle_identifiers"])
    P, D = cfg.puzzle_emb_len, 64
    assert x.shape == (2, P + cfg.seq_len, D)
    tokens = sd["embed_tokens.embedding_weight"]
    for b in range(2):
        prefix = torch.zeros(P, D)
        prefix[0] = sd["puzzle_emb.weights"][batch["puzzle_identifiers"][b]]  # ndim = D: one row
        expected = torch.cat([prefix, tokens[batch["inputs"][b].long()]])  # [L, D]
        if cfg.pos_encodings == "learned":
            expected = LEARNED_POS_SCALE * (expected + sd["embed_pos.embedding_weight"])
        torch.testing.assert_close(x[b], math.sqrt(D) * expected)


def test_oracle_attention_single_head_by_hand() -> None:
    """One head, head_dim 4, 3 positions, rotate-half rope: loops in float64 vs the oracle."""
    gen = torch.Generator().manual_seed(3)
    L, D, theta = 3, 4, 10000.0
    h = torch.randn(1, L, D, generator=gen, dtype=torch.float64)
    qkv_w = torch.randn(3 * D, D, generator=gen, dtype=torch.float64)
    o_w = torch.randn(D, D, generator=gen, dtype=torch.float64)

    def rotate(vec: list[float], pos: int) -> list[float]:
        out = list(vec)
        for j in range(D // 2):  # pair (j, j + D/2) rotated by angle pos * theta^(-2j/D)
            angle = pos * theta ** (-2 * j / D)
            c, s = math.cos(angle), math.sin(angle)
            out[j] = vec[j] * c - vec[j + D // 2] * s
            out[j + D // 2] = vec[j + D // 2] * c + vec[j] * s
        return out

    rows = [(qkv_w @ h[0, i]).tolist() for i in range(L)]
    q = [rotate(r[:D], i) for i, r in enumerate(rows)]
    k = [rotate(r[D : 2 * D], i) for i, r in enumerate(rows)]
    v = [r[2 * D :] for r in rows]
    expected = torch.zeros(L, D, dtype=torch.float64)
    for i in range(L):
        scores = [
            sum(a * b for a, b in zip(q[i], k[j], strict=True)) / math.sqrt(D) for j in range(L)
        ]
        weights = [math.exp(s - max(scores)) for s in scores]
        mixed = [sum(weights[j] * v[j][c] for j in range(L)) / sum(weights) for c in range(D)]
        expected[i] = o_w @ torch.tensor(mixed, dtype=torch.float64)

    cos_sin = rope_cos_sin(L, D, theta, dtype=torch.float64)
    actual = attention(h, qkv_w, o_w, num_heads=1, cos_sin=cos_sin)
    torch.testing.assert_close(actual[0], expected, rtol=1e-12, atol=1e-12)


def test_oracle_mlp_t_normalizes_over_sequence_axis() -> None:
    cfg = tiny_reference_config("mlp_t-none")
    oracle = OracleTRM(state_dict_for(cfg, seed=4), cfg)
    L = cfg.seq_len + cfg.puzzle_emb_len
    h = torch.randn(2, L, 64, generator=torch.Generator().manual_seed(5)) * 3
    mixed = oracle.token_mixing(0, h)  # [B, L, D]
    rms_over_seq = mixed.square().mean(dim=1).sqrt()  # [B, D]
    torch.testing.assert_close(rms_over_seq, torch.ones_like(rms_over_seq), rtol=1e-4, atol=1e-4)
    rms_over_channels = mixed.square().mean(dim=2).sqrt()  # [B, L]: not normalised
    assert (rms_over_channels - 1).abs().max() > 1e-2
    out = oracle.block(0, h)  # channel mixing normalises over D last
    rms_out = out.square().mean(dim=2).sqrt()
    torch.testing.assert_close(rms_out, torch.ones_like(rms_out), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("recipe", RECIPES)
def test_oracle_act_carry_semantics(recipe: str) -> None:
    cfg = tiny_reference_config(recipe)
    oracle = OracleTRM(state_dict_for(cfg, seed=6), cfg)
    first = make_batch(cfg, batch_size=3, seed=7)
    second = make_batch(cfg, batch_size=3, seed=8)
    L, V = cfg.seq_len + cfg.puzzle_emb_len, cfg.vocab_size

    carry = oracle.initial_carry(first)
    assert carry.halted.all()
    step_outputs = []
    for step in range(1, cfg.halt_max_steps + 1):
        # Running slots keep their example: feeding `second` from step 2 on changes nothing.
        carry, out = oracle(carry, first if step == 1 else second)
        assert out["logits"].shape == (3, cfg.seq_len, V)
        assert out["halt_logits"].shape == out["continue_logits"].shape == (3,)
        assert carry.y.shape == carry.z.shape == (3, L, 64)
        assert carry.steps.tolist() == [step] * 3
        assert carry.halted.tolist() == [step >= cfg.halt_max_steps] * 3
        assert torch.equal(carry.current_data["inputs"], first["inputs"])
        step_outputs.append(out)

    same = oracle.initial_carry(first)
    for step in range(1, cfg.halt_max_steps + 1):
        same, out = oracle(same, first)
        assert torch.equal(out["logits"], step_outputs[step - 1]["logits"])
        if step > 1:  # the recursion moves the answer between steps
            assert not torch.equal(out["logits"], step_outputs[step - 2]["logits"])

    # After halt_max_steps every slot resets: same as a fresh start on the new batch.
    carry, out = oracle(carry, second)
    _, fresh = oracle(oracle.initial_carry(second), second)
    assert carry.steps.tolist() == [1] * 3
    assert torch.equal(out["logits"], fresh["logits"])
    assert torch.equal(out["halt_logits"], fresh["halt_logits"])


@pytest.mark.parametrize("recipe", RECIPES)
def test_oracle_float32_rounding_stays_far_below_parity_tolerance(recipe: str) -> None:
    """float32 vs float64 oracle: the recursion does not amplify rounding toward 1e-5,
    so two correct float32 implementations can meet the parity tolerance.

    The error depends on the CPU's matmul kernels (their accumulation order): at most
    1.5e-6 measured on an AMX Xeon (the mlp_t recipe's halt logits), under 1e-6 on an
    AVX2 EPYC; the bound keeps 4x below the tolerance on every machine."""
    cfg = tiny_reference_config(recipe)
    sd = state_dict_for(cfg, seed=9)
    o32, o64 = OracleTRM(sd, cfg), OracleTRM(sd, cfg, dtype=torch.float64)
    batch = make_batch(cfg, batch_size=3, seed=10)
    c32, c64 = o32.initial_carry(batch), o64.initial_carry(batch)
    for _ in range(cfg.halt_max_steps):
        c32, out32 = o32(c32, batch)
        c64, out64 = o64(c64, batch)
        for key in ("logits", "halt_logits"):
            exact = out64[key]
            err = (out32[key].double() - exact).abs().max().item() / exact.abs().max().item()
            assert err < RTOL / 4, f"{key}: float32 relative error {err:.2e}"


# --------------------------------------------------------------------------- parity with trm_core


def run_parity(
    model: Any, oracle: OracleTRM, batches: list[dict[str, Tensor]], halt_max_steps: int
) -> None:
    """Run model and oracle side by side, one supervision step per batch, comparing outputs."""
    device = next(model.parameters()).device
    with torch.no_grad():
        carry = model.initial_carry({k: v.to(device) for k, v in batches[0].items()})
        ocarry = oracle.initial_carry(batches[0])
        for step, batch in enumerate(batches, start=1):
            carry, out = model(carry, {k: v.to(device) for k, v in batch.items()})
            ocarry, expected = oracle(ocarry, batch)
            for key in ("logits", "halt_logits"):
                assert_rel_close(out[key], expected[key], f"step {step} {key}")
            if "continue_logits" in out:
                assert_rel_close(
                    out["continue_logits"], expected["continue_logits"], f"step {step} continue"
                )
            assert torch.equal(carry.halted.cpu(), ocarry.halted), f"step {step} halted"
            assert torch.equal(carry.steps.cpu().long(), ocarry.steps.long()), f"step {step}"
    assert len(batches) > halt_max_steps  # the run crossed a halt-and-reset


@pytest.mark.device
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-prefix", "plain-prefix"])
def test_parity_with_reference_checkpoint(
    tmp_path: Path, recipe: str, compiled: bool, device: str
) -> None:
    """trm on pytest's --device, in float32, against the oracle on the CPU."""
    import trm_core

    cfg = tiny_reference_config(recipe)
    sd = state_dict_for(cfg, seed=RECIPE_SEEDS[recipe])
    path = write_checkpoint(tmp_path, sd, compiled=compiled)
    # The compiled variant passes only non-inferable options, the plain one all of them.
    options = model_options(cfg, full=not compiled)
    model = trm_core.load_reference_checkpoint(path, device=device, **options)
    assert next(model.parameters()).device.type == torch.device(device).type
    assert not model.training, "load_reference_checkpoint must return the model in eval mode"

    index_dtype = torch.int32 if compiled else torch.int64
    first = make_batch(cfg, batch_size=3, seed=11, index_dtype=index_dtype)
    second = make_batch(cfg, batch_size=3, seed=12, index_dtype=index_dtype)
    # Steps 1-4 on `first` (all slots halt at step 4), steps 5-6 restart on `second`.
    batches = [first] * cfg.halt_max_steps + [second] * 2
    run_parity(model, OracleTRM(sd, cfg), batches, cfg.halt_max_steps)


@pytest.mark.parametrize("recipe", ["mlp_t-none", "attention-rope"])
def test_parity_through_the_sliced_cpu_swiglu(tmp_path: Path, monkeypatch, recipe: str) -> None:
    """The CPU SwiGLUs run in slices of rows (here 8, so that every SwiGLU of the tiny
    recipes is sliced): still within the parity tolerance of the oracle."""
    import trm_core
    from trm_core import layers

    monkeypatch.setattr(layers, "CPU_SLICE_ROWS", 8)
    monkeypatch.setattr(layers, "CPU_SLICE_MIN_GRAD_BYTES", 0)
    cfg = tiny_reference_config(recipe)
    sd = state_dict_for(cfg, seed=RECIPE_SEEDS[recipe])
    path = write_checkpoint(tmp_path, sd)
    model = trm_core.load_reference_checkpoint(path, device="cpu", **model_options(cfg, full=True))
    calls = []
    real = layers._sliced_forward
    monkeypatch.setattr(layers, "_sliced_forward", lambda *a: calls.append(1) or real(*a))
    batch = make_batch(cfg, batch_size=3, seed=11)
    run_parity(model, OracleTRM(sd, cfg), [batch] * (cfg.halt_max_steps + 1), cfg.halt_max_steps)
    assert calls, "the SwiGLUs were not sliced"


def test_parity_with_bfloat16_initial_states(tmp_path: Path) -> None:
    """A bfloat16-trained reference stores H_init/L_init in bfloat16; loading for a
    float32 forward copies them into float32 buffers."""
    import trm_core

    cfg = tiny_reference_config("attention-rope")
    sd = state_dict_for(cfg, seed=13)
    sd["H_init"], sd["L_init"] = sd["H_init"].bfloat16(), sd["L_init"].bfloat16()
    path = write_checkpoint(tmp_path, sd, compiled=True)
    model = trm_core.load_reference_checkpoint(path, **model_options(cfg, full=False))
    oracle = OracleTRM({k: v.float() for k, v in sd.items()}, cfg)
    batch = make_batch(cfg, batch_size=2, seed=14)
    run_parity(model, oracle, [batch] * (cfg.halt_max_steps + 1), cfg.halt_max_steps)


# --------------------------------------------------------------------------- loader errors


def load_expecting_error(path: Path, **options: Any) -> str:
    import trm_core

    with pytest.raises(Exception) as info:  # any error type: judged by its message
        trm_core.load_reference_checkpoint(path, **options)
    return str(info.value)


def test_load_names_each_missing_key(tmp_path: Path) -> None:
    cfg = tiny_reference_config("attention-rope")
    sd = state_dict_for(cfg, seed=15)
    missing = ["q_head.bias", "L_level.layers.1.mlp.down_proj.weight"]
    for key in missing:
        del sd[key]
    message = load_expecting_error(
        write_checkpoint(tmp_path, sd, compiled=True), **model_options(cfg, full=True)
    )
    for key in missing:
        assert key in message, f"missing key {key!r} not named in: {message}"


def test_load_names_each_unexpected_key(tmp_path: Path) -> None:
    cfg = tiny_reference_config("mlp_t-none")
    sd = state_dict_for(cfg, seed=16)
    unexpected = {"lm_head.bias": torch.zeros(11), "not_a_reference_key.weight": torch.ones(3)}
    sd.update(unexpected)
    message = load_expecting_error(
        write_checkpoint(tmp_path, sd, compiled=False), **model_options(cfg, full=True)
    )
    for key in unexpected:
        assert key in message, f"unexpected key {key!r} not named in: {message}"


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("lm_head.weight", (12, 64)),  # vocab 11 elsewhere
        ("q_head.bias", (3,)),
        ("H_init", (65,)),
        ("L_level.layers.0.mlp.down_proj.weight", (64, 257)),
        ("L_level.layers.1.self_attn.o_proj.weight", (64, 32)),
    ],
)
def test_load_names_wrongly_shaped_key(tmp_path: Path, key: str, shape: tuple[int, ...]) -> None:
    cfg = tiny_reference_config("attention-learned")
    sd = state_dict_for(cfg, seed=17)
    sd[key] = torch.randn(shape)
    message = load_expecting_error(
        write_checkpoint(tmp_path, sd, compiled=True), **model_options(cfg, full=True)
    )
    assert key in message, f"wrongly shaped {key!r} not named in: {message}"


def test_load_names_unknown_option(tmp_path: Path) -> None:
    cfg = tiny_reference_config("attention-rope")
    path = write_checkpoint(tmp_path, state_dict_for(cfg, seed=18))
    message = load_expecting_error(path, **model_options(cfg, full=False), hiden_size=64)
    assert "hiden_size" in message, f"unknown option not named in: {message}"
