"""The Tiny Recursive Model, assembled from the component plugins.

``model(carry, batch)`` runs one supervision step with the deep-supervision
bookkeeping of the paper (docs/architecture.md#deep-supervision-and-halting): slots that halted
take the batch's new example and restart from the initial states, the core
thinks and acts, the LM head reads the answer y, the halting head decides which
slots stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from .config import ConfigError, ModelConfig, structure, suggest
from .devices import resolve_device, resolve_dtype
from .interfaces import Component, Encoder, HaltingHead, Mixer, ThinkActCore
from .layers import CastedLinear
from .registry import COMPONENT_KINDS, Registry, get_registry


def check_model_section(model: Mapping[str, Any], registry: Registry | None = None) -> None:
    """``check_components`` on a run's model section before the task has sized it
    (so a bad component option fails before any data is built)."""
    model = {"vocab_size": 1, "seq_len": 1, **model}
    check_components(structure(ModelConfig, model, where="model"), registry, sizes_known=False)


def check_components(
    config: ModelConfig, registry: Registry | None = None, sizes_known: bool = True
) -> dict[str, Any]:
    """Check the chosen components' options and requirements before anything is built.

    Every ``model.options`` section must name a registered component (one of
    another kind or not chosen is kept, unused, so that presets can carry options
    for several mixers); the chosen components' sections are parsed by their
    ``Options`` classes; then every component's ``requires`` is checked.
    ``sizes_known=False`` skips requirements on the sizes a task sets later
    (``vocab_size``, ``seq_len``, ``num_puzzle_identifiers``).

    Returns:
        {kind: that component's options object (or None)}. Raises ConfigError
        naming the key.
    """
    registry = registry or get_registry()
    classes: dict[str, type[Component]] = {
        kind: registry.get(kind, getattr(config, kind)) for kind in COMPONENT_KINDS
    }
    known = {name for kind in COMPONENT_KINDS for name in registry.names(kind)}
    for name in config.options:
        if name not in known:
            chosen = ", ".join(f"{getattr(config, kind)} ({kind})" for kind in COMPONENT_KINDS)
            raise ConfigError(
                f"model.options.{name}: no component is called {name!r}"
                f"{suggest(name, known)}; this model's components: {chosen}"
            )
    options = {kind: cls.options_from(config) for kind, cls in classes.items()}
    unset = () if sizes_known else ("vocab_size", "seq_len", "num_puzzle_identifiers")
    for kind, cls in classes.items():
        for key, allowed in cls.requires.items():
            other, dot, option = key.partition(".")
            if dot:
                if options[other] is None or not hasattr(options[other], option):
                    continue  # that component has no such option: nothing to agree on
                value = getattr(options[other], option)
                where = f"model.options.{getattr(config, other)}.{option}"
            elif key in unset:
                continue
            else:
                value, where = getattr(config, key), f"model.{key}"
            choices = allowed if isinstance(allowed, tuple) else (allowed,)
            if value not in choices:
                wanted = " or ".join(repr(c) for c in choices)
                raise ConfigError(
                    f"the {kind} {getattr(config, kind)!r} needs {where} to be {wanted}; "
                    f"it is {value!r}"
                )
    return options


@attrs.define
class Carry:
    """State kept across supervision steps, one row per batch slot.

    y, z: [B, L, D] answer and latent states (detached).
    steps: [B] int32 supervision steps taken by the slot's current example.
    halted: [B] bool; a halted slot takes a new example at the next call.
    data: the slot's current example, {"inputs": [B, S], ...} as in the batch.
    """

    y: Tensor
    z: Tensor
    steps: Tensor
    halted: Tensor
    data: dict[str, Tensor]

    def state_dict(self) -> dict[str, Any]:
        """The carry on the CPU, as a checkpoint holds it."""
        tensors = {"y": self.y, "z": self.z, "steps": self.steps, "halted": self.halted}
        return {
            **{key: value.cpu() for key, value in tensors.items()},
            "data": {key: value.cpu() for key, value in self.data.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: torch.device | str) -> Carry:
        """The carry :meth:`state_dict` gave, on ``device``."""
        return cls(
            y=state["y"].to(device), z=state["z"].to(device), steps=state["steps"].to(device),
            halted=state["halted"].to(device),
            data={key: value.to(device) for key, value in state["data"].items()},
        )  # fmt: skip


class TRMModel(nn.Module):
    """Encoder -> ThinkActCore (repeated under deep supervision) -> LM head + HaltingHead."""

    def __init__(
        self,
        config: ModelConfig,
        registry: Registry | None = None,
        device: str | torch.device | None = None,
        data_parallel: tuple[int, int] = (0, 1),
    ) -> None:
        """Build the model from ``config``'s plugins; ``device`` only resolves dtype "auto".
        ``data_parallel``: (rank, number of processes) of data-parallel training, so that
        exploration draws are sliced from the global batch's (see forward)."""
        super().__init__()
        registry = registry or get_registry()
        if config.dtype == "auto":
            config = attrs.evolve(config, dtype=resolve_dtype("auto", device))
        self.config = config
        self.forward_dtype = getattr(torch, config.dtype)
        # What this model was built from, recorded in its checkpoints.
        self.plugin_table = [entry.as_dict() for entry in registry.entries()]
        check_components(config, registry)
        self.components = {
            kind: registry.entry(kind, name).as_dict()
            for kind, name in (
                ("encoder", config.encoder),
                ("mixer", config.mixer),
                ("core", config.core),
                ("halting_head", config.halting_head),
            )
        }
        mixer_cls: type[Mixer] = registry.get("mixer", config.mixer)
        self.encoder: Encoder = registry.get("encoder", config.encoder)(config)
        length = config.seq_len + self.encoder.prefix_len  # L
        mixers: list[Mixer] = []

        def make_mixer() -> Mixer:
            mixers.append(mixer_cls(config, length))
            return mixers[-1]

        self.core: ThinkActCore = registry.get("core", config.core)(config, make_mixer)
        # Rotary tables, made once: the encoder's positions at the mixers' width.
        widths = {mixer.rotary_dim for mixer in mixers} - {None}
        if len(widths) > 1:
            raise ConfigError(f"the {config.mixer} mixers want rotary widths {sorted(widths)}")
        tables = self.encoder.rotary(length, widths.pop()) if widths else None
        self.register_buffer("rotary_cos", tables[0] if tables else None, persistent=False)
        self.register_buffer("rotary_sin", tables[1] if tables else None, persistent=False)
        self.lm_head = CastedLinear(config.hidden_size, config.vocab_size)
        self.halting_head: HaltingHead = registry.get("halting_head", config.halting_head)(config)
        self.data_parallel = data_parallel

    @property
    def prefix_len(self) -> int:
        return self.encoder.prefix_len

    @property
    def rotary(self) -> tuple[Tensor, Tensor] | None:
        """The rotary tables ``(cos, sin)`` [L, rotary_dim] the mixers get, or None."""
        return None if self.rotary_cos is None else (self.rotary_cos, self.rotary_sin)

    def num_parameters(self) -> int:
        """Trainable parameters (the puzzle-embedding buffer is not one)."""
        return sum(p.numel() for p in self.parameters())

    @contextlib.contextmanager
    def depth(self, **values: int) -> Iterator[None]:
        """Run with other ``think_steps``, ``cycles`` or ``halt_max_steps`` for a while (a
        stage of ``train.curriculum``): every module holding the model's config sees the
        changed copy inside the block, its own after it. No values: nothing changes."""
        if not values:
            yield
            return
        own = self.config
        holders = [module for module in self.modules() if getattr(module, "config", None) is own]
        changed = attrs.evolve(own, **values)
        for module in holders:
            module.config = changed
        try:
            yield
        finally:
            for module in holders:
                module.config = own

    # -- deep-supervision interface -------------------------------------------

    def initial_carry(self, batch: Mapping[str, Tensor]) -> Carry:
        """A carry for ``batch``'s size with every slot halted (so the next call starts fresh)."""
        inputs = batch["inputs"]
        size, length = inputs.shape[0], inputs.shape[1] + self.prefix_len
        device = inputs.device
        state = torch.zeros(
            size, length, self.config.hidden_size, dtype=self.forward_dtype, device=device
        )
        return Carry(
            y=state,
            z=state.clone(),
            steps=torch.zeros(size, dtype=torch.int32, device=device),
            halted=torch.ones(size, dtype=torch.bool, device=device),
            data={key: torch.zeros_like(value) for key, value in batch.items()},
        )

    def forward(self, carry: Carry, batch: Mapping[str, Tensor]) -> tuple[Carry, dict[str, Tensor]]:
        """One supervision step for every slot.

        Args:
            carry: from ``initial_carry`` or the previous call.
            batch: ``inputs`` [B, S] tokens, ``puzzle_identifiers`` [B], and any
                other per-example tensors (``labels`` [B, S]); halted slots take
                their row of it.

        Returns:
            ``(carry, out)`` with ``out["logits"]`` [B, S, V] (forward dtype),
            ``out["halt_logits"]`` [B] float32, plus the head's other outputs.
        """
        halted = carry.halted
        # Halted slots restart: new example, initial y/z, step counter 0.
        data = {
            key: torch.where(halted.view(-1, *([1] * (value.ndim - 1))), batch[key], value)
            for key, value in carry.data.items()
        }
        y_init, z_init = self.core.initial_state()
        reset = halted.view(-1, 1, 1)
        y = torch.where(reset, y_init.to(self.forward_dtype), carry.y)  # [B, L, D]
        z = torch.where(reset, z_init.to(self.forward_dtype), carry.z)
        steps = torch.where(halted, 0, carry.steps)

        x = self.encoder(data["inputs"], data["puzzle_identifiers"])  # [B, L, D]
        y, z = self.core(y, z, x, self.rotary)

        out = {"logits": self.lm_head(y)[:, self.prefix_len :]}  # [B, S, V]
        out.update(self.halting_head(y))  # halt_logits [B]

        with torch.no_grad():
            steps = steps + 1
            halted = steps >= self.config.halt_max_steps
            if self.training and self.config.halt_max_steps > 1:
                halted = halted | (out["halt_logits"] > 0)
                # Exploration: some slots draw a minimum step count in [2, max]. The draws
                # are made for the whole global batch and this process takes its slice, so
                # N data-parallel processes halt exactly as one process would.
                rank, world = self.data_parallel
                local = steps.shape[0]
                mine = slice(rank * local, (rank + 1) * local)
                draws = torch.rand(local * world, device=steps.device)[mine]  # [B]
                explore = draws < self.config.halt_exploration_prob
                least = torch.randint(
                    2, self.config.halt_max_steps + 1, (local * world,), device=steps.device,
                    dtype=steps.dtype,
                )[mine]  # fmt: skip
                halted = halted & (steps >= explore * least)
        return Carry(y.detach(), z.detach(), steps, halted, data), out

    # -- reference interoperability --------------------------------------------

    def reference_keys(self) -> dict[str, str]:
        """Our state-dict keys -> the reference code's (relative to ``model.inner.``)."""
        keys = {"lm_head.weight": "lm_head.weight"}
        for prefix, module in (
            ("encoder", self.encoder),
            ("core", self.core),
            ("halting_head", self.halting_head),
        ):
            keys.update({f"{prefix}.{ours}": ref for ours, ref in module.reference_keys().items()})
        return keys


def build_model(
    config: ModelConfig | Mapping[str, Any],
    *,
    device: str | torch.device | None = None,
    registry: Registry | None = None,
) -> TRMModel:
    """Build a freshly initialised model on ``device`` (None/"auto": CUDA if present).

    A config ``dtype`` of "auto" becomes bfloat16 where ``device`` computes it
    natively, else float32; ``model.config.dtype`` records the choice.
    """
    if not isinstance(config, ModelConfig):
        config = structure(ModelConfig, config, where="model")
    device = resolve_device(device)
    return TRMModel(config, registry, device).to(device)
