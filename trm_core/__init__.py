"""trm: Tiny Recursive Models, a plugin-based engine for recursive reasoning on grid puzzles.

This module is the public API: plugins import only from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    load_reference_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .config import (
    ConfigError,
    ModelConfig,
    RunConfig,
    non_negative,
    one_of,
    positive,
    structure,
)
from .data import DataError, Split, csv_rows, hub_file, mix_seed, read_split, write_split
from .evaluate import unroll
from .hookspecs import PLUGIN_CONTRACT, hookimpl, hookspec
from .inference import LoadedRun, load_run
from .interfaces import (
    CAPABILITIES,
    Component,
    Encoder,
    HaltingHead,
    Mixer,
    Rotary,
    Task,
    ThinkActCore,
)
from .layers import (
    Block,
    CastedEmbedding,
    CastedLinear,
    PuzzleEmbedding,
    ReasoningNet,
    SwiGLU,
    apply_rotary,
    rms_norm,
    rotary_tables,
    swiglu_width,
    trunc_normal_,
)
from .model import Carry, TRMModel, build_model, check_components
from .registry import (
    PluginError,
    Registry,
    UnknownPluginError,
    get_registry,
    use_registry,
)
from .taskkit import (
    DIHEDRAL_NAMES,
    INVERSE_DIHEDRAL,
    PAPER_BATCH,
    SourceOptions,
    build_once,
    cpu_recipe,
    dihedral,
    dihedral_flat,
    dihedral_permutation,
    inverse_dihedral,
    paper_recipe,
    paper_steps,
    say,
    subsample,
    task_data_version,
)

try:
    __version__ = version("trm-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CAPABILITIES",
    "DIHEDRAL_NAMES",
    "INVERSE_DIHEDRAL",
    "PAPER_BATCH",
    "PLUGIN_CONTRACT",
    "Block",
    "Carry",
    "CastedEmbedding",
    "CastedLinear",
    "CheckpointError",
    "Component",
    "ConfigError",
    "DataError",
    "Encoder",
    "HaltingHead",
    "LoadedRun",
    "Mixer",
    "ModelConfig",
    "PluginError",
    "PuzzleEmbedding",
    "ReasoningNet",
    "Registry",
    "Rotary",
    "RunConfig",
    "SourceOptions",
    "Split",
    "SwiGLU",
    "TRMModel",
    "Task",
    "ThinkActCore",
    "UnknownPluginError",
    "__version__",
    "apply_rotary",
    "atomic_write_text",
    "build_model",
    "build_once",
    "check_components",
    "cpu_recipe",
    "csv_rows",
    "dihedral",
    "dihedral_flat",
    "dihedral_permutation",
    "get_registry",
    "hookimpl",
    "hookspec",
    "hub_file",
    "inverse_dihedral",
    "load_checkpoint",
    "load_reference_checkpoint",
    "load_run",
    "mix_seed",
    "non_negative",
    "one_of",
    "paper_recipe",
    "paper_steps",
    "positive",
    "read_checkpoint",
    "read_split",
    "rms_norm",
    "rotary_tables",
    "save_checkpoint",
    "say",
    "structure",
    "subsample",
    "swiglu_width",
    "task_data_version",
    "trunc_normal_",
    "unroll",
    "use_registry",
    "write_split",
]
