"""``trm-solve``: a trained run answers puzzles typed by a user, for any task.

    trm-solve --model SOURCE PUZZLE|FILE|-      (or --run RUN_DIR)

SOURCE is anything :func:`trm_core.load_model` takes: a model folder, a run
folder, a checkpoint or ``hf://owner/name``; nothing is written. The model's
task reads the puzzles (``Task.read_puzzles``: a Sudoku a line, a maze a block
of rows, ...), the model (EMA weights) answers them with
every supervision step (or with an inference strategy, ``--strategy rollouts``),
each answer is printed with ``Task.render_text`` and then judged by the task's
own rules (``Task.check_answer``), which never help produce it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from trm_core.command import Parser, add_model_source, fail, guarded, run, strategy_settings

SHOWN = 12  # problems listed per answer


def read_text(argument: str) -> tuple[str, str, bool]:
    """(text, source name, literal): ``-`` is standard input, an existing path a file,
    anything else the puzzle itself."""
    if argument == "":
        raise ValueError(
            "PUZZLE is empty: give a puzzle in the task's text format, a file of puzzles, "
            "or - to read standard input"
        )
    if argument == "-":
        from trm_core.monitor import doing

        if sys.stdin is None or sys.stdin.closed:
            raise ValueError("PUZZLE is -, but standard input is closed")
        from trm_core.data import DataError, decode_text

        with doing("reading puzzles from standard input; nothing was answered"):
            try:
                data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else None
            except OSError as error:
                raise ValueError(
                    f"cannot read standard input ({error.strerror or error})"
                ) from None
            if data is None:  # a text stream without bytes underneath (tests' StringIO)
                return sys.stdin.read(), "<stdin>", False
            try:
                return decode_text(data, "<stdin>"), "<stdin>", False
            except DataError as error:
                raise ValueError(str(error)) from None
    path = Path(argument)
    if "\n" in argument or not path.exists():
        return argument, "the puzzle", True
    from trm_core.data import read_text_file

    return read_text_file(path), str(path), False


def _looks_like_a_path(text: str) -> bool:
    """``puzzles.txt`` or ``data/x``: maybe a file name rather than a typed puzzle."""
    name = Path(text).name
    return "/" in text or os.sep in text or ("." in name and name.rsplit(".", 1)[1].isalpha())


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="trm-solve",
        description="Answer puzzles with a trained trm model; each answer is checked, never "
        "helped, by the task's own rules.",
    )
    add_model_source(parser)
    parser.add_argument(
        "puzzle", metavar="PUZZLE",
        help="the puzzle in the task's text format, a file of puzzles, or - for stdin",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        help="answer with this inference strategy (default: unroll, the plain answer)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a strategy option (strategy.k=32) or eval.batch_size; repeatable",
    )  # fmt: skip
    args = parser.parse_args(argv)
    return guarded(lambda: _solve(args))


def _solve(args: argparse.Namespace) -> int:
    import trm_core
    from trm_core.strategies import check_strategy, make_strategy

    try:
        section, batch_size = strategy_settings(args.strategy, args.set)
        if args.run is not None:
            run = trm_core.load_run(args.run, device=args.device)
        else:
            run = trm_core.load_model(args.model, device=args.device)
        strategy = None
        if section is not None:
            name, strategy = make_strategy(section)
            check_strategy(name, strategy, run.task, run.model)
        text, source, literal = read_text(args.puzzle)
        try:
            puzzles = run.task.read_puzzles(text, source)
        except ValueError as error:
            if literal and "\n" not in text:
                nor = ", nor a file" if _looks_like_a_path(text) else ""
                raise ValueError(f"{text!r} is not a puzzle ({error}){nor}") from None
            raise
    except ValueError as error:  # a task's or strategy's own refusal; guarded has the rest
        return fail(str(error))
    if literal and len(puzzles) == 1:
        puzzles = [("the puzzle", puzzles[0][1])]
    from trm_core.monitor import doing, sized_by

    inputs = np.stack([tokens for _, tokens in puzzles])
    rows = batch_size or 256
    per = 1 if strategy is None else strategy.rows_per_puzzle()
    with (
        doing(f"answering {len(puzzles)} puzzle(s); nothing was written"),
        sized_by(
            f"eval.batch_size={rows} (--set eval.batch_size=N; each puzzle takes {per} rows)"
            + ("" if strategy is None else " or the strategy's counts (--set strategy.KEY=N)")
        ),
    ):
        predictions, _ = run.predict(inputs, batch_size=rows, strategy=strategy)
    weights = "EMA weights" if run.ema else "weights"
    print(f"{run.source} ({run.config.task}, step {run.step}, {weights}), {len(puzzles)} puzzle(s)")
    valid, checked = 0, 0
    for (where, puzzle), prediction in zip(puzzles, predictions, strict=True):
        print(f"\n{where}:")
        print(run.task.render_text(prediction))
        problems = run.task.check_answer(puzzle, prediction)
        if problems is None:
            continue
        checked += 1
        if problems:
            print(f"the answer is not valid ({len(problems)} problem(s)):")
            for line in problems[:SHOWN]:
                print(f"  - {line}")
            if len(problems) > SHOWN:
                print(f"  ... and {len(problems) - SHOWN} more")
        else:
            valid += 1
            print("the answer is valid")
    if checked:
        print(f"\n{valid} of {checked} answers valid")
    else:
        print(f"\n(the {run.config.task} task cannot check answers without their solutions)")
    return 0


def solve_command() -> None:
    run(main)
