"""The recursive model: shapes, parity-relevant structure, gradients, carry, dtypes."""

from __future__ import annotations

import pytest
import torch

import trm_core
import trm_core.devices
from trm_core import ConfigError, ModelConfig, build_model
from trm_core.layers import trunc_normal_

PAPER_COUNTS = [  # docs/architecture.md#parameter-counts
    (
        "sudoku-mlp",
        {
            "vocab_size": 11,
            "seq_len": 81,
            "mixer": "mlp",
            "options": {"grid": {"positions": "none"}},
        },
        5_028_866,
    ),
    ("sudoku-attention", {"vocab_size": 11, "seq_len": 81}, 6_828_034),
    ("maze-attention", {"vocab_size": 6, "seq_len": 900, "think_steps": 4}, 6_822_914),
    ("arc-attention", {"vocab_size": 12, "seq_len": 900, "think_steps": 4}, 6_829_058),
]


@pytest.mark.parametrize("name,config,count", PAPER_COUNTS, ids=[c[0] for c in PAPER_COUNTS])
def test_parameter_counts_match_the_paper(name, config, count):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = trm_core.TRMModel(trm_core.ModelConfig(**config, dtype="float32"))
    assert model.num_parameters() == count
    # The puzzle embedding is a buffer, trained by its own optimiser, not a parameter.
    buffers = dict(model.named_buffers())
    assert "encoder.puzzle_embedding.weights" in buffers


def test_truncated_normal_has_the_requested_std_and_bounds():
    values = trunc_normal_(torch.empty(200_000), std=0.5)
    assert abs(values.std().item() - 0.5) < 0.005
    assert values.abs().max().item() <= 2 * 0.5 / 0.8796 + 1e-6  # 2 x the corrected std


def test_initialisation_follows_the_spec(tiny_config):
    model = build_model(tiny_config, device="cpu")
    head = model.halting_head.linear
    assert torch.all(head.weight == 0) and torch.all(head.bias == -5)
    assert torch.all(model.encoder.puzzle_embedding.weights == 0)
    assert not any(name.endswith("_init") for name, _ in model.named_parameters())
    assert {"core.y_init", "core.z_init"} <= set(model.state_dict())


@pytest.mark.parametrize(
    "mixer,positions", [("attention", "rope"), ("attention", "learned"), ("mlp", "none")]
)
def test_forward_shapes(tiny_config, batch, mixer, positions):
    tiny_config["options"]["grid"] = {"positions": positions}
    model = build_model({**tiny_config, "mixer": mixer}, device="cpu")
    carry = model.initial_carry(batch)
    assert carry.y.shape == (4, 9 + 4, 32) and carry.halted.all()
    carry, out = model(carry, batch)
    assert out["logits"].shape == (4, 9, 11)
    assert out["halt_logits"].shape == (4,) and out["halt_logits"].dtype == torch.float32
    assert torch.isfinite(out["logits"]).all()


def _count_net_calls(model):
    calls = {"grad": 0, "no_grad": 0}

    def hook(module, args, output):
        calls["grad" if torch.is_grad_enabled() else "no_grad"] += 1

    model.core.net.register_forward_hook(hook)
    return calls


def test_gradient_flows_through_the_last_cycle_only(tiny_config, batch):
    torch.manual_seed(0)
    model = build_model(tiny_config, device="cpu").train()
    calls = _count_net_calls(model)
    carry = model.initial_carry(batch)
    carry, out = model(carry, batch)
    T, n = tiny_config["cycles"], tiny_config["think_steps"]
    assert calls == {"grad": n + 1, "no_grad": (T - 1) * (n + 1)}

    # The gradient equals that of a single-cycle step started from the
    # no-gradient cycles' result: nothing earlier contributes.
    out["logits"].float().square().mean().backward()
    full = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    core = model.core
    x = model.encoder(batch["inputs"], batch["puzzle_identifiers"])
    rotary = model.rotary
    y_init, z_init = core.initial_state()
    y, z = y_init.expand_as(x), z_init.expand_as(x)
    with torch.no_grad():
        for _ in range(T - 1):
            z = core.think(y, z, x, rotary)
            y = core.act(y, z, rotary)
    z = core.think(y, z, x, rotary)
    y = core.act(y, z, rotary)
    model.lm_head(y)[:, model.prefix_len :].float().square().mean().backward()
    for name, grad in full.items():
        torch.testing.assert_close(grad, dict(model.named_parameters())[name].grad, msg=name)
    # And the embeddings are reached: the input x is injected into the last cycle.
    assert full["encoder.embed_tokens.weight"].abs().sum() > 0


def test_carry_is_detached(tiny_config, batch):
    model = build_model(tiny_config, device="cpu").train()
    carry, out = model(model.initial_carry(batch), batch)
    assert out["logits"].requires_grad
    for state in (carry.y, carry.z):
        assert not state.requires_grad and state.grad_fn is None
    # A second step's backward does not reach into the first step's graph.
    carry, out = model(carry, batch)
    out["logits"].float().sum().backward()


def test_halted_slots_restart_with_the_new_example(tiny_config, make_batch):
    model = build_model(tiny_config, device="cpu").eval()
    first, second = make_batch(seed=1), make_batch(seed=2)
    carry = model.initial_carry(first)
    with torch.no_grad():
        for step in range(1, 4):
            carry, _ = model(carry, first)
            assert torch.all(carry.steps == step)
            assert carry.halted.all() == (step == tiny_config["halt_max_steps"])
        assert torch.equal(carry.data["inputs"], first["inputs"])
        # All slots halted: the next call takes the new batch and starts over.
        carry, out = model(carry, second)
        assert torch.equal(carry.data["inputs"], second["inputs"]) and torch.all(carry.steps == 1)
        _fresh, fresh_out = model(model.initial_carry(second), second)
        torch.testing.assert_close(out["logits"], fresh_out["logits"])


def test_running_slots_keep_their_example(tiny_config, make_batch):
    model = build_model({**tiny_config, "halt_max_steps": 5}, device="cpu").eval()
    first, second = make_batch(seed=1), make_batch(seed=2)
    with torch.no_grad():
        carry, _ = model(model.initial_carry(first), first)
        carry, _ = model(carry, second)
    assert torch.equal(carry.data["inputs"], first["inputs"])
    assert torch.all(carry.steps == 2)


def test_training_halts_on_the_halt_logit(tiny_config, batch):
    model = build_model({**tiny_config, "halt_exploration_prob": 0.0}, device="cpu").train()
    with torch.no_grad():
        model.halting_head.linear.bias.fill_(5.0)  # always wants to halt
        carry, _ = model(model.initial_carry(batch), batch)
        assert carry.halted.all()
        model.eval()  # evaluation ignores the halt logit and runs every step
        carry, _ = model(model.initial_carry(batch), batch)
        assert not carry.halted.any()


def test_bfloat16_forward_on_cpu(tiny_config, batch):
    torch.manual_seed(0)
    model32 = build_model(tiny_config, device="cpu").eval()
    model16 = build_model({**tiny_config, "dtype": "bfloat16"}, device="cpu").eval()
    model16.load_state_dict(model32.state_dict())
    assert next(model16.parameters()).dtype == torch.float32  # master weights stay float32
    with torch.no_grad():
        _, out32 = model32(model32.initial_carry(batch), batch)
        carry16, out16 = model16(model16.initial_carry(batch), batch)
    assert out16["logits"].dtype == torch.bfloat16 and carry16.y.dtype == torch.bfloat16
    assert torch.isfinite(out16["logits"].float()).all()
    agree = (out16["logits"].argmax(-1) == out32["logits"].argmax(-1)).float().mean()
    assert agree > 0.8


def test_config_typo_names_the_key(tiny_config):
    with pytest.raises(
        ConfigError, match=r"unknown key model.hiden_size \(did you mean 'hidden_size'"
    ):
        build_model({**tiny_config, "hiden_size": 64}, device="cpu")
    with pytest.raises(
        ConfigError,
        match=r"model.options.grid.positions 'rotary' is not one of rope, learned, none",
    ):
        build_model({**tiny_config, "options": {"grid": {"positions": "rotary"}}}, device="cpu")
    with pytest.raises(ConfigError, match=r"divisible by model.options.attention.num_heads \(5\)"):
        build_model({**tiny_config, "options": {"attention": {"num_heads": 5}}}, device="cpu")


@pytest.mark.parametrize("native,expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_dtype_is_bfloat16_only_where_native(tiny_config, machine, native, expected):
    machine.setattr(trm_core.devices, "native_bfloat16", lambda device: native)
    model = build_model({**tiny_config, "dtype": "auto"}, device="cpu")
    assert model.config.dtype == expected
    assert model.encoder.embed_tokens.dtype == getattr(torch, expected)
    assert ModelConfig(vocab_size=11, seq_len=81).dtype == "auto"  # the default


def test_configs_written_by_trm_0_1_still_load(tiny_config):
    """0.1 kept num_heads, positions and rope_theta at model level; they move under the
    first-party components' options (kept, unused, for a component not chosen)."""
    old = {key: value for key, value in tiny_config.items() if key != "options"}
    config = trm_core.config.structure(
        ModelConfig, {**old, "mixer": "mlp", "num_heads": 2, "positions": "none"}
    )
    assert config.options == {"attention": {"num_heads": 2}, "grid": {"positions": "none"}}
    assert build_model(config, device="cpu").rotary is None
    config = trm_core.config.structure(ModelConfig, {**old, "num_heads": 4, "rope_theta": 100})
    assert config.options == {"attention": {"num_heads": 4}, "grid": {"rope_theta": 100}}
    assert build_model(config, device="cpu").rotary[0].shape == (9 + 4, 32 // 4)


# -- the sliced CPU SwiGLU (trm_core.layers.SwiGLU, docs/performance.md) --------------


def _swiglu_pass(module, x, grad, sliced: bool, monkeypatch):
    """Output and gradients (input, gate_up, down) of ``module`` with slicing on or off."""
    from trm_core import layers

    monkeypatch.setattr(layers, "CPU_SLICE_MAX_WIDTH", 256 if sliced else 0)
    module.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    out = module(x)
    out.backward(grad)
    weights = (module.gate_up_proj.weight.grad.clone(), module.down_proj.weight.grad.clone())
    with torch.no_grad():
        no_grad_out = module(x)
    return out.detach(), no_grad_out, x.grad, *weights


@pytest.mark.parametrize("width, rows, dtype", [(13, 50, torch.float32), (16, 64, torch.float32),
                                                (13, 50, torch.bfloat16)])  # fmt: skip
def test_the_sliced_swiglu_computes_the_plain_one(monkeypatch, width, rows, dtype):
    """Slices of 8 rows here (a last, shorter one when rows is not a multiple): outputs
    and gradients equal the plain SwiGLU's to rounding (a matmul over fewer rows may take
    another kernel; the weight gradients are summed slice by slice)."""
    from trm_core import layers

    monkeypatch.setattr(layers, "CPU_SLICE_ROWS", 8)
    monkeypatch.setattr(layers, "CPU_SLICE_MIN_GRAD_BYTES", 0)
    torch.manual_seed(0)
    module = layers.SwiGLU(width, 4.0)
    x = torch.randn(rows // 5, 5, width).transpose(0, 1).to(dtype)  # strided, as the mixer's
    grad = torch.randn(5, rows // 5, width).to(dtype)
    sliced = _swiglu_pass(module, x, grad, True, monkeypatch)
    plain = _swiglu_pass(module, x, grad, False, monkeypatch)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2  # bfloat16: plain sums in bfloat16
    names = ("output", "no-grad output", "input gradient", "gate_up gradient", "down gradient")
    for what, a, b in zip(names, sliced, plain, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, what
        scale = b.abs().max().item()
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance * scale, msg=what)


def test_the_swiglu_is_sliced_only_where_it_pays(monkeypatch):
    """On the CPU, at least two slices of rows, inputs at most CPU_SLICE_MAX_WIDTH wide;
    with gradient only from CPU_SLICE_MIN_GRAD_BYTES of projection up."""
    from trm_core import layers

    monkeypatch.setattr(layers, "CPU_SLICE_ROWS", 8)
    cases = ((16, 16, True), (16, 15, False), (257, 64, False), (256, 64, True))
    for width, rows, expected in cases:
        module, x = layers.SwiGLU(width, 1.0), torch.randn(rows, width)
        with torch.no_grad():
            assert module._sliced(x) is expected, (width, rows)
        projection = rows * module.gate_up_proj.weight.shape[0] * 4  # float32 bytes
        monkeypatch.setattr(layers, "CPU_SLICE_MIN_GRAD_BYTES", projection)
        assert module._sliced(x) is expected, (width, rows)
        monkeypatch.setattr(layers, "CPU_SLICE_MIN_GRAD_BYTES", projection + 1)
        assert module._sliced(x) is False, (width, rows)
        with torch.no_grad():
            assert module._sliced(x) is expected, (width, rows)  # no gradient: no minimum
    # The presets' sizes: tiny-sudoku-mlp's 32 MiB projections are sliced in training,
    # the Sudoku cpu preset's 8-10 MiB ones only in evaluation.
    monkeypatch.setattr(layers, "CPU_SLICE_ROWS", 512)
    monkeypatch.setattr(layers, "CPU_SLICE_MIN_GRAD_BYTES", 16 * 2**20)
    assert layers.SwiGLU(97, 4.0)._sliced(torch.empty(64 * 128, 97))
    assert not layers.SwiGLU(64, 4.0)._sliced(torch.empty(64 * 81, 64))
