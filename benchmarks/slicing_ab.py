"""The sliced CPU SwiGLU on and off, step after step in one process: its speed-up
free of the drift between separate runs (on a shared VM 10-20% between sittings).

Times full training steps (trm-bench's :class:`~trm_core.bench.StepRunner`: forward,
ACT loss, backward, optimisers) of trm-bench presets, or of the Sudoku ``cpu``
preset's model (``sudoku-cpu``, batch 64), alternating the two settings in pairs
(on-off, off-on, ...), and prints the median of each and their ratio::

    python benchmarks/slicing_ab.py                         # every case, 4 pairs
    python benchmarks/slicing_ab.py --cases tiny-sudoku-mlp --pairs 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from trm_core import layers
from trm_core.bench import StepRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_models, beside this script
from bench_models import model_config

CASES = {"tiny-sudoku-mlp": 64, "tiny-sudoku-att": 64, "paper-sudoku-mlp": 16, "sudoku-cpu": 64}


def case_config(name: str, dtype: str) -> dict:
    if name == "sudoku-cpu":
        from trm_plugin_sudoku.presets import CPU

        model = {**CPU["model"], "vocab_size": 11, "seq_len": 81, "num_puzzle_identifiers": 1}
        return {**model, "dtype": dtype}
    return model_config(name, dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    on = layers.CPU_SLICE_MAX_WIDTH
    for name in args.cases:
        runner = StepRunner(case_config(name, args.dtype), CASES[name], "cpu")
        runner.step()
        runner.step()
        times: dict[str, list[float]] = {"sliced": [], "unsliced": []}
        for pair in range(args.pairs):
            order = ("sliced", "unsliced") if pair % 2 == 0 else ("unsliced", "sliced")
            for setting in order:
                layers.CPU_SLICE_MAX_WIDTH = on if setting == "sliced" else 0
                times[setting].append(runner.timed_step() * 1e3)
        layers.CPU_SLICE_MAX_WIDTH = on
        sliced, unsliced = (statistics.median(times[k]) for k in ("sliced", "unsliced"))
        print(f"{name} batch {CASES[name]} {args.dtype}, {torch.get_num_threads()} threads: "
              f"sliced {sliced:.0f} ms, unsliced {unsliced:.0f} ms, "
              f"speed-up {unsliced / sliced:.3f}x over {args.pairs} pairs", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
