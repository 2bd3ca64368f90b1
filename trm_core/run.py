"""What ``trm-run`` and ``trm-eval`` do before training or evaluating: resolve the config,
validate it once, build the data once, make the run folder.

Config layers, later wins: the task's preset, ``--config FILE``, ``--mixer``,
then each ``--set dotted.key=value``. A preset may hold a ``by_mixer`` section
({mixer name: overrides}) applied when that mixer is chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
import yaml

from .config import (
    ConfigError,
    RunConfig,
    apply_override,
    build_run_config,
    check_sections,
    merge,
    suggest,
    unstructure,
)
from .data import DataError, RunData
from .devices import auto_device, describe_os_error
from .distributed import World
from .files import atomic_write_text
from .interfaces import Strategy, Task
from .model import check_components
from .monitor import doing
from .registry import Registry, get_registry
from .strategies import make_strategy
from .taskkit import task_data_version


def default_preset(presets: Mapping[str, Any], mixer: str | None, cuda: bool) -> tuple[str, str]:
    """(preset name, why): ``cpu`` without CUDA, else the paper's preset for the mixer."""
    if not cuda and "cpu" in presets:
        return "cpu", "the default off CUDA"
    for name in (f"paper-{mixer}" if mixer else None, "paper"):
        if name in presets:
            return name, "the default on a CUDA device"
    first = next(iter(presets))
    return first, "the task's first preset"


def resolve(
    task_name: str,
    *,
    mixer: str | None = None,
    preset: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    cuda: bool | None = None,
    registry: Registry | None = None,
) -> tuple[dict[str, Any], Task, str]:
    """The merged config mapping (unvalidated), the task, and a line saying what was chosen.

    Without ``preset`` the task's default is chosen for the device: ``cuda`` says
    whether the run is on CUDA (None: whether this machine has CUDA).
    """
    registry = registry or get_registry()
    task: Task = registry.get("task", task_name)()
    presets = task.presets()
    cuda = auto_device().type == "cuda" if cuda is None else cuda
    why = "chosen with --preset"
    if preset is None:
        preset, why = default_preset(presets, mixer, cuda)
    if preset not in presets:
        raise ConfigError(
            f"task {task_name!r} has no preset {preset!r}{suggest(preset, presets)}; "
            f"presets: {', '.join(presets)}"
        )
    mapping = merge({}, presets[preset])
    if config_file is not None:
        path = Path(config_file)
        loaded = read_yaml(path, "config file")
        check_sections(loaded, str(path))
        mapping = merge(mapping, loaded)
    by_mixer = mapping.pop("by_mixer", {}) or {}
    if mixer is not None:
        mapping = merge(mapping, {"model": {"mixer": mixer}})
    chosen_mixer = mapping.get("model", {}).get("mixer")
    if chosen_mixer in by_mixer:
        mapping = merge(mapping, by_mixer[chosen_mixer])
    for assignment in overrides:
        mapping = apply_override(mapping, assignment)
    check_sections(mapping, "the merged config")
    mapping["task"], mapping["preset"] = task_name, preset
    return mapping, task, f"preset {preset} ({why})"


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document of ``path``; a missing, unreadable, non-UTF-8 or malformed file
    is a ConfigError naming the file (and the line, for YAML's own errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: the {what} is not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{line}: the {what} is not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{path}: the {what} is nested too deeply to read") from None


def device_setting(device: str | None, overrides: Sequence[str]) -> str | None:
    """The device a run asks for: ``--device``, else the last ``--set device=...`` (the
    one that wins when the overrides are applied)."""
    if device is not None:
        return device
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        if sep and key.strip() == "device":
            try:
                device = yaml.safe_load(value)
            except yaml.YAMLError:
                device = value  # apply_override reports it
    return None if device is None else str(device)


def data_dir_for(
    task_name: str,
    options: Mapping[str, Any],
    cache_dir: str | None,
    *,
    version: str,
    sources: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """A cache folder per (task, data options, data version): ``<base>/<task>-<key>``.

    The same options reuse the same data, as long as the task's data version is
    the same. ``version`` is :func:`trm_core.taskkit.task_data_version` of the
    task: the task class's ``data_version`` attribute when it sets one, else the
    version of the distribution the task comes from, so data built by another
    release of a plugin (an older generator, say) is never reused silently.
    ``sources`` (:func:`source_identities`) are the user's files the data are built
    from: each one's resolved path, size, modification time and content hash join the
    key, so that data built from a file are never reused once it is edited, replaced
    or deleted, and two projects' ``train.txt`` are two caches. Generated data (no
    sources) stay keyed on their options alone.
    ``<base>`` is ``cache_dir``, else ``$TRM_DATA_DIR``, else ``~/.cache/trm/data``;
    ``<key>`` is the first 12 hex digits of the SHA-256 of these as JSON.
    """
    base = Path(cache_dir or os.environ.get("TRM_DATA_DIR") or Path.home() / ".cache/trm/data")
    keyed: dict[str, Any] = {"task": task_name, "options": options, "data_version": version}
    if sources:
        keyed["sources"] = list(sources)
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return base.expanduser() / f"{task_name}-{key}"


#: A string option that looks like a file name (``train.csv``): a path even when absent.
_FILE_NAME = re.compile(r".+\.[A-Za-z][A-Za-z0-9]{0,7}")


def _path_options(options: Any) -> list[Path]:
    """Every string among ``options`` (nested) that names an existing file or folder, or
    looks like a path or a file name: what a task without ``source_files`` reads."""
    found: list[Path] = []
    if isinstance(options, Mapping):
        for value in options.values():
            found += _path_options(value)
    elif isinstance(options, list | tuple):
        for value in options:
            found += _path_options(value)
    elif isinstance(options, str) and options.strip() and "\n" not in options:
        path = Path(options).expanduser()
        if os.sep in options or _FILE_NAME.fullmatch(path.name) or path.exists():
            found.append(path)
    return found


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_identities(task: Task, options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The identity of each user file the task's data are built from (``Task.source_files``,
    else :func:`_path_options`): resolved path, and for a file its size, modification
    time and SHA-256; a folder or a missing path by its resolved path alone."""
    paths = task.source_files(options) if task.supports("source_files") else _path_options(options)
    identities = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        identity: dict[str, Any] = {"path": str(path)}
        try:
            if path.is_file():
                stat = path.stat()
                identity.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=_digest(path))
            else:
                identity["kind"] = "folder" if path.is_dir() else "missing"
        except OSError as error:  # unreadable: the build will say so; key it as such
            identity["kind"] = f"unreadable ({error.strerror or error})"
        identities.append(identity)
    return identities


def validate(
    mapping: Mapping[str, Any], task: Task, registry: Registry | None = None
) -> tuple[RunConfig, tuple[str, Strategy] | None]:
    """The run config of a merged mapping, every value checked once, before any data is
    built: every key and value (with the task's sizes), the model's components and
    their options, the final strategy (returned, made), the loggers' options, the
    task's data options and the capabilities they need. Raises ConfigError naming the
    key."""
    registry = registry or get_registry()
    where = f"task {mapping.get('task')} preset {mapping.get('preset', 'custom')}"
    config = build_run_config(merge(mapping, {"model": _sizes(task)}), where=where)
    check_components(config.model, registry, sizes_known=False)
    strategy = None
    if config.strategy.get("name"):
        strategy = make_strategy(config.strategy, registry)
    elif config.strategy:  # options of no strategy: a forgotten name, never ignored
        raise ConfigError(
            f"strategy.{sorted(config.strategy)[0]} is set but strategy.name is not (the final "
            "evaluation's strategy is off without a name); set strategy.name, one of: "
            + ", ".join(registry.names("strategy"))
        )
    for name, section in config.loggers.items():
        if section is not None:
            registry.get("logger", name).options_from(name, section)
    task.configure(dict(config.data.options))
    check_task_capabilities(task, config.task, config.data.augmentations)
    sizes = _sizes(task)  # a task's sizes may follow its options (a maze's side)
    given = mapping.get("model")
    for key, value in sizes.items():
        if isinstance(given, Mapping) and given.get(key, value) != value:
            raise ConfigError(f"model.{key} is {given[key]} but the task's data needs {value}")
    config = attrs.evolve(config, model=attrs.evolve(config.model, **sizes))
    return config, strategy


def _sizes(task: Task) -> dict[str, int]:
    return {"vocab_size": task.vocab_size, "seq_len": task.seq_len}


def build_data(config: RunConfig, task: Task, world: World, log=print) -> RunData:
    """Build (or reuse) the task's data in its cache folder (rank 0; the other ranks
    wait) and read its splits, once."""
    options = config.data.options
    target = data_dir_for(
        config.task,
        options,
        config.data.cache_dir,
        version=task_data_version(task),
        sources=source_identities(task, options),
    )
    if world.is_main:
        started = time.monotonic()
        try:
            with doing(f"building the {config.task} data in {target}; nothing half-built is kept"):
                built = Path(task.build_dataset(dict(options), target))
        except OSError as error:  # the cache folder: not writable, a full disk, ...
            raise DataError(
                f"cannot build the {config.task} data in {target}: "
                f"{describe_os_error(error)}; nothing half-built was kept "
                "(set data.cache_dir or $TRM_DATA_DIR to a writable folder)"
            ) from None
        if built != target:
            raise ConfigError(f"task {config.task!r} built its data in {built}, not {target}")
        log(f"data: {target} ({time.monotonic() - started:.1f}s)")
    if world.distributed:
        torch.distributed.barrier()  # the other ranks wait for rank 0's data
    return RunData.read(target, task)


def sized(config: RunConfig, data: RunData, mapping: Mapping[str, Any] | None = None) -> RunConfig:
    """``config`` with the puzzle-embedding rows its data needs (``mapping``: what was
    given, refused when it set another number)."""
    needed = data.num_puzzle_identifiers
    given = (mapping or {}).get("model") or {}
    if given.get("num_puzzle_identifiers", needed) != needed:
        raise ConfigError(
            f"model.num_puzzle_identifiers is {given['num_puzzle_identifiers']} but the "
            f"task's data needs {needed}"
        )
    return attrs.evolve(config, model=attrs.evolve(config.model, num_puzzle_identifiers=needed))


def prepare(mapping: dict[str, Any], task: Task, world: World, log=print) -> tuple[RunConfig, Path]:
    """Validate a merged mapping, build (or reuse) the task's data and size the model
    from it: the run config and the data folder."""
    config, _ = validate(mapping, task)
    data = build_data(config, task, world, log)
    return sized(config, data, mapping), data.folder


def check_task_capabilities(task: Task, task_name: str, augmentations: int) -> None:
    """Refuse a data section that needs an optional capability the task lacks (before
    any data is built)."""
    augments = task.supports("augment") or type(task).training_example is not Task.training_example
    if augmentations and not augments:
        raise ConfigError(
            f"data.augmentations is {augmentations}, but the task {task_name!r} "
            "has no augmentations (it does not implement Task.augment); set "
            "data.augmentations=0"
        )


def new_run_dir(out: str | os.PathLike, config: RunConfig) -> Path:
    """``out/<task>-<mixer>-<time>``, never an existing folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(out) / f"{config.task}-{config.model.mixer}-{stamp}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        path, n = base, 1
        while True:  # mkdir claims the name, so two runs started together never share one
            try:
                path.mkdir()
                return path
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")
    except OSError as error:
        raise ConfigError(
            f"--out {out}: cannot make the run folder: {describe_os_error(error)}"
        ) from None


def write_config(run_dir: Path, config: RunConfig, plugins: list[dict[str, str]]) -> Path:
    """The resolved config as YAML (re-runnable with --config), plugins recorded beside."""
    body = unstructure(config)
    body["plugins"] = [
        {k: p[k] for k in ("kind", "name", "distribution", "version")} for p in plugins
    ]
    header = "# Fully resolved trm run config; `trm-run --task T --config this-file` re-runs it.\n"
    return atomic_write_text(
        run_dir / "config.yaml", header + yaml.safe_dump(body, sort_keys=False)
    )


def read_config(run_dir: Path) -> RunConfig:
    """The RunConfig of an existing run folder."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml)")
    return build_run_config(read_yaml(path, "run's config"), where=str(path))


#: What may change in a run's config.yaml between its checkpoint and ``--resume``:
#: where and how it runs, logging and evaluation; nothing the checkpoint computed
#: (model, data, batch, augmentations, schedule, seed, EMA, loss).
RESUMABLE = (
    "device",
    "data.cache_dir",
    "train.compile",
    "train.prefetch",
    "train.log_interval",
    "eval",
    "strategy",
    "loggers",
)


def resume_changes(now: Mapping[str, Any], then: Mapping[str, Any]) -> list[str]:
    """The keys of a run's config that differ from its checkpoint's (``key old -> new``),
    leaving out :data:`RESUMABLE`."""
    from .monitor import flatten

    flat_now, flat_then = flatten(now), flatten(then)
    changed = []
    for key in sorted(set(flat_now) | set(flat_then)):
        if any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE):
            continue
        old, new = flat_then.get(key, "(absent)"), flat_now.get(key, "(absent)")
        if old != new:
            changed.append(f"{key} {old!r} -> {new!r}")
    return changed


def start_over(run_dir: Path, task: str) -> str:
    """How to start a run folder's config over, in a new run folder (nothing is lost)."""
    return f"trm-run --task {task} --config {Path(run_dir) / 'config.yaml'}"
