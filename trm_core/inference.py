"""Using a trained model: load it (read-only), answer new puzzles, evaluate it.

``trm-solve``, ``trm-eval`` and ``trm-export`` build on this, and so can anyone's code::

    loaded = trm_core.load_model("runs/sudoku-mlp-20260101-120000/model")
    predictions, halt_logits = loaded.predict(inputs)  # [N, S] tokens in, [N, S] out
    metrics = loaded.evaluate()  # the test split (and extra splits), as trm-eval reports

:func:`load_model` takes a model folder (``trm-export``'s, or ``RUN/model``), a run
folder, a trm checkpoint file or ``hf://owner/name[@revision]``, and writes nothing
anywhere: it loads from a read-only copy. Loading builds the model alone: no
optimiser, no training sampler.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .checkpoint import (
    CheckpointError,
    check_state,
    model_from_payload,
    read_checkpoint,
)
from .config import ConfigError, RunConfig, build_run_config, unstructure
from .data import DataError, Split, extra_splits, read_split
from .devices import resolve_device
from .distributed import World
from .evaluate import evaluate_named, evaluate_splits, unroll
from .interfaces import COMPONENT_KINDS, Strategy, Task
from .model import TRMModel
from .modelfolder import (
    CONFIG,
    ModelFolderError,
    is_model_folder,
    load_weights,
    read_manifest,
    read_weights,
    split_weights,
)
from .registry import Registry, UnknownPluginError, get_registry
from .run import prepare, read_config
from .strategies import StrategyReport, evaluate_strategy

#: Model sizes the task's data decide (``run.prepare`` fills them in from the data).
DATA_SIZES = ("vocab_size", "seq_len", "num_puzzle_identifiers")
#: The component kinds a model is built from.
COMPONENTS = COMPONENT_KINDS


@attrs.define
class LoadedModel:
    """A trained model with its config and task, ready to predict (eval mode)."""

    source: str  # what was loaded: a folder, a checkpoint file or hf://owner/name
    config: RunConfig  # the run's config: model, task and data options, recipe
    task: Task  # configured with the model's data options (and its exported state)
    model: TRMModel
    step: int  # the training step the weights were saved at
    ema: bool  # whether the weights are the EMA weights
    run_dir: Path | None = None  # the run folder, when loaded from one
    folder: Path | None = None  # the model folder (a Hub model's cached copy)
    #: The final evaluation recorded with the weights: ``metrics`` (and ``strategy``).
    record: dict[str, Any] = attrs.Factory(dict)
    #: What the task's ``export_state`` gave (None: not taken yet, or the task has none).
    task_state: dict[str, Any] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def predict(
        self,
        inputs: np.ndarray,
        puzzle_identifiers: np.ndarray | None = None,
        batch_size: int = 256,
        strategy: Strategy | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Answer puzzles with every supervision step (``halt_max_steps``), as evaluation does.

        Args:
            inputs: [N, S] input tokens (``Task.parse_puzzle`` makes one row).
            puzzle_identifiers: [N]; default the shared identifier 1 (tasks with
                one identifier, such as Sudoku and Maze).
            strategy: answer with this inference strategy instead (its answer at its
                full budget; ``batch_size`` bounds rows per forward pass, and the
                halt logits returned are NaN, since the chosen answer may not have one).

        Returns:
            ``(predictions [N, S] tokens, halt_logits [N])``.
        """
        inputs = np.asarray(inputs, dtype=np.int64)
        if inputs.ndim != 2 or inputs.shape[1] != self.model.config.seq_len:
            raise ValueError(
                f"inputs must be [N, {self.model.config.seq_len}] tokens, got {inputs.shape}"
            )
        if puzzle_identifiers is None:
            puzzle_identifiers = np.ones(len(inputs), dtype=np.int64)
        per_batch = batch_size
        if strategy is not None:
            per_batch = max(1, batch_size // max(1, strategy.rows_per_puzzle()))
        self.model.eval()
        predictions, halts = [], []
        for start in range(0, len(inputs), per_batch):
            batch = {
                "inputs": torch.from_numpy(inputs[start : start + per_batch]).to(self.device),
                "puzzle_identifiers": torch.as_tensor(
                    np.asarray(puzzle_identifiers[start : start + per_batch], dtype=np.int64),
                    device=self.device,
                ),
            }
            if strategy is None:
                with torch.inference_mode():  # strategies keep their contract's no_grad
                    prediction, halt_logits = unroll(self.model, batch)
            else:  # the answer selection at the full budget; it may have no halt logit
                result = strategy.answer(self.model, self.task, batch, start)
                prediction = next(iter(result.by_budget[max(result.by_budget)].values()))
                halt_logits = torch.full((len(prediction),), float("nan"))
            predictions.append(prediction.cpu().numpy())
            halts.append(halt_logits.float().cpu().numpy())
        if not predictions:
            return np.zeros((0, inputs.shape[1]), dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(predictions), np.concatenate(halts)

    def _prepared(self, world, max_examples, early_halting, log, batch_size=None):
        """The run's config for ``world`` and its data folder (built or reused), the
        data checked against the model's sizes."""
        mapping = unstructure(self._eval_config(max_examples, early_halting, batch_size))
        mapping["device"] = str(world.device)
        config, data_dir = prepare(mapping, self.task, world, log=log)
        model_config = self.model.config
        for key in DATA_SIZES:
            if getattr(config.model, key) != getattr(model_config, key):
                raise ConfigError(
                    f"{self.source}: the model has {key} {getattr(model_config, key)} but "
                    f"the task's data need {getattr(config.model, key)}"
                )
        return config, data_dir

    def data_dir(self, log=lambda *args: None) -> Path:
        """The folder of the data the model was trained and evaluated on, built from its
        data options (or reused from the data cache)."""
        return self._prepared(World(device=self.device), None, None, log)[1]

    def read_data(
        self, paths: Iterable[str | os.PathLike], log=lambda *a: None
    ) -> dict[str, Split]:
        """Files of puzzles with their answers, in the task's own formats
        (``Task.read_data``), as splits named after the files; each checked against
        the model (grid size, vocabulary, puzzle identifiers).

        A task whose model keeps state of its data (``Task.export_state``: ARC's task
        identifiers) is given it first: a model folder carries it; for a run folder or
        a checkpoint it is taken from the run's data (built or reused).
        """
        if not self.task.supports("read_data"):
            raise DataError(
                f"the {self.config.task} task cannot read data files (its plugin does not "
                "implement Task.read_data); evaluate its own splits without --data"
            )
        if self.task_state is None and self.task.supports("export_state"):
            self.task_state = self.task.export_state(self.data_dir(log))
            self.task.import_state(self.task_state)
        splits: dict[str, Split] = {}
        for given in paths:
            path = Path(given)
            if str(given) == "":
                raise DataError("--data: an empty file name")
            split = self.task.read_data(path)
            self._check_split(split, path)
            name = _split_name(path, splits)
            splits[name] = split
        return splits

    def _check_split(self, split: Split, path: Path) -> None:
        config = self.model.config
        if split.inputs.ndim != 2 or split.inputs.shape[1] != config.seq_len:
            raise DataError(
                f"{path}: puzzles of {split.inputs.shape[-1]} tokens; the model takes "
                f"{config.seq_len} (its {self.config.task} puzzles are "
                f"{'x'.join(map(str, self.task.grid_shape))})"
            )
        top = int(max(split.inputs.max(initial=0), split.labels.max(initial=0)))
        if top >= config.vocab_size:
            raise DataError(
                f"{path}: token {top} is outside the model's vocabulary of {config.vocab_size}"
            )
        ids = np.asarray(split.puzzle_identifiers)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= config.num_puzzle_identifiers):
            raise DataError(
                f"{path}: puzzle identifier {int(ids.max())} is outside the model's "
                f"{config.num_puzzle_identifiers}"
            )

    def evaluate_strategy(
        self,
        strategy: Strategy,
        world: World | None = None,
        *,
        max_examples: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        splits: list[str] | None = None,
        data: Mapping[str, Split] | None = None,
        log=lambda *args: None,
    ) -> list[StrategyReport]:
        """Accuracy against compute of ``strategy`` on the test split and every extra split,
        or on ``data`` (:meth:`read_data`'s splits) when given.

        Args:
            batch_size: rows per forward pass (default: the run's ``eval.batch_size``).
            splits: only these (``test`` and extra split names, or ``data``'s); default all.

        Returns:
            One report per split on rank 0 (an empty list elsewhere).
        """
        world = World(device=self.device) if world is None else world
        if data is None:
            config, data_dir = self._prepared(world, max_examples, None, log)
            available = {"test": read_split(data_dir / "test", self.task)}
            available.update(extra_splits(data_dir, self.task))
        else:
            config, available = self._eval_config(max_examples, None), dict(data)
        unknown = [name for name in splits or [] if name not in available]
        if unknown:
            raise ConfigError(
                f"{self.source}: no split {', '.join(map(repr, unknown))}; its splits: "
                + ", ".join(available)
            )
        chosen = {name: split for name, split in available.items() if name in (splits or available)}
        reports = []
        for name, split in chosen.items():
            report = evaluate_strategy(
                self.model, self.task, split, strategy, world,
                batch_size=batch_size or config.eval.batch_size,
                max_examples=config.eval.max_examples, seed=seed, name=name,
            )  # fmt: skip
            if report is not None:
                reports.append(report)
        return reports

    def _eval_config(
        self, max_examples: int | None, early_halting: bool | None, batch_size: int | None = None
    ) -> RunConfig:
        """The run's config with the evaluation overrides (no data needed)."""
        mapping = unstructure(self.config)
        for key, value in (("max_examples", max_examples), ("early_halting", early_halting),
                           ("batch_size", batch_size)):  # fmt: skip
            if value is not None:
                mapping["eval"][key] = value
        return build_run_config(mapping, where=self.source)

    def evaluate(
        self,
        world: World | None = None,
        *,
        max_examples: int | None = None,
        early_halting: bool | None = None,
        out_dir: str | os.PathLike | None = None,
        data: Mapping[str, Split] | None = None,
        batch_size: int | None = None,
        log=lambda *args: None,
    ) -> dict[str, Any]:
        """Evaluate these weights as a run's final evaluation does: the test split and
        every extra split, metrics named as in ``metrics.json`` (what ``trm-eval`` prints);
        or, given ``data`` (:meth:`read_data`'s splits), those, each's metrics named
        ``<name>/...``.

        The run's data are built, or reused from its cache, from the model's data
        options (``run.prepare``, as ``trm-run`` made them).

        Args:
            world: under torchrun, the processes share the examples (default: this
                process alone, on the model's device).
            max_examples: evaluate a prefix of each split (default: the run's
                ``eval.max_examples``).
            early_halting: override the run's ``eval.early_halting``.
            batch_size: override the run's ``eval.batch_size`` (rows per forward pass).
            out_dir: where the task writes its outputs (ARC's ``submission.json``; an
                extra split's into ``<name>/``); None writes nothing.
            log: says where the data are (``prepare``'s log line).

        Returns:
            The metrics on rank 0 (``{}`` on the other ranks), with ``seconds``.
        """
        world = World(device=self.device) if world is None else world
        out = None if out_dir is None else Path(out_dir)
        if data is not None:
            config = self._eval_config(max_examples, early_halting, batch_size)
            splits = {f"{name}/": split for name, split in data.items()}
            return evaluate_named(self.model, self.task, splits, config, world, out)[0]
        config, data_dir = self._prepared(world, max_examples, early_halting, log, batch_size)
        test = read_split(data_dir / "test", self.task)
        extra = extra_splits(data_dir, self.task)
        metrics, _ = evaluate_splits(self.model, self.task, test, extra, config, world, out)
        return metrics


#: The old name of :class:`LoadedModel` (what ``load_run`` returned before model folders).
LoadedRun = LoadedModel


def _split_name(path: Path, taken: Mapping[str, Any]) -> str:
    """A split named after its file (``hard.csv`` -> ``hard``), made unique."""
    base = path.name.removesuffix(".json").removesuffix("_challenges") or path.stem
    base = Path(base).stem if base == path.name else base
    name, n = base, 1
    while name in taken or name == "":
        n += 1
        name = f"{base}-{n}"
    return name


# -- loading -------------------------------------------------------------------------


def load_model(
    source: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
) -> LoadedModel:
    """Load a trained model, writing nothing anywhere.

    Args:
        source: a model folder (``trm-export``'s, or ``RUN/model``), a run folder (its
            last checkpoint, EMA weights when kept), a trm checkpoint file written by
            training, or ``hf://owner/name[@revision]`` (needs ``trm-core[hub]``;
            honours ``HF_HUB_OFFLINE`` and the Hub cache).
        device: where the model goes (``auto``: CUDA when available).
        registry: the plugins to build it from (default: the installed ones).

    Returns:
        A :class:`LoadedModel`: config, task and model (eval mode), ``predict``,
        ``evaluate``, ``read_data``.
    """
    device = resolve_device(device)  # a device this machine lacks fails before any reading
    registry = registry or get_registry()
    text = os.fspath(source)
    if text.startswith("hf://"):
        from .hub import download

        return _load_folder(download(text), text, device, registry)
    path = Path(text)
    if text == "":
        raise ModelFolderError("the model to load is an empty name")
    if path.is_dir():
        if (path / "config.yaml").is_file():
            return load_run(path, device, registry)
        if is_model_folder(path):
            return _load_folder(path, text, device, registry)
        raise ModelFolderError(
            f"{path}: neither a model folder ({CONFIG}) nor a run folder (config.yaml)"
        )
    if path.is_file():
        return _load_checkpoint_file(path, device, registry)
    hint = ""
    if not path.is_absolute() and text.count("/") == 1 and not text.startswith("."):
        hint = f"; a model on the Hugging Face Hub is hf://{text}"
    raise ModelFolderError(f"{text}: no such model folder, run folder or checkpoint{hint}")


def _task_for(registry: Registry, name: str, origin: Mapping[str, Any] | None, where: str) -> Task:
    """The installed task ``name``; a missing plugin names the distribution the model
    came with."""
    try:
        return registry.get("task", name)()
    except UnknownPluginError as error:
        raise ModelFolderError(_not_installed("task", name, origin, where, error)) from None


def _not_installed(kind: str, name: str, origin: Mapping[str, Any] | None, where: str,
                   error: Exception) -> str:  # fmt: skip
    if isinstance(origin, Mapping) and origin.get("distribution"):
        dist, version = origin["distribution"], origin.get("version") or ""
        return (
            f"{where}: the model's {kind} {name!r} is not installed; it came from "
            f"{f'{dist} {version}'.strip()} (pip install {dist})"
        )
    return f"{where}: {error}"


def _load_folder(
    folder: Path, source: str, device: torch.device, registry: Registry
) -> LoadedModel:
    manifest = read_manifest(folder)
    where = str(folder / CONFIG)
    components = manifest["components"]
    task = _task_for(registry, manifest["task"], components.get("task"), where)
    mapping = {**manifest["run"], "task": manifest["task"], "model": manifest["model"]}
    config = build_run_config(mapping, where=where)
    for kind in COMPONENTS:
        name = getattr(config.model, kind)
        try:
            registry.entry(kind, name)
        except UnknownPluginError as error:
            raise ModelFolderError(
                _not_installed(kind, name, components.get(kind), where, error)
            ) from None
    task.configure(dict(config.data.options))
    _check_task_sizes(config, task, where)
    state, kept, arrays = split_weights(read_weights(folder, manifest))
    model = TRMModel(config.model, registry, device)
    load_weights(model, folder, state, kept)
    task_state = None
    saved = manifest.get("task_state") or {}
    if saved or arrays:
        if not task.supports("import_state"):
            raise ModelFolderError(
                f"{where}: the model carries state of the {config.task} task, which the "
                "installed task plugin cannot take (no Task.import_state); install the "
                "plugin's release named in the model's components"
            )
        task_state = {**saved, **arrays}
        task.import_state(task_state)
    weights = manifest["weights"]
    record = {key: manifest[key] for key in ("metrics", "strategy") if manifest.get(key)}
    return LoadedModel(
        source, config, task, model.to(device).eval(), int(manifest.get("step") or 0),
        bool(weights.get("ema")), folder=folder, record=record, task_state=task_state,
    )  # fmt: skip


def _check_task_sizes(config: RunConfig, task: Task, where: str) -> None:
    for key, value in (("vocab_size", task.vocab_size), ("seq_len", task.seq_len)):
        if getattr(config.model, key) != value:
            raise ModelFolderError(
                f"{where}: model.{key} is {getattr(config.model, key)}, but the installed "
                f"{config.task} task has {value} with the model's data options"
            )


def _with_ema(model: TRMModel, payload: Mapping[str, Any], path: Path) -> bool:
    """Copy a checkpoint's EMA weights into ``model``; whether it had them."""
    shadows = payload.get("ema")
    if shadows:
        parameters = dict(model.named_parameters())
        check_state(
            {k: parameters[k].shape for k in shadows if k in parameters}, shadows, f"{path} EMA"
        )
        with torch.no_grad():
            for name, value in shadows.items():
                parameters[name].copy_(value)
    return bool(shadows)


def _final_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The last evaluation a run checkpoint recorded (its final one, when finished)."""
    history = payload.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    return {key: last[key] for key in ("metrics", "strategy") if last.get(key)}


def _load_checkpoint_file(path: Path, device: torch.device, registry: Registry) -> LoadedModel:
    payload = read_checkpoint(path)
    if not isinstance(payload.get("run_config"), Mapping):
        raise CheckpointError(
            f"{path}: a bare model checkpoint, with no task or data options; a model that "
            "answers puzzles comes from training (a run folder or its checkpoints/last.pt), "
            "trm-export, or trm-convert --task NAME"
        )
    config = build_run_config(payload["run_config"], where=f"{path}: run_config")
    task = _task_for(registry, config.task, None, str(path))
    task.configure(dict(config.data.options))
    model = model_from_payload(payload, path, device, registry)  # checked key by key
    check_run_model(model, config, task, path, "its run_config")
    ema = _with_ema(model, payload, path)
    return LoadedModel(
        str(path), config, task, model, int(payload.get("step", 0)), ema,
        record=_final_record(payload),
    )  # fmt: skip


def check_run_model(
    model: TRMModel, config: RunConfig, task: Task, path: Path, described: str = "config.yaml"
) -> None:
    """Refuse a checkpoint whose model is not the one its run's config describes, or
    does not fit the task's puzzles (a file copied in from another run)."""
    ours, theirs = unstructure(config.model), unstructure(model.config)
    differ = [
        f"model.{key} {theirs.get(key)!r} in the checkpoint, {value!r} in {described}"
        for key, value in ours.items()
        if key != "dtype" and theirs.get(key) != value
    ]
    for key, value in (("vocab_size", task.vocab_size), ("seq_len", task.seq_len)):
        if getattr(model.config, key) != value:
            differ.append(f"model.{key} {getattr(model.config, key)}, the task's {value}")
    if differ:
        raise CheckpointError(
            f"{path} is not the model of its run's {described} ({'; '.join(differ[:3])}"
            + (f"; and {len(differ) - 3} more" if len(differ) > 3 else "")
            + "); was it copied from another run?"
        )


def load_run(
    run_dir: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
) -> LoadedModel:
    """Load a run folder's last checkpoint, with its EMA weights when it has them
    (:func:`load_model` on a run folder). Writes nothing."""
    device = resolve_device(device)
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    registry = registry or get_registry()
    task = _task_for(registry, config.task, None, str(run_dir / "config.yaml"))
    task.configure(dict(config.data.options))
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint yet ({path} is missing)")
    payload = read_checkpoint(path)
    model = model_from_payload(payload, path, device, registry)  # checked key by key
    check_run_model(model, config, task, path)
    ema = _with_ema(model, payload, path)
    return LoadedModel(
        str(run_dir), config, task, model, int(payload.get("step", 0)), ema,
        run_dir=run_dir, record=_final_record(payload),
    )  # fmt: skip
