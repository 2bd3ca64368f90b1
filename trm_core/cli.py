"""The console commands ``trm-plugins``, ``trm-convert``, ``trm-run`` and ``trm-eval``
(``trm-solve``: :mod:`trm_core.solve`; ``trm-export``: :mod:`trm_core.export`;
``trm-bench``: :mod:`trm_core.bench`): argument parsing, printing and exit codes.
What they share is :mod:`trm_core.command`.

Also runnable as ``python -m trm_core.cli COMMAND ...`` (COMMAND: plugins, convert,
run, eval).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import __version__
from .command import (
    Parser,
    add_model_source,
    amount,
    count,
    environment_failure,
    fail,
    guarded,
    named,
    parse_option,
    run,
    strategy_settings,
)
from .config import ConfigError
from .hookspecs import PLUGIN_CONTRACT
from .interfaces import KINDS
from .monitor import doing, sized_by


def plugins_main(argv: list[str] | None = None) -> int:
    """``trm-plugins``: what is installed, as kind, name, distribution, version."""
    parser = Parser(
        prog="trm-plugins",
        description="List the trm plugins installed (honours TRM_LOAD_PLUGINS).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--kind", help=f"only this kind ({', '.join(KINDS)})")
    parser.add_argument(
        "--version",
        action="version",
        version=f"trm-core {__version__}, plugin contract {PLUGIN_CONTRACT}",
    )
    args = parser.parse_args(argv)

    from .registry import PluginError, PluginLoadWarning, get_registry

    try:
        with warnings.catch_warnings():  # failures are listed below, once
            warnings.simplefilter("ignore", PluginLoadWarning)
            registry = get_registry()
        entries = registry.entries(args.kind)
    except PluginError as error:
        return fail(str(error))
    failures = [failure for failure in registry.failures if not failure.incompatible]
    incompatible = [failure for failure in registry.failures if failure.incompatible]
    conflicts = [registry.conflict_message(*key) for key in registry.conflicts]
    broken = 1 if registry.failures or conflicts else 0
    if args.json:
        payload = {
            "trm_core": __version__,
            "contract": PLUGIN_CONTRACT,
            "plugins": [entry.as_dict() for entry in entries],
            "failed": [failure.as_dict() for failure in failures],
            "incompatible": [failure.as_dict() for failure in incompatible],
            "conflicts": conflicts,
        }
        print(json.dumps(payload, indent=2))
        return broken
    rows = [("KIND", "NAME", "DISTRIBUTION", "VERSION")]
    rows += [(e.kind, e.name, e.distribution, e.version) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if not entries:
        print("(no plugins loaded)")
    for failure in failures:
        print(f"FAILED {failure.describe()}", file=sys.stderr)
    for failure in incompatible:
        print(f"INCOMPATIBLE {failure.describe()}", file=sys.stderr)
    for conflict in conflicts:
        print(f"CONFLICT {conflict}", file=sys.stderr)
    return broken


def convert_main(argv: list[str] | None = None) -> int:
    """``trm-convert``: a reference TRM checkpoint -> a model folder (``--task``) or a
    trm checkpoint."""
    parser = Parser(
        prog="trm-convert",
        description=(
            "Convert a checkpoint of the reference TRM code into a model folder that "
            "trm-solve, trm-eval and load_model take (--task NAME), or else into a bare "
            "trm checkpoint. Architecture values the weights do not determine are given "
            "with -o, using the reference's own keys (e.g. -o L_cycles=6 -o mlp_t=true)."
        ),
    )
    parser.add_argument(
        "reference", type=lambda text: Path(named(text)),
        help="the reference checkpoint (a state dict)",
    )  # fmt: skip
    parser.add_argument(
        "output", type=lambda text: Path(named(text)),
        help="where to write the model folder (or, without --task, the trm checkpoint)",
    )  # fmt: skip
    parser.add_argument(
        "--task", help="the task the weights answer (trm-plugins --kind task): write a model "
        "folder",
    )  # fmt: skip
    parser.add_argument(
        "--preset", help="with --task: the preset whose data options the folder records "
        "(default: the first, paper presets first, whose puzzles fit the weights)",
    )  # fmt: skip
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a reference architecture key (hidden_size, num_heads, H_cycles, L_cycles, "
        "pos_encodings, mlp_t, seq_len, puzzle_emb_len, forward_dtype, ...)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--version", action="version", version=f"trm-core {__version__}")
    args = parser.parse_args(argv)

    return guarded(lambda: _convert(args))


def _convert(args: argparse.Namespace) -> int:
    from .checkpoint import load_reference_checkpoint, save_checkpoint

    if args.output.exists() and not args.force:
        raise ConfigError(f"{args.output} exists; pass --force to overwrite it")
    if args.preset and not args.task:
        raise ConfigError("--preset needs --task NAME")
    with doing(f"converting {args.reference}; nothing was written to {args.output}"):
        if args.task:
            return _convert_to_folder(args)
        model = load_reference_checkpoint(args.reference, **dict(args.option))
        bad = [key for key, value in model.state_dict().items()
               if value.is_floating_point() and not bool(value.isfinite().all())]  # fmt: skip
        if bad:
            raise ConfigError(f"{args.reference}: the weights hold non-finite values at {bad[0]}")
        try:
            save_checkpoint(args.output, model, converted_from=str(args.reference))
        except OSError as error:
            return environment_failure(error, f"nothing was written to {args.output}")
    _describe_converted(args.reference, model)
    print(f"wrote {args.output} (a bare checkpoint: --task NAME writes a model folder that "
          "trm-solve and trm-eval take)")  # fmt: skip
    return 0


def _convert_to_folder(args: argparse.Namespace) -> int:
    from .export import export_model, from_reference

    loaded = from_reference(
        args.reference, args.task, preset=args.preset, options=dict(args.option)
    )
    export_model(
        loaded, args.output, force=args.force, keep_all_embeddings=True,
        with_task_state=False,
        trained_from={"kind": "reference", "name": Path(args.reference).name},
    )  # fmt: skip
    _describe_converted(args.reference, loaded.model)
    print(f"task: {args.task}, preset {loaded.config.preset} (its data options are recorded)")
    print(f"wrote {args.output} (trm-solve --model {args.output} PUZZLE)")
    return 0


def _describe_converted(reference: Path, model) -> None:
    config = model.config
    print(f"read {reference}")
    print(
        f"model: {model.num_parameters():,} parameters; {config.encoder} encoder, "
        f"{config.mixer} mixer, {config.core} core, {config.halting_head} halting head; "
        f"hidden {config.hidden_size}, T={config.cycles}, n={config.think_steps}, "
        f"seq_len {config.seq_len}, vocab {config.vocab_size}"
        + "".join(f"; {name} {opts}" for name, opts in config.options.items() if opts)
    )


def _print_metrics(metrics: dict[str, float], indent: str = "  ") -> None:
    for name, value in metrics.items():
        print(f"{indent}{name:<32} {value:.4f}" if isinstance(value, float) else f"{indent}{name}")


def run_main(argv: list[str] | None = None) -> int:
    """``trm-run``: train a task's model, evaluate it, log to TensorBoard."""
    parser = Parser(
        prog="trm-run",
        description="Train and evaluate a Tiny Recursive Model on a task.",
    )
    parser.add_argument("--task", help="the task plugin (see trm-plugins)")
    parser.add_argument("--mixer", help="token mixer plugin: attention, mlp, ...")
    parser.add_argument("--preset", help="the task's preset (default: cpu without CUDA)")
    parser.add_argument("--config", type=named, help="a YAML file merged over the preset")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.lr=3e-4 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:N or mps (default: CUDA when available, else cpu)"
    )
    parser.add_argument("--out", type=named, help="parent folder of run folders (default runs/)")
    parser.add_argument("--max-steps", type=count, help="stop after this many steps in all")
    parser.add_argument("--time-budget", type=amount, metavar="MINUTES", help="stop training after")
    parser.add_argument(
        "--resume", type=named, metavar="RUN_DIR", help="continue a run from its checkpoint"
    )
    args = parser.parse_args(argv)

    return guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .devices import resolve_device
    from .flops import format_flops
    from .monitor import format_duration
    from .registry import get_registry
    from .run import device_setting, resolve
    from .training import train

    registry = get_registry()
    mapping, chosen = None, None
    if args.resume:
        given = [flag for flag, value in (("--task", args.task), ("--mixer", args.mixer),
                 ("--preset", args.preset), ("--config", args.config), ("--set", args.set),
                 ("--out", args.out)) if value]  # fmt: skip
        if given:
            raise ConfigError(
                f"--resume continues a run as configured; it takes only --max-steps, "
                f"--time-budget and --device, not {', '.join(given)} (a new run with other "
                "settings: trm-run --task T --config RUN/config.yaml --set ...)"
            )
    else:
        if not args.task:
            raise ConfigError(
                "--task is required (or --resume RUN_DIR); installed tasks: "
                + (", ".join(registry.names("task")) or "none")
            )
        # The default preset follows the device: the run's own, else this machine's.
        on_cuda = resolve_device(device_setting(args.device, args.set)).type == "cuda"
        mapping, _, chosen = resolve(
            args.task, mixer=args.mixer, preset=args.preset, config_file=args.config,
            overrides=args.set, registry=registry, cuda=on_cuda,
        )  # fmt: skip
    result = train(
        mapping, out=args.out or "runs", resume=args.resume, device=args.device,
        max_steps=args.max_steps,
        time_budget=None if args.time_budget is None else args.time_budget * 60,
        registry=registry, chosen=chosen,
    )  # fmt: skip
    if result.run_dir is None or not result.trained:
        return 0
    compute = "" if result.flops is None else f" ({format_flops(result.flops)} of training)"
    print(
        f"\ndone: step {result.step} of {result.total_steps} in "
        f"{format_duration(result.seconds)}{compute}; final test metrics:"
    )
    _print_metrics(result.metrics)
    print(f"run folder:  {result.run_dir}")
    print(f"checkpoint:  {result.checkpoint}")
    print(f"model:       {result.model_dir} (trm-solve --model {result.model_dir} PUZZLE)")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir.parent}")
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    """``trm-eval``: evaluate a run's checkpoint (EMA weights) on its test split."""
    parser = Parser(
        prog="trm-eval",
        description="Evaluate a trained model: on the test split it was trained with (and "
        "its extra splits), or on puzzle files with --data.",
    )
    add_model_source(parser)
    parser.add_argument(
        "--data", action="append", type=named, metavar="FILE",
        help="score this file of puzzles with their answers, in one of the task's formats, "
        "as a split named after it (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=named, metavar="DIR",
        help="where the task writes its outputs (ARC's submission.json; default: the run "
        "folder with --run and no --data, else nowhere)",
    )  # fmt: skip
    parser.add_argument("--max-examples", type=count, help="evaluate only this many test examples")
    parser.add_argument("--early-halting", action="store_true", help="halt on the halt logit")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the run's)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        help="answer with this inference strategy (trm-plugins --kind strategy) and print "
        "accuracy against compute",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option (strategy.k=32) or eval.batch_size; repeatable",
    )
    parser.add_argument(
        "--split",
        action="append",
        metavar="NAME",
        help="with --strategy: only this split (test or an extra split's name); repeatable",
    )
    parser.add_argument(
        "--metric",
        default="exact_accuracy",
        help="the metric of the strategy table (default exact_accuracy)",
    )
    args = parser.parse_args(argv)
    return guarded(lambda: _eval(args))


def _eval(args: argparse.Namespace) -> int:
    from .distributed import init_world
    from .inference import load_model, load_run
    from .run import read_config

    # The model is loaded as trm-solve loads it (no optimiser, no training sampler), then
    # evaluated as a run's final evaluation: the test split and every extra split, or the
    # --data files.
    section, batch_size = strategy_settings(args.strategy, args.set)
    if args.run is not None:
        source, device = args.run, args.device or read_config(Path(args.run)).device
    else:
        source, device = args.model, args.device or "auto"
    world = init_world(device)
    load = load_run if args.run is not None else load_model  # --run: a run folder alone
    with doing(f"loading {source}; nothing was written"):
        loaded = load(source, device=world.device)
    with doing(f"evaluating {source}; no result was recorded"):
        return _evaluate(args, loaded, world, section, batch_size)


def _evaluate(args, loaded, world, section, batch_size) -> int:
    data = None
    if args.data:
        data = loaded.read_data(args.data, log=lambda *a: None)
    if section is not None:
        return _eval_strategy(loaded, world, section, batch_size, data, args)
    if args.split:
        raise ConfigError("--split applies to --strategy evaluations")
    out_dir = args.out
    if out_dir is None and loaded.run_dir is not None and data is None:
        out_dir = loaded.run_dir
    rows = batch_size or loaded.config.eval.batch_size
    with sized_by(f"eval.batch_size={rows} (--set eval.batch_size=N)"):
        metrics = loaded.evaluate(
            world, max_examples=args.max_examples, early_halting=args.early_halting or None,
            out_dir=out_dir, data=data, batch_size=batch_size,
        )  # fmt: skip
    if not world.is_main:  # under torchrun rank 0 reports
        return 0
    seconds = metrics.pop("seconds", None)
    if args.json:
        key = "run" if args.run is not None else "model"
        payload = {key: loaded.source, "step": loaded.step, "metrics": metrics}
        payload["seconds"] = seconds
        print(json.dumps(payload))
    else:
        print(f"{loaded.source} at step {loaded.step}:")
        _print_metrics(metrics)
        if seconds is not None:
            print(f"  ({seconds:.1f} s)")
    return 0


def _eval_strategy(loaded, world, section: dict, batch_size: int | None, data, args) -> int:
    """trm-eval --strategy: accuracy against compute on every split, printed; for a run
    folder also recorded in metrics.json and logged to the run's loggers
    (``strategy/<name>/...`` against passes)."""
    from .config import suggest
    from .strategies import check_strategy, format_report, make_strategy, options_of

    name, strategy = make_strategy(section)
    check_strategy(name, strategy, loaded.task, loaded.model)
    say = print if world.is_main and not args.json else (lambda *a, **k: None)
    options = options_of(strategy)
    say(f"{loaded.source} at step {loaded.step}: strategy {name} {_options_text(options)}")
    rows = batch_size or loaded.config.eval.batch_size
    with sized_by(_budget_keys(rows, strategy, options)):
        reports = loaded.evaluate_strategy(
            strategy, world, max_examples=args.max_examples, batch_size=batch_size,
            splits=args.split, data=data,
        )  # fmt: skip
    if not world.is_main:
        return 0
    record = {
        "step": loaded.step,
        "strategy": {"name": name, "options": options},
        "reports": [report.as_dict() for report in reports],
    }
    metrics = sorted({
        key for report in reports for row in report.rows
        for selection in row["selections"].values() for key in selection
    })  # fmt: skip
    if loaded.run_dir is not None and data is None:  # scores of other data are not the run's
        _record_strategy(loaded, record, name, reports)
    if metrics and args.metric not in metrics:
        raise ConfigError(
            f"--metric {args.metric}: not a metric of this evaluation"
            f"{suggest(args.metric, metrics)}; its metrics: {', '.join(metrics)}"
        )
    if args.json:
        key = "run" if args.run is not None else "model"
        print(json.dumps({key: loaded.source, **record}))
    else:
        for report in reports:
            print(format_report(report, args.metric))
    return 0


def _budget_keys(rows: int, strategy, options: dict) -> str:
    """The settings that size a strategy evaluation's memory: rows per forward pass and
    the strategy's own counts (its trajectories or copies per puzzle)."""
    counts = [
        f"strategy.{key}={value}"
        for key, value in options.items()
        if type(value) is int and key != "seed"
    ]
    per = strategy.rows_per_puzzle()
    return f"eval.batch_size={rows} (--set eval.batch_size=N; each puzzle takes {per} rows)" + (
        f" or {', '.join(counts)}" if counts else ""
    )


def _record_strategy(loaded, record: dict, name: str, reports: list) -> None:
    """A strategy evaluation into the run's metrics.json and its loggers; a file that
    cannot be read or written is named in a warning, never fatal to the evaluation."""
    from .errors import PluginError
    from .files import atomic_write_text
    from .runlog import log_strategy, make_loggers

    run_dir = loaded.run_dir
    history_path = run_dir / "metrics.json"
    try:
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
        if not isinstance(history, list):
            raise ValueError(f"{history_path} is damaged: not a list of records")
        history.append({**record, "evaluated_by": "trm-eval"})
        atomic_write_text(history_path, json.dumps(history, indent=2))
        loggers = make_loggers(loaded.config.loggers, run_dir)
        try:
            log_strategy(loggers, name, reports)
        finally:
            for logger in loggers:
                logger.close()
    except (OSError, ValueError, RecursionError, PluginError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if (
            isinstance(error, ValueError)
            and not isinstance(error, ConfigError)
            and ("damaged" not in reason)
        ):
            reason = f"{history_path} is damaged ({reason})"
        print(f"warning: the results were not recorded in {run_dir}: {reason}",
              file=sys.stderr)  # fmt: skip


def _options_text(options: dict) -> str:
    return "(" + ", ".join(f"{key}={value}" for key, value in options.items()) + ")"


COMMANDS = {
    "plugins": plugins_main,
    "convert": convert_main,
    "run": run_main,
    "eval": eval_main,
}


def main(argv: list[str] | None = None) -> int:
    """``python -m trm_core.cli COMMAND ...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m trm_core.cli {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


def plugins_command() -> None:
    run(plugins_main)


def convert_command() -> None:
    run(convert_main)


def run_command() -> None:
    run(run_main)


def eval_command() -> None:
    run(eval_main)


if __name__ == "__main__":
    run(main)
