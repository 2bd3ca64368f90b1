"""Configuration classes and the strict mapping -> attrs conversion they share.

Every configuration is an attrs class. ``structure`` turns a plain mapping (from
YAML, a checkpoint or keyword arguments) into one, and fails on an unknown key
with the nearest valid names, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

POSITION_ENCODINGS = ("rope", "learned", "none")
FORWARD_DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


def suggest(name: str, choices: Any) -> str:
    """Return ' (did you mean X?)' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def structure(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build the attrs class ``cls`` from ``data``, refusing unknown keys.

    ``where`` names the place the mapping came from (a file, a section) and is
    used in error messages, e.g. ``model.hiden_size``.
    """
    fields = {f.name: f for f in attrs.fields(cls)}
    unknown = [key for key in data if key not in fields]
    if unknown:
        lines = [f"unknown key {where}.{key}{suggest(key, fields)}" for key in unknown]
        valid = ", ".join(sorted(fields))
        raise ConfigError("; ".join(lines) + f". Valid keys of {where}: {valid}")
    try:
        return cls(**dict(data))
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where}: {error}") from error


def unstructure(obj: Any) -> dict[str, Any]:
    """The attrs object as a plain dict (YAML- and checkpoint-friendly)."""
    return attrs.asdict(obj, recurse=True)


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value <= 0:
        raise ConfigError(f"model.{attribute.name} must be positive, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value < 0:
        raise ConfigError(f"model.{attribute.name} must be >= 0, got {value!r}")


def _one_of(choices: tuple[str, ...]):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ConfigError(
                f"model.{attribute.name} must be one of {', '.join(choices)}; got {value!r}"
                + suggest(str(value), choices)
            )

    return check


def _probability(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"model.{attribute.name} must be within [0, 1], got {value!r}")


@attrs.define(kw_only=True)
class ModelConfig:
    """Architecture of one Tiny Recursive Model (TRM_SPEC section 2).

    The component fields name plugins (looked up in the registry); the rest are
    sizes. Defaults are the paper's; a task's presets set vocab and sequence.
    """

    # Which plugin implements each part. Defaults are the paper's components.
    encoder: str = "grid"
    mixer: str = "attention"  # token mixing: "attention" (rope) or "mlp" (the Sudoku recipe)
    core: str = "trm"
    halting_head: str = "first_token"

    # Problem sizes: set by the task.
    vocab_size: int = attrs.field(validator=_positive)
    seq_len: int = attrs.field(validator=_positive)
    num_puzzle_identifiers: int = attrs.field(default=1, validator=_positive)

    # Network sizes (the paper's ~7M-parameter net).
    hidden_size: int = attrs.field(default=512, validator=_positive)
    num_heads: int = attrs.field(default=8, validator=_positive)
    expansion: float = attrs.field(default=4.0, converter=float, validator=_positive)
    num_layers: int = attrs.field(default=2, validator=_positive)  # reference: L_layers
    # Recursion: T cycles per supervision step, each n think updates and one act update.
    cycles: int = attrs.field(default=3, validator=_positive)  # T; reference: H_cycles
    think_steps: int = attrs.field(default=6, validator=_positive)  # n; reference: L_cycles

    # Puzzle-embedding prefix: dim 0 disables it; None means hidden_size (all recipes).
    puzzle_emb_dim: int | None = None
    puzzle_emb_len: int = attrs.field(default=16, validator=_non_negative)

    positions: str = attrs.field(default="rope", validator=_one_of(POSITION_ENCODINGS))
    rope_theta: float = attrs.field(default=10000.0, converter=float, validator=_positive)
    rms_norm_eps: float = attrs.field(default=1e-5, converter=float, validator=_positive)

    # Deep supervision: at most this many supervision steps per example.
    halt_max_steps: int = attrs.field(default=16, validator=_positive)
    halt_exploration_prob: float = attrs.field(default=0.1, converter=float, validator=_probability)

    # Forward (compute) dtype; weights are kept in float32 and cast on use. "auto" is
    # bfloat16 (the paper's) where the device computes it natively (CUDA with bf16,
    # CPUs with AVX-512-BF16/AMX), else float32: on an AVX2-only CPU bfloat16
    # matmuls are emulated and far slower than float32.
    dtype: str = attrs.field(default="auto", validator=_one_of(FORWARD_DTYPES))

    def __attrs_post_init__(self) -> None:
        if self.puzzle_emb_dim is None:
            self.puzzle_emb_dim = self.hidden_size
        if self.puzzle_emb_dim < 0:
            raise ConfigError(f"model.puzzle_emb_dim must be >= 0, got {self.puzzle_emb_dim}")
        if self.puzzle_emb_dim > self.puzzle_emb_len * self.hidden_size:
            raise ConfigError(
                f"model.puzzle_emb_dim ({self.puzzle_emb_dim}) does not fit in "
                f"puzzle_emb_len x hidden_size = {self.puzzle_emb_len} x {self.hidden_size}"
            )

    @property
    def prefix_len(self) -> int:
        """Number of puzzle-embedding tokens prepended to the sequence (P)."""
        return self.puzzle_emb_len if self.puzzle_emb_dim else 0

    @property
    def total_len(self) -> int:
        """Model sequence length: seq_len + P."""
        return self.seq_len + self.prefix_len
