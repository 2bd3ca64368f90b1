"""The paper's optimisation recipe: Adam-atan2, sign-SGD rows, schedule, EMA.

See docs/architecture.md#optimisation (arXiv:2510.04871).

- :class:`AdamAtan2` trains the network weights (float32 master weights).
- :class:`SignSGDRows` trains the puzzle-embedding buffer, touching only the rows a
  batch used (all-gathered across ranks so every rank applies the same update).
- :func:`learning_rate` is the warm-up + half-cosine schedule, for both optimisers.
- :class:`EMA` keeps float32 shadow parameters for evaluation and the saved model.

Both optimisers expose ``param_groups`` (a list of dicts with an ``"lr"`` key), so one
schedule loop can drive them alike::

    for opt in (weights_opt, rows_opt):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, base_lr=base[opt], ...)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .config import TrainConfig
from .curriculum import last_step
from .layers import PuzzleEmbedding

__all__ = ["EMA", "AdamAtan2", "Optimizers", "SignSGDRows", "learning_rate"]


class AdamAtan2(torch.optim.Optimizer):
    """Adam with ``atan2`` in place of ``m / (sqrt(v) + eps)``: scale-invariant, no epsilon.

    Per parameter ``p`` [any shape] with gradient ``g`` (same shape), at its step
    ``t`` (1-based, counted per parameter in ``state["step"]``)::

        p *= 1 - lr * wd                      # decoupled weight decay, first
        m  = lerp(m, g, 1 - b1)
        v  = lerp(v, g * g, 1 - b2)
        p -= lr / (1 - b1**t) * atan2(m, sqrt(v) / sqrt(1 - b2**t))

    ``atan2(0, 0) = 0``, so a parameter whose gradient has always been zero moves only
    by weight decay. Moments are float32 whatever the parameter dtype. ``lr`` is read
    from ``group["lr"]`` at every step, so a scheduler may change it in between.
    Parameters whose ``.grad`` is None are skipped (their ``t`` does not advance).

    ``foreach``: None (default) uses the multi-tensor ``torch._foreach_*`` path when a
    group's parameters are all float32 CUDA tensors, the per-tensor path otherwise.
    On CPU both paths are bit-identical (tested); on CUDA this is not verified.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,  # the paper's lr for every recipe (docs/architecture.md#optimisation)
        betas: tuple[float, float] = (0.9, 0.95),  # the paper's betas: short v memory
        weight_decay: float = 0.0,  # off unless asked: recipes set 1.0 or 0.1 explicitly
        foreach: bool | None = None,  # None: multi-tensor only where it pays off (CUDA)
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "weight_decay": weight_decay,
            "foreach": foreach,
        }
        super().__init__(params, defaults)

    def _state_for(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            # ``step`` is a plain int: exact, and kept as is by load_state_dict.
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)  # m
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)  # v
        for key in ("exp_avg", "exp_avg_sq"):  # load_state_dict casts to the param dtype
            if state[key].dtype != torch.float32:
                state[key] = state[key].float()
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one update to every parameter that has a gradient; returns ``closure()``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            b1, b2 = group["betas"]
            # Bucket by step count: one scalar step size per foreach call keeps it exact.
            buckets: dict[int, list[tuple[Tensor, Tensor, dict[str, Any]]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamAtan2 does not support sparse gradients")
                state = self._state_for(p)
                state["step"] += 1
                buckets.setdefault(state["step"], []).append((p, p.grad, state))
            foreach = group.get("foreach")
            for t, items in buckets.items():
                all_f32 = all(p.dtype == torch.float32 for p, _, _ in items)
                on_cuda = all(p.is_cuda for p, _, _ in items)
                use_foreach = all_f32 and (on_cuda if foreach is None else foreach)
                _update(items, t, lr=lr, wd=wd, betas=(b1, b2), foreach=use_foreach)
        return loss


def _update(
    items: list[tuple[Tensor, Tensor, dict[str, Any]]],
    t: int,
    *,
    lr: float,
    wd: float,
    betas: tuple[float, float],
    foreach: bool,
) -> None:
    """One :class:`AdamAtan2` update of ``(param, grad, state)`` triples all at step ``t``.

    Both paths run the same float32 operations in the same order (so on CPU they agree
    bit for bit); the foreach one needs float32 parameters.
    """
    b1, b2 = betas
    step_size, bc2_sqrt = lr / (1.0 - b1**t), math.sqrt(1.0 - b2**t)
    if not foreach:
        for p, grad, state in items:
            work = p if p.dtype == torch.float32 else p.float()  # float32 arithmetic
            g, m, v = grad.float(), state["exp_avg"], state["exp_avg_sq"]
            if wd != 0.0:  # multiplying by 1.0 would be exact anyway: skip the pass
                work.mul_(1.0 - lr * wd)
            m.lerp_(g, 1.0 - b1)
            v.lerp_(g * g, 1.0 - b2)
            work.add_(torch.atan2(m, v.sqrt() / bc2_sqrt), alpha=-step_size)
            if work is not p:
                p.copy_(work)
        return
    params = [p for p, _, _ in items]
    grads = [g.float() for _, g, _ in items]
    ms = [s["exp_avg"] for _, _, s in items]
    vs = [s["exp_avg_sq"] for _, _, s in items]
    if wd != 0.0:
        torch._foreach_mul_(params, 1.0 - lr * wd)
    torch._foreach_lerp_(ms, grads, 1.0 - b1)
    torch._foreach_lerp_(vs, torch._foreach_mul(grads, grads), 1.0 - b2)
    denom = torch._foreach_sqrt(vs)
    torch._foreach_div_(denom, bc2_sqrt)
    for m, d in zip(ms, denom, strict=True):  # there is no _foreach_atan2
        torch.atan2(m, d, out=d)
    torch._foreach_add_(params, denom, alpha=-step_size)


class SignSGDRows:
    """Sign-SGD on the puzzle-embedding rows a batch used (docs/architecture.md#optimisation).

    ``embedding`` is duck-typed: a buffer ``weights`` [num_ids, dim] and, after a
    training forward, ``last_ids`` [B] (int64) and ``last_rows`` [B, dim], a leaf whose
    ``.grad`` [B, dim] holds the rows' gradient after backward. :meth:`step`:

    1. under an initialised process group of world size > 1, all-gathers ids and grads
       from every rank (every rank must hold the same B), so all ranks apply the
       identical update and the tables stay equal;
    2. sums the gradients of duplicate ids (sorting, not ``torch.unique``: no host sync);
    3. for each distinct row: ``row *= 1 - lr * wd; row -= lr * sign(grad_sum)``,
       written in place into ``embedding.weights``;
    4. drops ``last_ids`` / ``last_rows`` (and the gradient), so a second call is a no-op.

    With gradient accumulation, :meth:`collect` after each micro-batch's backward keeps
    its rows for the step, which updates them with the last micro-batch's.

    The learning rate is ``self.lr``, also reachable as ``param_groups[0]["lr"]`` (the
    same storage) so a schedule can treat this and :class:`AdamAtan2` alike.
    """

    def __init__(
        self,
        embedding: nn.Module,
        lr: float,  # no default: recipes differ (1e-4 Sudoku/Maze, 1e-2 ARC)
        weight_decay: float,  # no default: recipes differ (1.0 Sudoku/Maze, 0.1 ARC)
        process_group: dist.ProcessGroup | None = None,  # None: the default group
    ) -> None:
        self.embedding = embedding
        self.process_group = process_group
        self._pending: list[tuple[Tensor, Tensor]] = []  # earlier micro-batches' (ids, grads)
        self.param_groups: list[dict[str, float]] = [
            {"lr": float(lr), "weight_decay": float(weight_decay)}
        ]

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = float(value)

    @property
    def weight_decay(self) -> float:
        return self.param_groups[0]["weight_decay"]

    @weight_decay.setter
    def weight_decay(self, value: float) -> None:
        self.param_groups[0]["weight_decay"] = float(value)

    def _world_size(self) -> int:
        if not (dist.is_available() and dist.is_initialized()):
            return 1
        return dist.get_world_size(self.process_group)

    def _gather(self, tensor: Tensor) -> Tensor:
        """[B, ...] on this rank -> [world * B, ...], rank-major, identical on every rank."""
        parts = [torch.empty_like(tensor) for _ in range(self._world_size())]
        dist.all_gather(parts, tensor.contiguous(), group=self.process_group)
        return torch.cat(parts, dim=0)

    @torch.no_grad()
    def collect(self) -> None:
        """Keep the last training forward's rows and gradient for the next :meth:`step`,
        so that another forward may run first (gradient accumulation: the micro-batches'
        rows are then updated together, in micro-batch order, as ranks' are)."""
        emb = self.embedding
        rows = getattr(emb, "last_rows", None)
        if rows is None or rows.grad is None:
            return
        ids = emb.last_ids.reshape(-1)
        self._pending.append((ids, rows.grad.reshape(ids.numel(), -1)))
        rows.grad = None
        emb.last_ids, emb.last_rows = None, None

    @torch.no_grad()
    def step(self) -> None:
        """Apply the update for the training forwards since the last step (the last one,
        and those :meth:`collect` kept); no-op without a gradient."""
        emb = self.embedding
        rows = getattr(emb, "last_rows", None)
        parts, self._pending = self._pending, []
        if rows is not None and rows.grad is not None:
            ids = emb.last_ids.reshape(-1)
            parts.append((ids, rows.grad.reshape(ids.numel(), -1)))
        if not parts:
            return
        weights: Tensor = emb.weights  # [num_ids, dim]
        ids = torch.cat([part[0] for part in parts]).to(weights.device, torch.long)  # [B]
        grads = torch.cat([part[1] for part in parts]).to(weights.device, torch.float32)
        if self._world_size() > 1:
            ids, grads = self._gather(ids), self._gather(grads)  # [N = W*B], [N, dim]
        if ids.numel():
            target, update = _sum_duplicates(ids, grads)  # [N], [N, dim]
            lr, wd = self.lr, self.weight_decay
            new_rows = weights[target].float()  # [N, dim], a copy
            new_rows.mul_(1.0 - lr * wd).add_(torch.sign(update), alpha=-lr)
            weights.index_copy_(0, target, new_rows.to(weights.dtype))
        if rows is not None:
            rows.grad = None
        emb.last_ids, emb.last_rows = None, None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the last rows' gradient (for symmetry with torch optimisers)."""
        rows = getattr(self.embedding, "last_rows", None)
        if rows is not None:
            rows.grad = None

    def state_dict(self) -> dict[str, float]:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.lr, self.weight_decay = state["lr"], state["weight_decay"]


def _sum_duplicates(ids: Tensor, grads: Tensor) -> tuple[Tensor, Tensor]:
    """Each distinct id's summed gradient, with no host sync (``torch.unique`` needs one
    to size its result on a GPU).

    Args:
        ids: [N] int64 table rows; grads: [N, dim] float32, one row per id.

    Returns:
        ``(target [N], summed [N, dim])``: the U distinct ids with their gradient sums in
        slots 0..U-1, and slots U..N-1 repeating slot U-1, so that writing every slot
        writes each distinct row once with its own value (duplicates write equal values).
        Within an id, gradients are added in their order in ``ids`` (as ``index_add_``
        over ``torch.unique``'s inverse would, so on a CPU the sums are the same bits).
    """
    count = ids.numel()
    ordered, order = torch.sort(ids, stable=True)  # [N]
    starts = torch.ones(count, dtype=torch.bool, device=ids.device)
    starts[1:] = ordered[1:] != ordered[:-1]
    run = torch.cumsum(starts, 0) - 1  # [N] the distinct id's slot of each sorted row
    summed = grads.new_zeros(grads.shape).index_add_(0, run, grads[order])  # [N, dim]
    distinct = ordered.new_zeros(count).scatter_(0, run, ordered)  # [N], slot -> id
    slot = torch.minimum(torch.arange(count, device=ids.device), run[-1])  # U.. -> U-1
    return distinct[slot], summed[slot]


def learning_rate(
    step: int,
    *,
    base_lr: float,
    warmup_steps: int,  # recipes: 2,000
    total_steps: int,
    min_ratio: float = 1.0,  # the recipes' value: constant lr after warm-up
) -> float:
    """Learning rate at optimiser step ``step`` (0-based), as the reference computes it.

    Warm-up: ``base_lr * step / max(1, warmup_steps)`` for ``step < warmup_steps`` (so
    step 0 has lr 0). Then a half cosine from ``base_lr`` to ``base_lr * min_ratio``
    at ``total_steps``. Past ``total_steps`` progress is clamped to 1 (lr stays at the
    minimum; the reference never steps there).
    """
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (min_ratio + max(0.0, (1.0 - min_ratio) * cosine))


class EMA:
    """Exponential moving average of a model's trainable parameters, float32 shadows.

    ``shadow = rate * shadow + (1 - rate) * param`` (as ``lerp(shadow, param, 1-rate)``)
    for every named parameter with ``requires_grad``, whatever the forward dtype.
    Buffers (e.g. the puzzle-embedding table, the initial states) are NOT averaged,
    as in the reference: evaluation with :meth:`swapped` uses the live buffers.
    """

    def __init__(self, model: nn.Module, rate: float = 0.999) -> None:  # rate: the paper's
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must lie in [0, 1], got {rate}")
        self.rate = rate
        self.shadow: dict[str, Tensor] = {
            name: p.detach().to(torch.float32, copy=True)
            for name, p in model.named_parameters()
            if p.requires_grad
        }

    def _params(self, model: nn.Module) -> dict[str, Tensor]:
        params = dict(model.named_parameters())
        missing = [name for name in self.shadow if name not in params]
        if missing:
            raise KeyError(f"model lacks EMA parameters: {missing}")
        return {name: params[name] for name in self.shadow}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move every shadow a ``1 - rate`` step towards the model's current value."""
        params = self._params(model)
        if not params:
            return
        shadows = list(self.shadow.values())
        live = [params[name].detach().float() for name in self.shadow]
        torch._foreach_lerp_(shadows, live, 1.0 - self.rate)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the shadows (cast to their dtype)."""
        for name, p in self._params(model).items():
            p.copy_(self.shadow[name])

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Use the EMA weights inside the block; the live weights return on exit (even on error)."""
        params = self._params(model)
        with torch.no_grad():
            backup = {name: p.detach().clone() for name, p in params.items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(backup[name])

    def state_dict(self) -> dict[str, Tensor]:
        """Parameter name -> float32 shadow tensor (the live tensors, as nn.Module does)."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Copy saved shadows in; the names must match this EMA's exactly."""
        if set(state) != set(self.shadow):
            raise KeyError(f"EMA state names {sorted(state)} != {sorted(self.shadow)}")
        with torch.no_grad():
            for name, tensor in state.items():
                self.shadow[name].copy_(tensor)


class Optimizers:
    """Several optimisers stepped as one, each over its own parameters (``train.optimizer:
    muon``: Muon for the reasoning net's matrices, Adam-atan2 for the rest). It has what
    the trainer uses of an optimiser: ``param_groups`` (all of them), ``step``,
    ``zero_grad``, ``state_dict`` and ``load_state_dict``."""

    def __init__(self, **parts: torch.optim.Optimizer) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for part in self.parts.values() for group in part.param_groups]

    def step(self) -> None:
        for part in self.parts.values():
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts.values():
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or set(state) != set(self.parts):
            raise ValueError(
                f"the saved optimiser state is not one of {', '.join(self.parts)} "
                "(another train.optimizer)"
            )
        for name, part in self.parts.items():
            part.load_state_dict(state[name])


def group_active(group: dict[str, Any], step: int, total_steps: int) -> bool:
    """Whether an optimiser group trains at 1-based ``step`` of ``total_steps``: after its
    ``from`` fraction of the steps (default 0) and within its ``until`` (default: the
    end), the fractions bounded as a curriculum stage's (:func:`curriculum.last_step`)."""
    start, until = group.get("from") or 0.0, group.get("until")
    after_start = step > last_step(start, total_steps)
    return after_start and (until is None or step <= last_step(until, total_steps))


def muon_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters Muon trains: the think/act core's matrices (the blocks' mixer and
    SwiGLU weights); embeddings, heads, norms and vectors stay with Adam-atan2."""
    core = getattr(model, "core", model)
    return [p for p in core.parameters() if p.ndim == 2 and p.requires_grad]


def build_optimizers(
    model: nn.Module, train: TrainConfig
) -> tuple[AdamAtan2 | Optimizers, list[SignSGDRows]]:
    """The paper's pair: Adam-atan2 for the weights, sign-SGD for each puzzle-embedding
    table; with ``train.optimizer: muon``, torch's Muon takes the core's matrices (its
    learning rate ``train.lr`` x ``train.muon_lr_scale``, scaled to Adam's update size by
    ``adjust_lr_fn="match_rms_adamw"``; the schedule drives both), after Adam-atan2 has
    trained them for the first ``train.muon_from`` of the steps. A group's ``from`` and
    ``until`` are the fractions of the steps it trains between (:func:`group_active`)."""
    betas = (train.beta1, train.beta2)
    if train.optimizer == "muon":
        matrices = muon_parameters(model)
        chosen = {id(p) for p in matrices}
        rest = [p for p in model.parameters() if id(p) not in chosen]
        muon = torch.optim.Muon(
            matrices, lr=train.lr * train.muon_lr_scale, weight_decay=train.weight_decay,
            momentum=train.muon_momentum, adjust_lr_fn="match_rms_adamw",
        )  # fmt: skip
        for group in muon.param_groups:
            group["lr_scale"] = train.muon_lr_scale  # the schedule multiplies it in
            group["from"] = train.muon_from
        groups: list[dict[str, Any]] = [{"params": rest}]
        if train.muon_from > 0:
            # Adam-atan2 trains the matrices first; the schedule then zeroes one group's lr
            # or the other's (each optimiser keeps its moments up to date meanwhile).
            groups.append({"params": matrices, "until": train.muon_from})
        adam = AdamAtan2(groups, lr=train.lr, betas=betas, weight_decay=train.weight_decay)
        weights: AdamAtan2 | Optimizers = Optimizers(muon=muon, adam=adam)
    else:
        weights = AdamAtan2(
            model.parameters(), lr=train.lr, betas=betas, weight_decay=train.weight_decay
        )
    rows = [
        SignSGDRows(table, lr=train.puzzle_emb_lr, weight_decay=train.puzzle_emb_weight_decay)
        for table in model.modules()
        if isinstance(table, PuzzleEmbedding)
    ]
    return weights, rows
