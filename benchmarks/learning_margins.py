"""Measure the learning tests' figures over seeds and dtypes, to set their bounds.

Each learning test trains a tiny model and checks a few figures against bounds
(``BOUNDS`` in its module). A bound is only honest if it holds on every machine:
with another seed, and in bfloat16 (what ``dtype: auto`` picks on GPUs and on CPUs
with AVX-512-BF16 or AMX). This script runs each test's own ``train`` (with
``train.seed`` and ``model.dtype`` overridden) and its own ``figures``, and prints
every figure's value per seed, the worst per dtype and the test's bound::

    python benchmarks/learning_margins.py                      # every test, seeds 0-4, both dtypes
    python benchmarks/learning_margins.py --tests maze --seeds 0 1 --dtypes float32
    python benchmarks/learning_margins.py --json margins.json  # also write the numbers

bfloat16 on a CPU without native support (AVX2 only) is emulated and several
times slower; the whole default run takes about an hour there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]

#: name -> the test file whose train() and figures() are run.
TESTS = {
    "trainer": ROOT / "tests" / "test_trainer.py",
    "sudoku": ROOT / "tasks" / "sudoku" / "tests" / "test_sudoku_end_to_end.py",
    "maze": ROOT / "tasks" / "maze" / "tests" / "test_maze_end_to_end.py",
    "arc": ROOT / "tasks" / "arc" / "tests" / "test_arc_end_to_end.py",
}


def load(name: str) -> ModuleType:
    """Import a test module from its file (the engine's tests are a package)."""
    path = TESTS[name]
    if name == "trainer":
        sys.path.insert(0, str(ROOT))
        import tests.test_trainer as module

        return module
    spec = importlib.util.spec_from_file_location(f"margins_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trainer(module: ModuleType, root: Path, data: Path, extra: list[str]) -> Path:
    """The trainer test's run: the tiny reverse task registered, as its fixture does."""
    import os

    import trm_core
    from tests import tiny_task

    os.environ["TRM_DATA_DIR"] = str(data)
    with trm_core.use_registry(tiny_task.registry()):
        out = root / "runs"
        assert module.train(out, "cpu", *extra) == 0
    [run] = [p for p in out.iterdir() if p.is_dir()]
    return run


def run_one(name: str, module: ModuleType, work: Path, seed: int, dtype: str) -> dict:
    root = work / f"{name}-{dtype}-seed{seed}"
    root.mkdir(parents=True)
    data = work / f"{name}-data"  # one data cache per test: the seed varies training only
    extra = ["--set", f"train.seed={seed}", "--set", f"model.dtype={dtype}"]
    if name == "trainer":
        run = trainer(module, root, data, extra)
    else:
        run = module.train(root, *extra, "--set", f"data.cache_dir={data}")
    return module.figures(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", nargs="+", choices=list(TESTS), default=list(TESTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"],
                        default=["float32", "bfloat16"])  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="trm-margins-") as scratch:
        for name in args.tests:
            module = load(name)
            bounds: dict[str, float] = module.BOUNDS
            results[name] = {}
            for dtype in args.dtypes:
                per_figure: dict[str, list[float]] = {key: [] for key in bounds}
                for seed in args.seeds:
                    started = time.monotonic()
                    found = run_one(name, module, Path(scratch), seed, dtype)
                    for key in bounds:
                        per_figure[key].append(found[key])
                    shown = ", ".join(f"{k} {found[k]:.3f}" for k in bounds)
                    print(f"{name} {dtype} seed {seed}: {shown} "
                          f"({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
                results[name][dtype] = per_figure
            print(table(name, bounds, results[name]), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    return 0


def is_upper(key: str) -> bool:
    """Whether a figure's bound is an upper one (ratios) rather than a lower one."""
    return key.endswith("ratio")


def table(name: str, bounds: dict[str, float], measured: dict) -> str:
    """A Markdown table: figure, per dtype its range over seeds, the bound."""
    dtypes = list(measured)
    lines = [f"\n{name}:", "| figure | " + " | ".join(dtypes) + " | bound |"]
    lines.append("| --- |" + " --- |" * (len(dtypes) + 1))
    for key, bound in bounds.items():
        cells = []
        for dtype in dtypes:
            values = measured[dtype][key]
            worst = max(values) if is_upper(key) else min(values)
            cells.append(f"{min(values):.3f}-{max(values):.3f} (worst {worst:.3f})")
        sign = "<" if is_upper(key) else ">"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {sign} {bound} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
