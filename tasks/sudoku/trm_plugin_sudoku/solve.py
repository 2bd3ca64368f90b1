"""``trm-solve``: a trained run answers Sudoku puzzles.

    trm-solve --run RUN_DIR PUZZLE

PUZZLE is an 81-character puzzle (``.`` or ``0`` blank), a file of them (one a
line, ``#`` comments), or ``-`` to read such lines from standard input. The
model's answer is printed as a 9x9 board. It is then checked, with the solver,
against the rules and the givens; the solver never produces the answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .grid import board, to_digits, to_tokens
from .solver import UNITS, solve
from .sources import parse_lines

SHOWN = 12  # problems listed per answer
UNIT_NAMES = (
    [f"row {i + 1}" for i in range(9)]
    + [f"column {i + 1}" for i in range(9)]
    + [f"box {i + 1}" for i in range(9)]
)


def _cell(index: int) -> str:
    return f"r{index // 9 + 1}c{index % 9 + 1}"


def problems(puzzle: list[int], answer: list[int]) -> list[str]:
    """What is wrong with ``answer`` for ``puzzle``: blanks, changed givens, broken rules."""
    found = []
    blanks = [i for i in range(81) if not answer[i]]
    if blanks:
        found.append(f"leaves {len(blanks)} cell(s) blank: {', '.join(map(_cell, blanks))}")
    for i in range(81):
        if puzzle[i] and answer[i] != puzzle[i]:
            found.append(f"changes the given {puzzle[i]} at {_cell(i)} to {answer[i] or 'blank'}")
    for name, unit in zip(UNIT_NAMES, UNITS, strict=True):
        for digit in range(1, 10):
            cells = [i for i in unit if answer[i] == digit]
            if len(cells) > 1:
                found.append(
                    f"{name} has {digit} {len(cells)} times ({', '.join(map(_cell, cells))})"
                )
    return found


def read_puzzles(argument: str) -> list[tuple[str, list[int]]]:
    """(where, digits) for each puzzle named by the command-line argument."""
    if argument == "-":
        source, lines = "<stdin>", sys.stdin.read().splitlines()
    elif len(argument.strip()) == 81 and not Path(argument).is_file():
        source, lines = "the puzzle", [argument]
    else:
        path = Path(argument)
        if not path.is_file():
            raise ValueError(
                f"{argument!r} is neither an 81-character puzzle nor a file "
                f"({len(argument.strip())} characters; no such file)"
            )
        source, lines = str(path), path.read_text().splitlines()
    puzzles, numbers = parse_lines(source, lines)
    if source == "the puzzle":
        return [(source, puzzles[0])]
    return [(f"{source}, line {n}", p) for n, p in zip(numbers, puzzles, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trm-solve",
        description="Solve Sudoku puzzles with a trained trm run (checked, never helped, "
        "by the exact solver).",
    )
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a trm-run folder")
    parser.add_argument(
        "puzzle", metavar="PUZZLE",
        help="an 81-character puzzle ('.' or '0' blank), a file of them, or - for stdin",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    args = parser.parse_args(argv)

    import trm_core

    try:
        puzzles = read_puzzles(args.puzzle)
        run = trm_core.load_run(args.run, device=args.device)
    except (ValueError, OSError, trm_core.PluginError, trm_core.CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if run.config.task != "sudoku":
        print(f"error: {args.run} is a {run.config.task!r} run, not a sudoku one", file=sys.stderr)
        return 2
    inputs = np.stack([to_tokens(digits) for _, digits in puzzles])
    predictions, _ = run.predict(inputs)
    weights = "EMA weights" if run.ema else "weights"
    print(f"{run.run_dir} (step {run.step}, {weights}), {len(puzzles)} puzzle(s)")
    solved = 0
    for (where, puzzle), prediction in zip(puzzles, predictions, strict=True):
        answer = [int(d) for d in to_digits(prediction)]
        print(f"\n{where}:")
        print(board(answer))
        wrong = problems(puzzle, answer)
        reference = solve(puzzle, limit=2)
        if wrong:
            print(f"the model's answer is not a solution ({len(wrong)} problem(s)):")
            for line in wrong[:SHOWN]:
                print(f"  - {line}")
            if len(wrong) > SHOWN:
                print(f"  ... and {len(wrong) - SHOWN} more")
        else:
            solved += 1
            print("a complete grid that keeps every given and breaks no rule")
        if reference.count == 0:
            print("(the puzzle itself has no solution)")
        elif reference.count > 1:
            print("(the puzzle has several solutions)")
    print(f"\n{solved} of {len(puzzles)} answered with a valid solution")
    return 0


def solve_command() -> None:
    raise SystemExit(main())
