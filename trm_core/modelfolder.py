"""The model folder: a trained model as three files anyone can share, load and read.

::

    model.safetensors   the weights the run evaluates with (EMA when kept), float32
                        or bfloat16; the puzzle-embedding rows kept (see below); the
                        task's own state (Task.export_state's arrays)
    config.json         the model config, the task and its data options, the rest of
                        the run's recipe, the components with their distributions and
                        versions, the plugin contract, the final metrics, a SHA-256 of
                        model.safetensors
    README.md           a model card with Hugging Face front matter

Nothing in it is unpickled: safetensors holds only tensors, and the rest is JSON
and text, so a folder downloaded from a stranger executes nothing when loaded.
It is written atomically (built in a hidden folder beside the target, then
renamed into place) and read without writing anything.

Puzzle embeddings: a model learns one row per puzzle identifier. Tasks with few
identifiers (Sudoku and Maze share one) keep them all. A large table (ARC learns
one row per task and augmentation: about 1.9 GB for the paper's recipe) keeps
only the rows of the identifiers its evaluation splits use (the test set's tasks
under their augmentations) and the blank identifier 0, unless every row is asked
for; the identifiers kept are stored beside the rows, and any other identifier
reads the blank row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .checkpoint import check_state
from .errors import ModelFolderError
from .files import staged_folder, write_synced
from .hookspecs import PLUGIN_CONTRACT

try:
    import fcntl
except ImportError:  # Windows: a staging folder in use cannot be removed anyway
    fcntl = None

FORMAT = "trm-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
#: What config.json must hold (the rest is optional).
REQUIRED = ("format", "format_version", "trm_core", "plugin_contract", "task", "model", "run",
            "components", "weights")  # fmt: skip
#: A puzzle-embedding table with at most this many identifiers is kept whole.
KEEP_ALL_UP_TO = 4096
#: Suffix of the tensor naming the identifiers whose rows a table keeps.
IDENTIFIERS = "@identifiers"
#: Prefix of the task's own arrays (``Task.export_state``) in model.safetensors.
TASK_STATE = "task_state."
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
#: A staging folder whose lock cannot be tested is left this long.
_UNLOCKED_AGE = 3600.0


# -- reading ------------------------------------------------------------------------


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file() and not (path / "config.yaml").exists()


def read_manifest(folder: Path) -> dict[str, Any]:
    """config.json, checked: the format, a trm-core and contract this one understands,
    every required key."""
    from . import __version__

    path = folder / CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ModelFolderError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ModelFolderError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        manifest = json.loads(text)
    except ValueError as error:
        raise ModelFolderError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise ModelFolderError(f"{path}: nested too deeply to read") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: not a trm model folder's config (no format {FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFolderError(f"{path}: format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: model folder format {version} is newer than this trm-core "
            f"({__version__}) reads ({FORMAT_VERSION}); upgrade trm-core"
        )
    writer = manifest.get("trm_core")
    if isinstance(writer, str) and _newer(writer, __version__):
        raise ModelFolderError(
            f"{path}: written by trm-core {writer}, newer than the installed {__version__}; "
            "upgrade trm-core (pip install -U trm-core)"
        )
    contract = manifest.get("plugin_contract")
    if isinstance(contract, int) and not isinstance(contract, bool) and contract > PLUGIN_CONTRACT:
        raise ModelFolderError(
            f"{path}: the model needs plugin contract {contract}; trm-core {__version__} "
            f"implements {PLUGIN_CONTRACT}: upgrade trm-core"
        )
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise ModelFolderError(f"{path}: missing key(s) {', '.join(missing)}")
    for key in ("model", "run", "components", "weights"):
        if not isinstance(manifest[key], dict):
            raise ModelFolderError(f"{path}: {key} must be a mapping, got {manifest[key]!r}")
    if not isinstance(manifest["task"], str) or not manifest["task"]:
        raise ModelFolderError(f"{path}: task must be a task name, got {manifest['task']!r}")
    return manifest


def _newer(writer: str, installed: str) -> bool:
    """Whether ``writer``'s release series (major.minor) is after the installed one's
    (patch releases never change what a folder holds)."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(writer).release[:2] > Version(installed).release[:2]
    except InvalidVersion:
        return False


def read_weights(folder: Path, manifest: Mapping[str, Any]) -> dict[str, Tensor]:
    """model.safetensors, its SHA-256 checked against config.json's (a truncated or
    altered file is named, never loaded)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = folder / WEIGHTS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFolderError(f"{path}: missing") from None
    except OSError as error:
        raise ModelFolderError(f"{path}: cannot read it ({error.strerror or error})") from None
    recorded = manifest["weights"].get("sha256")
    if recorded is not None:
        found = hashlib.sha256(data).hexdigest()
        if found != recorded:
            raise ModelFolderError(
                f"{path}: damaged ({len(data):,} bytes whose SHA-256 is {found[:12]}..., "
                f"config.json records {str(recorded)[:12]}...); download or export it again"
            )
    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFolderError(f"{path}: not a readable safetensors file ({line})") from None


def split_weights(
    tensors: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, np.ndarray]]:
    """(the model's state, the kept identifiers of each puzzle-embedding table, the
    task's arrays) from model.safetensors."""
    state, kept, task = {}, {}, {}
    for key, value in tensors.items():
        if key.startswith(TASK_STATE):
            task[key.removeprefix(TASK_STATE)] = value.numpy()
        elif key.endswith(IDENTIFIERS):
            kept[key.removesuffix(IDENTIFIERS)] = value
        else:
            state[key] = value
    return state, kept, task


def load_weights(model: torch.nn.Module, folder: Path, state: Mapping[str, Tensor],
                 kept: Mapping[str, Tensor]) -> None:  # fmt: skip
    """Copy the folder's weights into ``model`` (float32 parameters, whatever the file's
    dtype), tables with rows dropped made compact; every missing, unexpected or
    mis-shaped key listed."""
    from .layers import PuzzleEmbedding

    tables = {
        f"{name}.weights": module
        for name, module in model.named_modules()
        if isinstance(module, PuzzleEmbedding)
    }
    expected = {key: value.shape for key, value in model.state_dict().items()}
    for key, identifiers in kept.items():
        table = tables.get(key)
        if table is None or key not in state:
            raise ModelFolderError(
                f"{folder / WEIGHTS}: {key}{IDENTIFIERS} names no puzzle-embedding table "
                "of the model"
            )
        rows = state[key]
        if identifiers.ndim != 1 or rows.ndim != 2 or len(identifiers) != len(rows):
            raise ModelFolderError(
                f"{folder / WEIGHTS}: {key} holds {list(rows.shape)} rows for "
                f"{list(identifiers.shape)} identifiers"
            )
        expected[key] = torch.Size([len(rows), expected[key][1]])
    check_state(expected, state, f"{folder / WEIGHTS}")
    with torch.no_grad():
        for key, identifiers in kept.items():
            try:
                tables[key].keep_rows(identifiers, state[key].to(torch.float32))
            except ValueError as error:
                raise ModelFolderError(f"{folder / WEIGHTS}: {key}: {error}") from None
        for key, target in model.state_dict().items():
            if key not in kept and not key.endswith(".lookup"):
                target.copy_(state[key].to(target.dtype))


# -- writing ------------------------------------------------------------------------


def embedding_tables(model: torch.nn.Module) -> dict[str, Any]:
    """{state key: PuzzleEmbedding} of every puzzle-embedding table in ``model``."""
    from .layers import PuzzleEmbedding

    return {
        f"{name}.weights": module
        for name, module in model.named_modules()
        if isinstance(module, PuzzleEmbedding)
    }


def weights_to_write(
    model: torch.nn.Module,
    dtype: str,
    keep: Mapping[str, np.ndarray | None],
    task_state: Mapping[str, Any],
) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """The tensors of model.safetensors, the JSON part of the task's state, and what
    each puzzle-embedding table keeps (``keep``: {table key: identifiers to keep, or
    None for all})."""
    target = DTYPES[dtype]
    tables = embedding_tables(model)
    tensors: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        if key.endswith(".lookup") and key.removesuffix(".lookup") + ".weights" in tables:
            continue  # a compact table: written from its kept rows below
        if key in tables:
            continue
        value = value.detach().cpu()
        tensors[key] = value.to(target) if value.is_floating_point() else value.clone()
    kept_info = {}
    for key, table in tables.items():
        identifiers, rows = table.kept()
        identifiers, rows = identifiers.cpu(), rows.detach().cpu()
        wanted = keep.get(key)
        if wanted is not None:
            wanted = np.union1d(np.asarray(wanted, dtype=np.int64), [0])
            mask = np.isin(identifiers.numpy(), wanted)
            identifiers, rows = identifiers[torch.from_numpy(mask)], rows[torch.from_numpy(mask)]
        tensors[key] = rows.to(target).contiguous()
        if len(identifiers) < table.num:
            tensors[key + IDENTIFIERS] = identifiers.to(torch.int64).contiguous()
        kept_info[key] = {"identifiers": table.num, "rows_kept": len(identifiers)}
    json_state = {}
    for name, value in task_state.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ModelFolderError(f"Task.export_state: {name!r} is not a plain name")
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise ModelFolderError(
                    f"Task.export_state: {name} is a {value.dtype} array; only numbers and "
                    "booleans go into model.safetensors (JSON values go into config.json)"
                )
            tensors[TASK_STATE + name] = torch.from_numpy(np.ascontiguousarray(value))
        else:
            try:
                json.dumps(value)
            except (TypeError, ValueError) as error:
                raise ModelFolderError(
                    f"Task.export_state: {name} is neither an array nor JSON ({error})"
                ) from None
            json_state[name] = value
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelFolderError(
                f"the weights hold non-finite values at {key}: refusing to write them"
            )
    return tensors, json_state, kept_info


def write_folder(
    out: Path,
    tensors: Mapping[str, Tensor],
    manifest: dict[str, Any],
    card: Callable[[dict[str, Any]], str],
    force: bool,
) -> Path:
    """Write the weights, ``manifest`` (given the weights' SHA-256 and size) and
    ``card(manifest)`` into a hidden staging folder beside ``out``, then rename it
    into place (``force``: replacing an existing ``out`` in one step); a killed write
    leaves no half-written ``out``, and its staging folder is removed by the next write."""
    from safetensors.torch import save

    out = Path(out)
    if out.exists() and not force:
        raise ModelFolderError(f"{out} exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise ModelFolderError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_model_folder(out):
        raise ModelFolderError(
            f"{out} is a folder that is not a model folder; refusing to replace it"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(out.parent)) from None
    data = save(dict(tensors), metadata={"format": "pt", "trm": FORMAT})
    manifest["weights"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest["weights"]["bytes"] = len(data)
    with staged_folder(out, "export") as staging:
        write_synced(staging / WEIGHTS, data)
        write_synced(staging / CONFIG, (json.dumps(manifest, indent=2) + "\n").encode())
        write_synced(staging / CARD, card(manifest).encode())
    return out


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in Path(folder).iterdir() if path.is_file())


def check_export_target(out: Path, force: bool) -> None:
    """Refuse a target that exists (without ``force``) before any work is done."""
    if out.exists() and not force:
        raise ModelFolderError(f"{out} exists; pass --force to replace it")
