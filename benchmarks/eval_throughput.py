"""Puzzles per second of evaluation (trm_core.evaluate.unroll, every supervision step) for
a task preset's model, by batch size, under ``torch.no_grad`` and ``torch.inference_mode``,
with the CPU SwiGLU sliced (trm's default) and, with ``--unsliced``, not.

The weights are freshly initialised (the work per puzzle does not depend on them) and
the puzzles random tokens of the task's shape, so no dataset is needed::

    python benchmarks/eval_throughput.py                       # Sudoku cpu preset, float32
    python benchmarks/eval_throughput.py --batches 250 500 1000 2000 --puzzles 2000
    python benchmarks/eval_throughput.py --batches 500 --unsliced   # slicing's share

Each setting runs ``--puzzles`` puzzles (in batches of the size; the last may be
smaller) twice, alternating with the other settings, and keeps the faster pass.
"""

from __future__ import annotations

import argparse
import time

import torch

from trm_core import layers
from trm_core.evaluate import unroll
from trm_core.model import build_model

#: (preset module, vocab, seq_len) of the tasks this script knows.
TASKS = {"sudoku": ("trm_plugin_sudoku.presets", 11, 81)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sudoku", choices=sorted(TASKS))
    parser.add_argument("--preset", default="CPU", help="the preset's name in the module")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--puzzles", type=int, default=1500)
    parser.add_argument("--batches", type=int, nargs="+", default=[250, 500, 1000, 1500])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--unsliced", action="store_true", help="also time unsliced SwiGLUs")
    args = parser.parse_args()

    module, vocab, seq_len = TASKS[args.task]
    preset = getattr(__import__(module, fromlist=[args.preset]), args.preset)
    config = {**preset["model"], "vocab_size": vocab, "seq_len": seq_len, "dtype": args.dtype}
    torch.manual_seed(0)
    model = build_model(config, device="cpu").eval()
    inputs = torch.randint(1, vocab, (args.puzzles, seq_len))
    ids = torch.zeros(args.puzzles, dtype=torch.long)
    modes = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
    widths = {"sliced": layers.CPU_SLICE_MAX_WIDTH, "unsliced": 0}
    if not args.unsliced:
        del widths["unsliced"]
    best: dict[tuple[int, str, str], float] = {}
    for _ in range(args.repeats):
        for batch in args.batches:
            for slicing, width in widths.items():
                layers.CPU_SLICE_MAX_WIDTH = width
                for name, mode in modes.items():
                    start = time.perf_counter()
                    with mode():
                        for first in range(0, args.puzzles, batch):
                            rows = slice(first, first + batch)
                            unroll(model, {"inputs": inputs[rows], "puzzle_identifiers": ids[rows]})
                    rate = args.puzzles / (time.perf_counter() - start)
                    key = (batch, slicing, name)
                    best[key] = max(best.get(key, 0.0), rate)
                    print(
                        f"batch {batch:5d} {slicing:8s} {name:15s} {rate:7.1f} puzzles/s",
                        flush=True,
                    )
    threads, steps = torch.get_num_threads(), model.config.halt_max_steps
    print(f"\n{args.task} {args.preset} model, {args.dtype}, {threads} threads, "
          f"{args.puzzles} puzzles, {steps} supervision steps each")  # fmt: skip
    for (batch, slicing, name), rate in sorted(best.items()):
        print(f"  batch {batch:5d}  {slicing:8s}  {name:15s} best {rate:7.1f} puzzles/s")


if __name__ == "__main__":
    main()
