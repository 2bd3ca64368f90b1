"""The paper's optimisation recipe: Adam-atan2, sign-SGD rows, schedule, EMA.

The formulas: docs/architecture.md#optimisation.
"""

from __future__ import annotations

import copy
import datetime
import io
import math
import socket
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from trm_core.layers import PuzzleEmbedding
from trm_core.optim import EMA, AdamAtan2, SignSGDRows, learning_rate

# -- Adam-atan2 ------------------------------------------------------------------


def spec_adam_atan2(p, grads, lrs, betas=(0.9, 0.95), wd=0.0):
    """The paper's formula written out with plain tensor arithmetic (float64)."""
    b1, b2 = betas
    p = p.double().clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        g = g.double()
        p = p * (1 - lr * wd)
        m = m + (1 - b1) * (g - m)
        v = v + (1 - b2) * (g * g - v)
        p = p - lr / (1 - b1**t) * torch.atan2(m, v.sqrt() / math.sqrt(1 - b2**t))
    return p


def run_adam(p0, grads, lrs, **kwargs):
    p = nn.Parameter(p0.clone())
    opt = AdamAtan2([p], lr=lrs[0], **kwargs)
    for g, lr in zip(grads, lrs, strict=True):
        opt.param_groups[0]["lr"] = lr
        p.grad = g.clone()
        opt.step()
    return p.detach(), opt


@pytest.mark.parametrize("foreach", [False, True])
def test_adam_atan2_matches_spec_formula(foreach):
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(3, 4, generator=gen)
    grads = [torch.randn(3, 4, generator=gen) for _ in range(5)]
    lrs = [1e-2, 2e-2, 5e-3, 5e-3, 1e-1]  # changed between steps, as a scheduler does
    got, opt = run_adam(p0, grads, lrs, weight_decay=0.5, foreach=foreach)
    want = spec_adam_atan2(p0, grads, lrs, wd=0.5)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-6)
    state = next(iter(opt.state.values()))
    assert state["step"] == 5
    assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32


def test_adam_atan2_foreach_is_bit_identical_to_per_tensor():
    gen = torch.Generator().manual_seed(1)
    shapes = [(4, 3), (5,), (2, 2, 2)]
    start = [torch.randn(s, generator=gen) for s in shapes]
    live = {fe: [nn.Parameter(p.clone()) for p in start] for fe in (False, True)}
    opts = {fe: AdamAtan2(live[fe], lr=3e-2, weight_decay=0.1, foreach=fe) for fe in live}
    for i in range(4):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for fe in live:
            for p, g in zip(live[fe], grads, strict=True):
                p.grad = g.clone()
            if i == 0:  # one parameter lags a step behind: two step-count buckets
                live[fe][2].grad = None
            opts[fe].step()
    assert [opts[True].state[p]["step"] for p in live[True]] == [4, 4, 3]
    for a, b in zip(live[False], live[True], strict=True):
        assert torch.equal(a, b)


def test_adam_atan2_zero_gradient_moves_only_by_weight_decay():
    p0 = torch.tensor([1.0, -2.0, 0.5])
    grads = [torch.zeros(3)] * 4
    got, _ = run_adam(p0, grads, [0.1] * 4, weight_decay=0.3)
    want = p0.clone()
    for _ in range(4):
        want.mul_(1 - 0.1 * 0.3)
    assert torch.equal(got, want)  # atan2(0, 0) = 0: no NaN, no epsilon term
    got, _ = run_adam(p0, grads, [0.1] * 4)
    assert torch.equal(got, p0)


def test_adam_atan2_first_step_depends_only_on_sign():
    # t=1: m = (1-b1) g and sqrt(v / (1-b2)) = |g|, so the step is
    # lr / (1-b1) * atan2((1-b1) g, |g|) = lr * atan(1-b1) / (1-b1) * sign(g): m is
    # bias-corrected through the step size only, so this is ~0.9967 lr, not lr * pi/4.
    p0 = torch.zeros(4)
    g = torch.tensor([3.0, -1e-6, 1e3, -7.0])  # magnitude does not matter: scale-invariant
    got, _ = run_adam(p0, [g], [0.01])
    want = -0.01 * math.atan(0.1) / 0.1 * g.sign()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


def test_adam_atan2_skips_parameters_without_gradient():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = AdamAtan2([a, b], lr=0.1, weight_decay=1.0)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state


def test_adam_atan2_state_dict_round_trip_is_bit_exact():
    gen = torch.Generator().manual_seed(2)
    params_a = [nn.Parameter(torch.randn(3, 2, generator=gen)), nn.Parameter(torch.randn(4))]
    opt_a = AdamAtan2(params_a, lr=1e-2, weight_decay=0.2)
    grads = [[torch.randn_like(p) for p in params_a] for _ in range(5)]

    def step(opt, params, gs, lr):
        opt.param_groups[0]["lr"] = lr
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        opt.step()

    for i in range(3):
        step(opt_a, params_a, grads[i], 1e-2 * (i + 1))
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    params_b = [nn.Parameter(p.detach().clone()) for p in params_a]
    opt_b = AdamAtan2(params_b)  # fresh: defaults differ, the state dict restores them
    buffer.seek(0)
    opt_b.load_state_dict(torch.load(buffer, weights_only=True))
    assert opt_b.param_groups[0]["weight_decay"] == 0.2
    for i in range(3, 5):
        step(opt_a, params_a, grads[i], 1e-2 / i)
        step(opt_b, params_b, grads[i], 1e-2 / i)
    for a, b in zip(params_a, params_b, strict=True):
        assert torch.equal(a, b)


# -- sign-SGD rows ---------------------------------------------------------------


def fake_embedding(table, ids, grads):
    """The duck type SignSGDRows needs, with a finished backward."""
    rows = table[ids].clone().requires_grad_(True)
    rows.grad = grads.clone()
    return types.SimpleNamespace(weights=table, last_ids=ids, last_rows=rows)


def reference_rows_update(table, ids, grads, lr, wd):
    """Row-by-row update written from the paper's rule, over the (concatenated) batch."""
    out = table.clone()
    for i in ids.unique().tolist():
        g = grads[ids == i].sum(0)
        out[i] = out[i] * (1 - lr * wd) - lr * torch.sign(g)
    return out


def test_sign_sgd_sums_duplicates_before_sign():
    table = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    ids = torch.tensor([2, 0, 2])
    grads = torch.tensor([[3.0, -1.0, 0.5], [1.0, 1.0, -1.0], [-1.0, 4.0, -0.5]])
    emb = fake_embedding(table, ids, grads)
    SignSGDRows(emb, lr=0.5, weight_decay=0.1).step()
    # row 2: summed grad (2, 3, 0): sign of the larger, and exact cancellation -> 0
    want = reference_rows_update(torch.arange(12.0).reshape(4, 3), ids, grads, 0.5, 0.1)
    assert torch.equal(table, want)
    assert torch.equal(table[2], torch.tensor([6, 7, 8.0]) * 0.95 - 0.5 * torch.tensor([1, 1, 0]))
    assert torch.equal(table[1], torch.tensor([3, 4, 5.0]))  # unused rows untouched
    assert torch.equal(table[3], torch.tensor([9, 10, 11.0]))
    assert emb.last_rows is None and emb.last_ids is None


def test_sign_sgd_is_noop_without_gradient():
    table = torch.randn(3, 2)
    before = table.clone()
    opt = SignSGDRows(types.SimpleNamespace(weights=table, last_ids=None, last_rows=None), 1.0, 1.0)
    opt.step()
    emb = fake_embedding(table, torch.tensor([1]), torch.ones(1, 2))
    emb.last_rows.grad = None
    SignSGDRows(emb, lr=1.0, weight_decay=1.0).step()
    assert torch.equal(table, before)


def test_sign_sgd_with_puzzle_embedding_and_schedule_interface():
    emb = PuzzleEmbedding(5, 4, torch.float32).train()
    emb.weights.copy_(torch.randn(5, 4, generator=torch.Generator().manual_seed(3)))
    before = emb.weights.clone()
    ids = torch.tensor([1, 3, 1])
    coeff = torch.tensor([[1.0], [-1.0], [1.0]])
    (emb(ids) * coeff).sum().backward()  # d/d rows = coeff: row 1 sums to +2, row 3 -1
    opt = SignSGDRows(emb, lr=1.0, weight_decay=0.0)
    for group in opt.param_groups:  # what a schedule does to every optimiser
        group["lr"] = 0.25
    assert opt.lr == 0.25
    opt.step()
    assert torch.equal(emb.weights[1], before[1] - 0.25)
    assert torch.equal(emb.weights[3], before[3] + 0.25)
    assert torch.equal(emb.weights[[0, 2, 4]], before[[0, 2, 4]])
    restored = SignSGDRows(emb, lr=9.0, weight_decay=9.0)
    restored.load_state_dict(opt.state_dict())
    assert restored.state_dict() == {"lr": 0.25, "weight_decay": 0.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DIST_IDS = [torch.tensor([0, 2, 2]), torch.tensor([2, 4, 0])]
DIST_GRADS = [
    torch.tensor([[1.0, -2.0], [0.5, 1.0], [0.25, 0.0]]),
    torch.tensor([[-1.0, -1.0], [3.0, -3.0], [-2.0, 2.5]]),
]


def _dist_worker(rank: int, port: int, out: str) -> None:
    address = f"tcp://127.0.0.1:{port}"
    timeout = datetime.timedelta(seconds=30)  # fail, not hang, if the port was taken
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=2, timeout=timeout)
    try:
        table = torch.arange(10, dtype=torch.float32).reshape(5, 2)
        emb = fake_embedding(table, DIST_IDS[rank], DIST_GRADS[rank])
        SignSGDRows(emb, lr=0.5, weight_decay=0.2).step()
        torch.save(table, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sign_sgd_all_gathers_across_two_ranks(tmp_path):
    mp.spawn(_dist_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    tables = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    want = reference_rows_update(
        torch.arange(10.0).reshape(5, 2), torch.cat(DIST_IDS), torch.cat(DIST_GRADS), 0.5, 0.2
    )
    assert torch.equal(tables[0], tables[1])
    assert torch.equal(tables[0], want)
    assert torch.equal(tables[0][[1, 3]], torch.tensor([[2.0, 3.0], [6.0, 7.0]]))  # untouched


# -- learning-rate schedule ------------------------------------------------------


def test_learning_rate_warmup_then_constant():
    kw = {"base_lr": 1e-4, "warmup_steps": 2000, "total_steps": 10_000}
    assert learning_rate(0, **kw) == 0.0
    assert learning_rate(1, **kw) == pytest.approx(1e-4 / 2000)
    assert learning_rate(1000, **kw) == pytest.approx(5e-5)
    for step in (2000, 5000, 10_000, 20_000):
        assert learning_rate(step, **kw) == pytest.approx(1e-4)


def test_learning_rate_cosine():
    kw = {"base_lr": 1.0, "warmup_steps": 10, "total_steps": 110, "min_ratio": 0.1}
    assert learning_rate(10, **kw) == pytest.approx(1.0)
    assert learning_rate(60, **kw) == pytest.approx(0.1 + 0.9 * 0.5)  # midpoint
    assert learning_rate(85, **kw) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(0.75 * math.pi))
    )
    assert learning_rate(110, **kw) == pytest.approx(0.1)
    assert learning_rate(500, **kw) == pytest.approx(0.1)  # clamped past the end
    assert learning_rate(0, base_lr=1.0, warmup_steps=0, total_steps=0) == 1.0


# -- EMA -------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.linear = nn.Linear(3, 2).to(dtype)
        self.frozen = nn.Parameter(torch.ones(2, dtype=dtype), requires_grad=False)
        self.register_buffer("table", torch.zeros(4, 2, dtype=dtype))


def test_ema_closed_form_and_buffers_untouched():
    model = Tiny()
    w0 = model.linear.weight.detach().clone()
    ema = EMA(model, rate=0.9)
    assert set(ema.shadow) == {"linear.weight", "linear.bias"}  # no frozen param, no buffer
    values = [torch.full_like(w0, float(k)) for k in (1, 2, 3)]
    for value in values:
        model.linear.weight.data.copy_(value)
        model.table.add_(1.0)
        ema.update(model)
    want = 0.9**3 * w0 + 0.1 * (0.9**2 * values[0] + 0.9 * values[1] + values[2])
    torch.testing.assert_close(ema.shadow["linear.weight"], want)
    ema.copy_to(model)
    torch.testing.assert_close(model.linear.weight.detach(), want)
    assert torch.equal(model.table, torch.full((4, 2), 3.0))


def test_ema_shadow_stays_float32_with_bfloat16_model():
    model = Tiny(torch.bfloat16)
    ema = EMA(model, rate=0.999)
    start = ema.shadow["linear.weight"].clone()
    model.linear.weight.data.add_(1.0)
    ema.update(model)
    shadow = ema.shadow["linear.weight"]
    assert shadow.dtype == torch.float32
    # a 0.001 step is below bfloat16's resolution near 1 but kept in float32
    torch.testing.assert_close(shadow, 0.999 * start + 0.001 * (start.bfloat16() + 1).float())
    ema.copy_to(model)
    assert model.linear.weight.dtype == torch.bfloat16


def test_ema_swapped_restores_live_weights_even_on_error():
    model = Tiny()
    ema = EMA(model, rate=0.5)
    model.linear.weight.data.add_(4.0)
    ema.update(model)
    live = copy.deepcopy(model.state_dict())
    with ema.swapped(model):
        assert torch.equal(model.linear.weight, ema.shadow["linear.weight"])
    assert all(torch.equal(live[k], v) for k, v in model.state_dict().items())
    with pytest.raises(RuntimeError, match="boom"), ema.swapped(model):
        assert not torch.equal(model.linear.weight, live["linear.weight"])
        raise RuntimeError("boom")
    assert all(torch.equal(live[k], v) for k, v in model.state_dict().items())


def test_ema_state_dict_round_trip():
    model = Tiny()
    ema = EMA(model, rate=0.5)
    model.linear.bias.data.add_(2.0)
    ema.update(model)
    other = EMA(Tiny(), rate=0.5)
    other.load_state_dict(ema.state_dict())
    assert all(torch.equal(other.shadow[k], v) for k, v in ema.shadow.items())
    with pytest.raises(KeyError):
        other.load_state_dict({"linear.weight": ema.shadow["linear.weight"]})
