"""``trm-export``: a trained model as a model folder to share (``trm_core.modelfolder``).

    trm-export RUN OUT [--dtype bfloat16] [--force] [--keep-all-embeddings]
                       [--push owner/name [--private]]

``RUN`` is anything :func:`trm_core.load_model` takes (a run folder, a checkpoint, a
model folder, ``hf://owner/name``). ``trm-run`` writes one into ``RUN/model/`` at
the end of training; ``trm-convert --task`` writes one from reference weights.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import yaml

from .command import Parser, guarded, named, run
from .config import unstructure
from .hookspecs import PLUGIN_CONTRACT
from .inference import COMPONENTS, LoadedModel, load_model
from .modelfolder import (
    CARD,
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    KEEP_ALL_UP_TO,
    WEIGHTS,
    check_export_target,
    embedding_tables,
    weights_to_write,
    write_folder,
)

LIBRARY = "trm"
PAPER = "https://arxiv.org/abs/2510.04871"


def export_model(
    source: LoadedModel | str | os.PathLike,
    out: str | os.PathLike,
    *,
    dtype: str = "float32",
    force: bool = False,
    keep_all_embeddings: bool = False,
    data_dir: str | os.PathLike | None = None,
    hub_id: str | None = None,
    trained_from: Mapping[str, Any] | None = None,
    with_task_state: bool = True,
    log: Callable[[str], None] = lambda text: None,
) -> Path:
    """Write ``source``'s model as a model folder at ``out`` (atomically).

    Args:
        source: a :class:`~trm_core.LoadedModel`, or what :func:`~trm_core.load_model`
            takes.
        dtype: ``float32`` or ``bfloat16`` (weights only: computation keeps the
            model's ``dtype``).
        force: replace an existing model folder at ``out``.
        keep_all_embeddings: keep every puzzle-embedding row (default: a table of more
            than 4,096 identifiers keeps those the evaluation splits use).
        data_dir: the run's data folder, when the caller has it (else built or reused
            from the data cache when the task's state or a large table needs it).
        hub_id: ``owner/name`` the card's commands name (``hf://owner/name``).
        trained_from: how the weights came to be, for the card (default: the source).
        with_task_state: keep the task's state of its data (``Task.export_state``);
            off for weights whose data numbered their puzzles otherwise (trm-convert).
        log: progress lines.

    Returns:
        ``out``.
    """
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    out = Path(out)
    check_export_target(out, force)  # before any work
    loaded = source if isinstance(source, LoadedModel) else load_model(source, device="cpu")
    model, task = loaded.model, loaded.task

    tables = embedding_tables(model)
    large = [
        key
        for key, table in tables.items()
        if table.lookup is None and table.num > KEEP_ALL_UP_TO and not keep_all_embeddings
    ]
    stateful = with_task_state and task.supports("export_state")
    folder = None if data_dir is None else Path(data_dir)
    if folder is None and (large or (stateful and loaded.task_state is None)):
        log(f"reading the {loaded.config.task} data the model was evaluated on")
        folder = loaded.data_dir(log)
    keep: dict[str, np.ndarray | None] = {key: None for key in tables}
    if large:
        from .data import extra_splits, read_split

        splits = [read_split(folder / "test"), *extra_splits(folder).values()]
        used = np.unique(np.concatenate([np.asarray(s.puzzle_identifiers) for s in splits]))
        keep.update({key: used for key in large})
    task_state: dict[str, Any] = {}
    if stateful:
        task_state = loaded.task_state if loaded.task_state is not None else {}
        if loaded.task_state is None:
            task_state = task.export_state(folder)
    tensors, json_state, kept = weights_to_write(model, dtype, keep, task_state)
    manifest = _manifest(loaded, dtype, kept, json_state, trained_from)
    return write_folder(
        out, tensors, manifest, lambda written: model_card(written, hub_id), force=force
    )


def _origin(loaded: LoadedModel) -> dict[str, Any]:
    if loaded.run_dir is not None:
        return {"kind": "run", "name": loaded.run_dir.name}
    if loaded.folder is not None:
        return {"kind": "model", "name": loaded.source}
    return {"kind": "checkpoint", "name": Path(loaded.source).name}


def _manifest(
    loaded: LoadedModel,
    dtype: str,
    kept: Mapping[str, Any],
    task_state: Mapping[str, Any],
    trained_from: Mapping[str, Any] | None,
) -> dict[str, Any]:
    from . import __version__
    from .registry import get_registry

    config = unstructure(loaded.config)
    model = config.pop("model")
    task = config.pop("task")
    # What depends on the machine that trained it: where data were cached, which device.
    config["device"] = "auto"
    config["data"]["cache_dir"] = None
    components = {kind: _component(loaded.model.components[kind]) for kind in COMPONENTS}
    try:
        components["task"] = _component(get_registry().entry("task", task).as_dict())
    except Exception:  # a task given in-process (tests): no distribution to name
        components["task"] = {"name": task}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "trm_core": __version__,
        "plugin_contract": PLUGIN_CONTRACT,
        "torch": torch.__version__.split("+")[0],
        "task": task,
        "model": model,
        "run": config,
        "components": components,
        "step": loaded.step,
        "weights": {
            "file": WEIGHTS,
            "dtype": dtype,
            "ema": loaded.ema,
            "parameters": loaded.model.num_parameters(),
            "puzzle_embeddings": dict(kept),
        },
        "trained_from": dict(trained_from or _origin(loaded)),
    }
    if task_state:
        manifest["task_state"] = dict(task_state)
    for key in ("metrics", "strategy"):
        if loaded.record.get(key):
            manifest[key] = loaded.record[key]
    return manifest


def _component(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("name", "distribution", "version") if key in entry}


# -- reference weights ---------------------------------------------------------------


def from_reference(
    path: str | os.PathLike,
    task_name: str,
    *,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    registry=None,
) -> LoadedModel:
    """A checkpoint of the reference TRM code as a model of the task ``task_name``,
    ready to export (``trm-convert REFERENCE OUT --task NAME``).

    The task's preset ``preset`` gives the data options and evaluation settings the
    model folder records (default: the first preset, the paper's before the others,
    whose puzzles have the weights' vocabulary and length). The reference gives every
    puzzle of a one-identifier task (Sudoku, Maze) the identifier 0, which trm keeps
    blank and gives such puzzles 1: its single embedding row serves both. ARC's
    identifiers are numbered by each data build: a converted ARC model keeps its
    whole table but cannot say which task an identifier is (no ``--data`` files).
    """
    from .checkpoint import load_reference_checkpoint
    from .config import ConfigError, build_run_config, suggest
    from .layers import PuzzleEmbedding
    from .registry import get_registry
    from .run import resolve

    registry = registry or get_registry()
    model = load_reference_checkpoint(path, registry=registry, **dict(options or {}))
    task = registry.get("task", task_name)()
    presets = list(task.presets())
    if preset is not None and preset not in presets:
        raise ConfigError(
            f"task {task_name!r} has no preset {preset!r}{suggest(preset, presets)}; "
            f"presets: {', '.join(presets)}"
        )
    order = [preset] if preset else sorted(presets, key=lambda name: not name.startswith("paper"))
    sizes = (model.config.vocab_size, model.config.seq_len)
    tried = []
    for name in order:
        mapping, task, _ = resolve(
            task_name, preset=name, mixer=model.config.mixer, registry=registry, cuda=False
        )
        task.configure(dict((mapping.get("data") or {}).get("options") or {}))
        if (task.vocab_size, task.seq_len) == sizes:
            break
        tried.append(f"{name}: vocabulary {task.vocab_size}, {task.seq_len} tokens")
    else:
        raise ConfigError(
            f"{path}: the weights take a vocabulary of {sizes[0]} and {sizes[1]} tokens, "
            f"which no preset of the {task_name} task has ({'; '.join(tried)}); choose "
            "another --task, or pass the reference's seq_len/vocab_size with -o"
        )
    for module in model.modules():
        if isinstance(module, PuzzleEmbedding) and module.num == 1:
            # The reference's identifier 0 is trm's shared identifier 1 (0 stays blank).
            module.weights = module.weights.repeat(2, 1)
            module.num = 2
            model.config = attrs.evolve(model.config, num_puzzle_identifiers=2)
    mapping["model"] = unstructure(model.config)  # the weights', whatever the preset says
    config = build_run_config(mapping, where=f"{path} as a {task_name} model")
    return LoadedModel(str(path), config, task, model.eval(), step=0, ema=False)


# -- the model card ------------------------------------------------------------------


def model_card(manifest: Mapping[str, Any], hub_id: str | None = None) -> str:
    """README.md of a model folder: Hugging Face front matter (``library_name``, tags,
    metrics), then what trained the model, its results, how to use it, the versions."""
    lines = _card_model(manifest, hub_id)
    lines += _card_training(manifest)
    lines += _card_results(manifest)
    lines += _card_use(manifest, hub_id)
    lines += _card_files(manifest)
    return "\n".join(lines) + "\n"


def _card_model(manifest: Mapping[str, Any], hub_id: str | None) -> list[str]:
    """The front matter, the title and the model's table."""
    task, model = manifest["task"], manifest["model"]
    metrics = manifest.get("metrics") or {}
    mixer = model.get("mixer", "?")
    front = {
        "library_name": LIBRARY,
        "tags": ["trm", "tiny-recursive-models", "recursive-reasoning", task, mixer],
        "metrics": sorted({_metric_name(key) for key in metrics if _scored(metrics[key], key)}),
    }
    if not front["metrics"]:
        del front["metrics"]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", ""]
    origin = manifest.get("trained_from") or {}
    title = hub_id or (origin.get("name") if origin.get("kind") == "run" else None)
    title = title or f"{task}-{mixer}"
    lines += [
        f"# {title}",
        "",
        f"A Tiny Recursive Model (TRM; Jolicoeur-Martineau, *Less is More: Recursive "
        f"Reasoning with Tiny Networks*, 2025, [arXiv:2510.04871]({PAPER})) that solves "
        f"**{task}** puzzles, made with trm-core {manifest['trm_core']} (trm, a plugin "
        "framework for Tiny Recursive Models).",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
    ]
    weights = manifest["weights"]
    options = model.get("options") or {}
    recursion = (
        f"T = {_count(model.get('cycles'), 'cycle')} of n = "
        f"{_count(model.get('think_steps'), 'think step')}, "
        f"{_count(model.get('num_layers'), 'block')}"
    )
    rows = [
        ("parameters", f"{weights.get('parameters', 0):,}"),
        ("components", ", ".join(f"{kind} `{model.get(kind)}`" for kind in COMPONENTS)),
        ("hidden size", model.get("hidden_size")),
        ("recursion", recursion),
        ("supervision steps", model.get("halt_max_steps")),
        ("sequence", f"{model.get('seq_len')} tokens, vocabulary {model.get('vocab_size')}"),
        ("compute dtype", model.get("dtype")),
        ("weights", weights["dtype"] + (", the EMA weights" if weights.get("ema") else "")),
    ]
    used = {model.get(kind) for kind in COMPONENTS}
    chosen = {name: value for name, value in options.items() if value and name in used}
    if chosen:
        rows.append(("component options", "; ".join(f"{k}: {v}" for k, v in chosen.items())))
    for info in (weights.get("puzzle_embeddings") or {}).values():
        total, rows_kept = info.get("identifiers"), info.get("rows_kept")
        kept_text = (
            "all kept"
            if rows_kept == total
            else f"{rows_kept:,} kept (the evaluation splits' and the blank one); others "
            "read the blank row"
        )
        rows.append(("puzzle embeddings", f"{total:,} identifiers, {kept_text}"))
    lines += [f"| {name} | {value} |" for name, value in rows]
    return lines


def _card_training(manifest: Mapping[str, Any]) -> list[str]:
    """How the model was trained (or converted), and the data options."""
    run, origin = manifest["run"], manifest.get("trained_from") or {}
    task = manifest["task"]
    lines: list[str] = []

    train, data = run.get("train", {}), run.get("data", {})
    lines += ["", "## Training", ""]
    if origin.get("kind") == "reference":
        lines += [
            f"Converted with `trm-convert` from a checkpoint of the reference TRM code "
            f"(`{origin.get('name')}`); the data options below are the `{run.get('preset')}` "
            "preset's, which trm-eval uses to build the test split.",
            "",
        ]
    else:
        steps = manifest.get("step", 0)
        lines += [
            f"Task `{task}`, preset `{run.get('preset')}`; {steps:,} training steps of "
            f"{train.get('global_batch_size')} examples ({_optimizer_words(train)}, "
            f"learning rate {train.get('lr')}, "
            f"warm-up {train.get('lr_warmup_steps')} steps, weight decay "
            f"{train.get('weight_decay')}, EMA "
            f"{train.get('ema_rate') if train.get('ema') else 'off'}, seed {train.get('seed')}), "
            f"{data.get('augmentations')} augmentations per puzzle.",
            "",
        ]
    lines += [
        "Data options (`data.options`), the recipe the task builds its data from:",
        "",
        "```yaml",
        yaml.safe_dump(data.get("options") or {}, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return lines


def _optimizer_words(train: Mapping[str, Any]) -> str:
    """The card's words for ``train.optimizer`` (and ``train.muon_from``)."""
    if train.get("optimizer") != "muon":
        return "Adam-atan2"
    start = train.get("muon_from") or 0
    after = f" after Adam-atan2 for the first {start:.0%} of the steps" if start else ""
    return f"Muon for the core's matrices{after}, Adam-atan2 for the rest"


def _card_results(manifest: Mapping[str, Any]) -> list[str]:
    """The final metrics and the strategy's tables."""
    metrics = manifest.get("metrics") or {}
    evaluation = manifest["run"].get("eval", {})
    lines: list[str] = []
    lines += ["## Results", ""]
    if metrics:
        lines += [
            f"Evaluated with every supervision step (batch {evaluation.get('batch_size')}"
            + (f", first {limit} examples" if (limit := evaluation.get("max_examples")) else "")
            + "); an extra split's metrics are named `split/metric`:",
            "",
            "| metric | value |",
            "| --- | --- |",
        ]
        for key, value in metrics.items():
            if key == "seconds" or not isinstance(value, int | float):
                continue
            shown = f"{value:,.0f}" if key.endswith("examples") else f"{value:.4f}"
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    else:
        lines += ["No evaluation is recorded with these weights: run `trm-eval` on them.", ""]
    strategy = manifest.get("strategy")
    if strategy:
        from .strategies import StrategyReport, format_report

        lines += [
            f"Inference strategy `{strategy.get('name')}` "
            f"({', '.join(f'{k}={v}' for k, v in (strategy.get('options') or {}).items())}), "
            "accuracy against compute:",
            "",
            "```",
        ]
        for report in strategy.get("reports") or []:
            try:
                lines.append(format_report(StrategyReport(**report)))
            except TypeError:
                continue
        lines += ["```", ""]
    return lines


def _card_use(manifest: Mapping[str, Any], hub_id: str | None) -> list[str]:
    """The commands and the Python that use the model."""
    task, where = manifest["task"], f"hf://{hub_id}" if hub_id else "MODEL"
    lines: list[str] = []
    lines += [
        "## Use",
        "",
        "```bash",
        f"pip install trm-core {_distribution(manifest, 'task')}"
        + (" 'trm-core[hub]'" if hub_id else ""),
        f"trm-solve --model {where} PUZZLE_OR_FILE    # answers, checked by the task's rules",
        f"trm-eval --model {where}                    # the test split, as trained",
        f"trm-eval --model {where} --data FILE        # any file of {task} puzzles",
        "```",
        "",
        "```python",
        "import trm_core",
        "",
        f'loaded = trm_core.load_model("{where}")',
        "predictions, halt_logits = loaded.predict(inputs)  # [N, S] tokens -> [N, S] tokens",
        "```",
        "",
    ]
    if not hub_id:
        lines += [
            "`MODEL` is this folder's path, or `hf://owner/name` once it is on the Hugging "
            "Face Hub (`trm-export RUN OUT --push owner/name`).",
            "",
        ]
    return lines


def _card_files(manifest: Mapping[str, Any]) -> list[str]:
    """The files and the versions that made them."""
    weights = manifest["weights"]
    lines: list[str] = []
    lines += [
        "## Files and versions",
        "",
        f"- `{WEIGHTS}`: {weights.get('bytes', 0):,} bytes of {weights['dtype']} weights; "
        "safetensors, nothing is unpickled when it loads",
        f"- `{CONFIG}`: the model and data options, the recipe, the components, the metrics",
        f"- `{CARD}`: this card",
        "",
        f"trm-core {manifest['trm_core']} (plugin contract {manifest['plugin_contract']}), "
        f"torch {manifest.get('torch', '?')}, model folder format {manifest['format_version']}.",
        "",
        "| kind | name | distribution | version |",
        "| --- | --- | --- | --- |",
    ]
    for kind, entry in manifest["components"].items():
        lines.append(
            f"| {kind} | {entry.get('name', '?')} | {entry.get('distribution', '-')} | "
            f"{entry.get('version', '-')} |"
        )
    return lines


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _metric_name(key: str) -> str:
    return key.rpartition("/")[2]


def _scored(value: Any, key: str) -> bool:
    return isinstance(value, float) and key != "seconds" and not key.endswith("examples")


def _distribution(manifest: Mapping[str, Any], kind: str) -> str:
    entry = manifest["components"].get(kind) or {}
    return entry.get("distribution") or f"trm-plugin-{manifest['task']}"


# -- the command ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="trm-export",
        description="Write a trained model as a model folder (model.safetensors, "
        "config.json, README.md) that trm-solve, trm-eval and load_model take, and that "
        "can go on the Hugging Face Hub as it is.",
    )
    parser.add_argument(
        "source", metavar="RUN", type=named,
        help="a run folder (or a checkpoint, a model folder, hf://owner/name)",
    )  # fmt: skip
    parser.add_argument("out", metavar="OUT", type=named, help="the model folder to write")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), default="float32",
        help="the weights' dtype in the file (default float32; bfloat16 halves the size)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument(
        "--keep-all-embeddings", action="store_true",
        help="keep every puzzle-embedding row (default: a table of more than "
        f"{KEEP_ALL_UP_TO:,} identifiers keeps those of the evaluation splits)",
    )  # fmt: skip
    parser.add_argument(
        "--push", metavar="OWNER/NAME",
        help="then upload the folder to this Hugging Face Hub repository (needs "
        "trm-core[hub] and a token: HF_TOKEN or `hf auth login`)",
    )  # fmt: skip
    parser.add_argument("--private", action="store_true", help="with --push: a private repo")
    args = parser.parse_args(argv)
    return guarded(lambda: _export(args))


def _export(args: argparse.Namespace) -> int:
    from .hub import check_repo_id, push
    from .modelfolder import folder_size

    if args.push:
        check_repo_id(args.push)
    out = Path(args.out)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    from .files import FolderLock, run_folder_of
    from .monitor import doing

    run_folder = run_folder_of(out.parent)  # writing into a run folder: its one writer
    lock = FolderLock(run_folder) if run_folder is not None else None
    try:
        if lock is not None and (note := lock.acquire()):
            say(f"note: {note}")
        with doing(f"exporting {args.source} to {out}; nothing was written to {out}"):
            written = export_model(
                args.source, out, dtype=args.dtype, force=args.force,
                keep_all_embeddings=args.keep_all_embeddings, hub_id=args.push, log=say,
            )  # fmt: skip
    finally:
        if lock is not None:
            lock.release()
    print(f"wrote {written} ({folder_size(written):,} bytes: {WEIGHTS}, {CONFIG}, {CARD})")
    if args.push:
        url = push(written, args.push, private=args.private)
        print(f"pushed to {url}; load it with --model hf://{args.push}")
    return 0


def export_command() -> None:
    run(main)


if __name__ == "__main__":
    export_command()
