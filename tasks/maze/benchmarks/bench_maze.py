"""How fast the Maze plugin makes and checks mazes (prints numbers; not a test).

    python tasks/maze/benchmarks/bench_maze.py [--count 2000] [--side 30] [--workers N]

Times the generator (the issue's target: 2,000 hard 30x30 mazes in at most 2
minutes on the 2-core CPU machine), then labelling (`paths.solve`) and the
valid-path check over the mazes it made.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from trm_plugin_maze.generate import MazeSpec, generate
from trm_plugin_maze.paths import solve, valid_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--side", type=int, default=30)
    parser.add_argument("--min-length", type=int, default=None, help="default: 110 x side / 30")
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    spec = MazeSpec(side=args.side, min_length=args.min_length)
    workers = args.workers or os.cpu_count()
    print(f"{args.count} mazes of {args.side}x{args.side}, shortest path > {spec.threshold} moves, "
          f"{workers} process(es)")  # fmt: skip
    started = time.perf_counter()
    puzzles, labels, lengths, tried = generate(spec, args.count, seed=0, workers=workers)
    seconds = time.perf_counter() - started
    print(f"generate: {seconds:.1f} s ({1000 * seconds / args.count:.1f} ms a maze; "
          f"{tried:,} candidates, {args.count / tried:.3%} accepted)")  # fmt: skip
    print(f"  path length: min {lengths.min()}, median {np.median(lengths):.0f}, "
          f"max {lengths.max()}; walls {(puzzles == 1).mean():.1%}")  # fmt: skip
    started = time.perf_counter()
    again = solve(puzzles)
    seconds = time.perf_counter() - started
    assert (again == labels).all()
    each = 1e6 * seconds / args.count
    print(f"solve (label): {seconds:.2f} s for {args.count} ({each:.0f} us a maze)")
    started = time.perf_counter()
    valid = valid_paths(puzzles, labels)
    seconds = time.perf_counter() - started
    assert valid.all()
    print(f"valid-path check: {seconds:.2f} s for {args.count}")


if __name__ == "__main__":
    main()
