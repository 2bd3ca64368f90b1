"""Command-line entry points: ``trm-plugins`` and ``trm-convert``.

Also runnable as ``python -m trm_core.cli COMMAND ...`` (COMMAND: plugins, convert).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from . import __version__


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def plugins_main(argv: list[str] | None = None) -> int:
    """``trm-plugins``: what is installed, as kind, name, distribution, version."""
    parser = argparse.ArgumentParser(
        prog="trm-plugins",
        description="List the trm plugins installed (honours TRM_LOAD_PLUGINS).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--kind", help="only this kind (encoder, mixer, core, halting_head, task)")
    args = parser.parse_args(argv)

    from .registry import PluginError, get_registry

    try:
        registry = get_registry()
        entries = registry.entries(args.kind)
    except PluginError as error:
        return _fail(str(error))
    failures = registry.failures
    conflicts = [registry.conflict_message(*key) for key in registry.conflicts]
    broken = 1 if failures or conflicts else 0
    if args.json:
        payload = {
            "plugins": [entry.as_dict() for entry in entries],
            "failed": [failure.as_dict() for failure in failures],
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
    for conflict in conflicts:
        print(f"CONFLICT {conflict}", file=sys.stderr)
    return broken


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def convert_main(argv: list[str] | None = None) -> int:
    """``trm-convert``: a reference TRM checkpoint -> a trm checkpoint."""
    parser = argparse.ArgumentParser(
        prog="trm-convert",
        description=(
            "Convert a checkpoint of the reference TRM code into a trm checkpoint. "
            "Architecture values the weights do not determine are given with -o, "
            "using the reference's own keys (e.g. -o L_cycles=6 -o mlp_t=true)."
        ),
    )
    parser.add_argument("reference", type=Path, help="the reference checkpoint (a state dict)")
    parser.add_argument("output", type=Path, help="where to write the trm checkpoint")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a reference architecture key (hidden_size, num_heads, H_cycles, L_cycles, "
        "pos_encodings, mlp_t, seq_len, puzzle_emb_len, forward_dtype, ...)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--version", action="version", version=f"trm-core {__version__}")
    args = parser.parse_args(argv)

    from .checkpoint import CheckpointError, load_reference_checkpoint, save_checkpoint
    from .config import ConfigError
    from .registry import PluginError

    if args.output.exists() and not args.force:
        return _fail(f"{args.output} exists; pass --force to overwrite it")
    try:
        model = load_reference_checkpoint(args.reference, **dict(args.option))
    except (CheckpointError, ConfigError, PluginError) as error:
        return _fail(str(error))
    save_checkpoint(args.output, model, converted_from=str(args.reference))
    config = model.config
    print(f"read {args.reference}")
    print(
        f"model: {model.num_parameters():,} parameters; {config.encoder} encoder, "
        f"{config.mixer} mixer, {config.core} core, {config.halting_head} halting head; "
        f"hidden {config.hidden_size}, T={config.cycles}, n={config.think_steps}, "
        f"seq_len {config.seq_len}, vocab {config.vocab_size}, positions {config.positions}"
    )
    print(f"wrote {args.output}")
    return 0


COMMANDS = {"plugins": plugins_main, "convert": convert_main}


def main(argv: list[str] | None = None) -> int:
    """``python -m trm_core.cli COMMAND ...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m trm_core.cli {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


def run(command) -> None:
    """Run a console command; a closed pipe (``trm-plugins | head``) is not an error."""
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)


def plugins_command() -> None:
    run(plugins_main)


def convert_command() -> None:
    run(convert_main)


if __name__ == "__main__":
    run(main)
