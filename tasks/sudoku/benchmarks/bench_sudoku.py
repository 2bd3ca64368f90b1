"""Time the Sudoku solver on puzzle files and the generator on each kind of puzzle.

    python tasks/sudoku/benchmarks/bench_sudoku.py [PUZZLE_FILE ...] [--generate N]

For each file (one puzzle a line, ``#`` comments): the time to solve every
puzzle and prove it unique, and the median / mean / max guess count (the
difficulty rating). Then, for each generator recipe, N puzzles: seconds per
puzzle on one process, median guesses and givens.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from trm_plugin_sudoku.generate import PuzzleSpec, generate
from trm_plugin_sudoku.grid import parse_line
from trm_plugin_sudoku.solver import is_complete_valid, solve

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "sudoku"
RECIPES = {
    "minimal, no difficulty floor": PuzzleSpec(),
    "minimal, >= 10 guesses (the default source)": PuzzleSpec(min_guesses=10),
    "40-45 givens (cpu preset)": PuzzleSpec(givens=(40, 45), minimal=False),
    "26-30 givens (cpu preset, hard set)": PuzzleSpec(givens=(26, 30), minimal=False),
}


def bench_file(path: Path) -> None:
    puzzles = [
        parse_line(line)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    started = time.perf_counter()
    results = [solve(p, limit=2) for p in puzzles]
    seconds = time.perf_counter() - started
    solved = sum(
        r.unique
        and is_complete_valid(r.solutions[0])
        and all(g in (0, s) for g, s in zip(p, r.solutions[0], strict=True))
        for p, r in zip(puzzles, results, strict=True)
    )
    guesses = [r.guesses for r in results]
    print(
        f"{path.name}: {solved}/{len(puzzles)} solved and proved unique in {seconds:.1f}s "
        f"({1000 * seconds / len(puzzles):.1f} ms each); guesses median "
        f"{statistics.median(guesses)}, mean {statistics.mean(guesses):.1f}, max {max(guesses)}"
    )


def bench_generator(count: int) -> None:
    for name, spec in RECIPES.items():
        started = time.perf_counter()
        made = generate(spec, seeds=range(count), workers=1)
        seconds = time.perf_counter() - started
        guesses = [m.guesses for m in made]
        givens = [sum(1 for d in m.puzzle if d) for m in made]
        print(
            f"generate {name}: {count} puzzles, {1000 * seconds / count:.0f} ms each "
            f"(1 process); guesses median {statistics.median(guesses)}, "
            f"mean {statistics.mean(guesses):.1f}; givens median {statistics.median(givens)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="puzzle lists to solve")
    parser.add_argument("--generate", type=int, default=200, help="puzzles per recipe")
    args = parser.parse_args()
    files = args.files or sorted(SHARED.glob("*.txt"))
    for path in files:
        bench_file(path)
    if args.generate:
        bench_generator(args.generate)


if __name__ == "__main__":
    main()
