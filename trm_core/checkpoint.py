"""Checkpoints: our own format, and reading the reference code's (docs/architecture.md).

Our checkpoint is one ``torch.save``d dict holding the resolved model config,
the state dict, the components used and the plugin table, so a model can be
rebuilt from the file alone, and a SHA-256 of all of it, checked on reading:
``torch.load`` checks no CRC, so without it a flipped bit in the weights would
load silently. Files are written atomically: a temporary file in the same
folder (``.NAME.XXXXXXXX.tmp``, locked while open so that a cleaner can tell
one still being written from one an interrupted write left), flushed and
fsynced, given the mode a plain ``open`` would, then renamed over the target.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from .config import ModelConfig, structure, suggest, unstructure
from .devices import resolve_device
from .errors import CheckpointError, ConfigError
from .files import atomic_save
from .layers import swiglu_width
from .model import TRMModel
from .registry import Registry, get_registry

FORMAT = "trm-checkpoint"
#: 2: the payload's SHA-256 under ``checksum`` (version 1 files, without one, still load).
FORMAT_VERSION = 2


def _torch_load(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, or a damaged one ({_gist(error)})"
        ) from error


def _gist(error: Exception) -> str:
    """One line of what torch.load said (its weights-only errors run to a page)."""
    text = str(error).partition("WeightsUnpickler error:")[2] or str(error)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    line = line if len(line) <= 160 else line[:157] + "..."
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def payload_digest(payload: Any) -> str:
    """SHA-256 (hex) of a canonical walk of ``payload``: every tensor's dtype, shape and
    bytes, and every container, key and plain value around them, in order."""
    digest = hashlib.sha256()
    _digest_into(digest, payload)
    return digest.hexdigest()


def _digest_into(digest: Any, value: Any) -> None:
    def put(tag: bytes, data: bytes) -> None:
        digest.update(tag + len(data).to_bytes(8, "little") + data)

    if isinstance(value, Tensor):
        tensor = value.detach().cpu().contiguous()
        put(b"T", f"{tensor.dtype} {list(tensor.shape)}".encode())
        data = tensor.reshape(-1).view(torch.uint8).numpy()  # no copy on the CPU
        put(b"D", str(data.nbytes).encode())
        digest.update(data)
    elif isinstance(value, Mapping):
        put(b"M", str(len(value)).encode())
        for key, item in value.items():
            _digest_into(digest, key)
            _digest_into(digest, item)
    elif isinstance(value, list | tuple):
        put(b"L" if isinstance(value, list) else b"U", str(len(value)).encode())
        for item in value:
            _digest_into(digest, item)
    elif isinstance(value, str):
        put(b"S", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        put(b"B", value)
    elif value is None or isinstance(value, bool | int | float):
        put(b"V", repr(value).encode())
    else:  # what else a weights-only load gives back (dtypes, devices) has a stable repr
        put(b"O", f"{type(value).__module__}.{type(value).__qualname__} {value!r}".encode())


def check_state(expected: Mapping[str, torch.Size], given: Mapping[str, Tensor], what: str) -> None:
    """Raise CheckpointError listing every missing, unexpected or mis-shaped key."""
    problems = []
    for key, shape in expected.items():
        if key not in given:
            problems.append(f"  missing key {key} (model expects shape {list(shape)})")
        elif tuple(given[key].shape) != tuple(shape):
            problems.append(
                f"  shape mismatch at {key}: checkpoint {list(given[key].shape)}, "
                f"model {list(shape)}"
            )
    for key in given:
        if key not in expected:
            problems.append(f"  unexpected key {key}{suggest(key, expected)}")
    if problems:
        raise CheckpointError(f"{what} does not fit the model:\n" + "\n".join(problems))


def _load_into(model: TRMModel, state: Mapping[str, Tensor]) -> None:
    with torch.no_grad():
        for key, target in model.state_dict().items():
            target.copy_(state[key].to(target.dtype))


# -- our own format -------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, model: TRMModel, **extra: Any) -> Path:
    """Write ``model`` (config, weights, components, plugin table) plus ``extra`` atomically,
    with the SHA-256 of all of it (:func:`payload_digest`) under ``checksum``."""
    if "checksum" in extra:
        raise ValueError("'checksum' is the checkpoint's own key")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": unstructure(model.config),
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "components": model.components,
        "plugins": model.plugin_table,
        **extra,
    }
    payload["checksum"] = f"sha256:{payload_digest(payload)}"
    return atomic_save(payload, path)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read one of our checkpoints, its checksum verified (and removed from the payload);
    a damaged, reference or foreign file gets a clear error naming it."""
    payload = _torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = ""
        if isinstance(payload, dict) and any(str(k).endswith("H_init") for k in payload):
            hint = " It looks like a reference TRM checkpoint: convert it with trm-convert."
        raise CheckpointError(f"{path}: not a trm checkpoint (no format {FORMAT!r}).{hint}")
    version = payload.get("format_version", 0)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than "
            f"this trm-core understands ({FORMAT_VERSION}); upgrade trm-core"
        )
    recorded = payload.pop("checksum", None)
    if recorded is not None:
        found = f"sha256:{payload_digest(payload)}"
        if recorded != found:
            raise CheckpointError(
                f"{path}: checksum mismatch: the file is damaged (its contents hash to "
                f"{found[:19]}..., it was written as {str(recorded)[:19]}...)"
            )
    elif not (isinstance(version, int) and version < 2):  # files before checksums load
        raise CheckpointError(f"{path}: no checksum recorded: the file is damaged")
    return payload


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> TRMModel:
    """Rebuild the model stored in one of our checkpoints (in eval mode)."""
    return model_from_payload(read_checkpoint(path), path, device, registry, config_overrides)


def model_from_payload(
    payload: Mapping[str, Any],
    path: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> TRMModel:
    """The model of an already read checkpoint ``payload`` (``path`` names it in errors)."""
    config_data = {**payload["model_config"], **(config_overrides or {})}
    config = structure(ModelConfig, config_data, where=f"{path}: model")
    model = TRMModel(config, registry, device)
    state = payload["model"]
    expected = {key: value.shape for key, value in model.state_dict().items()}
    check_state(expected, state, f"checkpoint {path}")
    _load_into(model, state)
    return model.to(resolve_device(device)).eval()


# -- the reference code's checkpoints ---------------------------------------------

#: Reference architecture keys -> our ModelConfig fields.
REFERENCE_OPTIONS = {
    "hidden_size": "hidden_size",
    "num_heads": "num_heads",
    "expansion": "expansion",
    "H_cycles": "cycles",
    "L_cycles": "think_steps",
    "L_layers": "num_layers",
    "pos_encodings": "positions",
    "seq_len": "seq_len",
    "vocab_size": "vocab_size",
    "num_puzzle_identifiers": "num_puzzle_identifiers",
    "puzzle_emb_ndim": "puzzle_emb_dim",
    "puzzle_emb_len": "puzzle_emb_len",
    "halt_max_steps": "halt_max_steps",
    "halt_exploration_prob": "halt_exploration_prob",
    "forward_dtype": "dtype",
    "rms_norm_eps": "rms_norm_eps",
    "rope_theta": "rope_theta",
}
#: Keys of the reference's architecture config that do not change the network.
REFERENCE_IGNORED = ("name", "loss", "batch_size", "H_layers", "causal")
#: Defaults of the reference's architecture config (arch/trm.yaml) for what shapes cannot say.
REFERENCE_DEFAULTS = {
    "num_heads": 8,
    "H_cycles": 3,
    "L_cycles": 6,
    "puzzle_emb_len": 16,
    "halt_max_steps": 16,
    "halt_exploration_prob": 0.1,
    "forward_dtype": "float32",  # the reference trains in bfloat16; parity is checked in float32
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
}
_PREFIXES = ("_orig_mod.", "model.", "inner.")
#: The reference's own keys (what its shapes are read from).
_REFERENCE_KEY = re.compile(
    r"[HL]_init|embed_tokens\.embedding_weight|embed_pos\.embedding_weight|puzzle_emb\.weights"
    r"|lm_head\.weight|q_head\.(weight|bias)"
    r"|L_level\.layers\.\d+\.(mlp|mlp_t)\.(gate_up_proj|down_proj)\.weight"
    r"|L_level\.layers\.\d+\.self_attn\.(qkv_proj|o_proj)\.weight"
)


def strip_reference_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop ``_orig_mod.`` (compiled) and ``model.inner.`` from every key."""
    stripped = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        stripped[key] = value
    return stripped


def _infer_expansion(state: Mapping[str, Tensor], requested: float | None) -> float:
    widths = []  # (feature width, hidden width) of every SwiGLU in the file
    for key, value in state.items():
        if key.endswith("gate_up_proj.weight"):
            widths.append((value.shape[1], value.shape[0] // 2))
    candidates = [requested] if requested is not None else [4.0] + [k / 4 for k in range(1, 65)]
    for expansion in candidates:
        if all(swiglu_width(width, expansion) == inter for width, inter in widths):
            return float(expansion)
    if requested is not None:
        return float(requested)  # the shape check will report the mismatch key by key
    raise ConfigError(f"cannot infer expansion from the SwiGLU widths {widths}; pass expansion=...")


def reference_config(
    state: Mapping[str, Tensor],
    options: Mapping[str, Any],
    registry: Registry | None = None,
) -> ModelConfig:
    """Our ModelConfig for a (prefix-stripped) reference state dict and reference options.

    What the weights' shapes determine is inferred; ``options`` (the reference's
    own keys) fill in or override the rest.
    """
    registry = registry or get_registry()
    valid = set(REFERENCE_OPTIONS) | set(REFERENCE_IGNORED) | {"mlp_t", "no_ACT_continue"}
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise ConfigError(
            "; ".join(f"unknown reference option {k!r}{suggest(k, valid)}" for k in unknown)
            + f". Valid options: {', '.join(sorted(valid))}"
        )
    if not options.get("no_ACT_continue", True):
        raise ConfigError(
            "no_ACT_continue=False (Q-learning of a continue logit) is not supported: "
            "trm implements the paper recipe, which halts on the halt logit alone"
        )
    opts = {**REFERENCE_DEFAULTS, **options}

    if "embed_tokens.embedding_weight" not in state:
        raise CheckpointError(
            "missing key embed_tokens.embedding_weight: this is not a reference TRM state dict"
        )
    for key, value in state.items():  # before any shape is read from them
        if not _REFERENCE_KEY.fullmatch(key):
            continue  # not the reference's: named as unexpected when the weights load
        rank = 1 if key.endswith(("_init", "bias")) else 2
        if value.ndim != rank:
            raise CheckpointError(
                f"{key} has shape {list(value.shape)} where a {rank}-D tensor belongs: not a "
                "reference TRM state dict, or a damaged one"
            )
    vocab, hidden = state["embed_tokens.embedding_weight"].shape
    opts.setdefault("vocab_size", vocab)
    opts.setdefault("hidden_size", hidden)
    if "puzzle_emb.weights" in state:
        num_ids, emb_dim = state["puzzle_emb.weights"].shape
        opts.setdefault("num_puzzle_identifiers", num_ids)
        opts.setdefault("puzzle_emb_ndim", emb_dim)
    else:
        opts.setdefault("num_puzzle_identifiers", 1)
        opts.setdefault("puzzle_emb_ndim", 0)
    layers = {int(k.split(".")[2]) for k in state if k.startswith("L_level.layers.")}
    opts.setdefault("L_layers", max(layers) + 1 if layers else 2)
    has_mlp_t = any(".mlp_t." in key for key in state)
    opts.setdefault("mlp_t", has_mlp_t)
    opts.setdefault("pos_encodings", "learned" if "embed_pos.embedding_weight" in state else "rope")
    prefix = opts["puzzle_emb_len"] if opts["puzzle_emb_ndim"] else 0
    if "seq_len" not in opts:
        if "embed_pos.embedding_weight" in state:
            opts["seq_len"] = state["embed_pos.embedding_weight"].shape[0] - prefix
        elif has_mlp_t:
            first = next(k for k in sorted(state) if k.endswith(".mlp_t.gate_up_proj.weight"))
            opts["seq_len"] = state[first].shape[1] - prefix
        else:
            raise ConfigError("seq_len cannot be inferred from this checkpoint; pass seq_len=...")
    opts["expansion"] = _infer_expansion(state, options.get("expansion"))

    # The reference's mlp_t flag selects the token mixer: find the registered twin,
    # preferring one whose reference sub-module name appears in the file.
    mixers = [e for e in registry.entries("mixer") if e.obj.reference_mlp_t == bool(opts["mlp_t"])]
    mixers.sort(key=lambda e: not any(f".{e.obj.reference_prefix}." in key for key in state))
    if not mixers:
        raise ConfigError(
            f"no installed mixer corresponds to the reference's mlp_t={opts['mlp_t']}"
        )
    fields = {ours: opts[ref] for ref, ours in REFERENCE_OPTIONS.items() if ref in opts}
    # What the reference keeps at model level are options of our components now: its
    # rotary/learned positions are the grid encoder's, its head count the attention
    # mixer's. mlp_t blocks never read the rotary tables, so rope there is no positions.
    mixer = mixers[0]
    grid = {"positions": fields.pop("positions"), "rope_theta": fields.pop("rope_theta")}
    if grid["positions"] == "rope" and opts["mlp_t"]:
        grid["positions"] = "none"
    options = {"grid": grid}  # the reference's embedding twin is the grid encoder
    heads = fields.pop("num_heads")
    mixer_options = getattr(mixer.obj, "Options", None)
    if mixer_options is not None and "num_heads" in attrs.fields_dict(mixer_options):
        options[mixer.name] = {"num_heads": heads}
    return structure(
        ModelConfig, {**fields, "mixer": mixer.name, "options": options}, where="model"
    )


def load_reference_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
    **model_options: Any,
) -> TRMModel:
    """Load a checkpoint written by the reference TRM code into our model (eval mode).

    Args:
        path: a ``torch.save``d reference state dict, keys with or without the
            ``_orig_mod.`` prefix of a compiled model.
        device: where to put the model (default CPU; "auto" picks CUDA if present).
        registry: the plugin registry to build from (default: the process one).
        **model_options: the reference's architecture keys (``hidden_size``,
            ``H_cycles``, ``L_cycles``, ``mlp_t``, ``pos_encodings``, ...);
            what the weights' shapes determine may be left out.

    Returns:
        A TRMModel in eval mode; ``model.initial_carry(batch)`` and
        ``carry, out = model(carry, batch)`` then reproduce the reference.
    """
    raw = _torch_load(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        raise CheckpointError(f"{path} is already a trm checkpoint: use trm_core.load_checkpoint")
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise CheckpointError(f"{path}: a reference checkpoint is a state dict of tensors")
    state = strip_reference_prefix(raw)
    model = TRMModel(reference_config(state, model_options, registry), registry, device)
    load_reference_state(model, state, what=f"reference checkpoint {path}")
    return model.to(resolve_device(device)).eval()


def load_reference_state(model: TRMModel, state: Mapping[str, Tensor], what: str) -> None:
    """Copy a prefix-stripped reference state dict into ``model``, checking key by key."""
    mapping = model.reference_keys()  # ours -> reference
    ours = model.state_dict()
    unmapped = [key for key in ours if key not in mapping]
    if unmapped:
        raise CheckpointError(
            f"the model's components {model.components} have no reference twin for: "
            + ", ".join(unmapped)
        )
    expected = {mapping[key]: value.shape for key, value in ours.items()}
    check_state(expected, state, what)
    _load_into(model, {key: state[mapping[key]] for key in ours})
