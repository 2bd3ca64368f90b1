"""Measure the ARC plugin at the paper's scale: data, training rows, evaluation, checkpoints.

    python tasks/arc/benchmarks/bench_arc.py [--recipe paper-arc1|paper-arc2]
        [--data-dir DIR] [--concept DIR] [--skip-checkpoint]

Builds (or reuses) the recipe's data set in ``--data-dir`` (default a cache
folder), then prints: the build time and sizes; microseconds per training row
served (augmented, translated, renamed) and per global batch of 768; the
evaluator's time to vote over every test row (fed the labels as predictions,
so pass@1 must come out 1.0) and to write submission.json; and the size and
write/read time of a checkpoint of the paper model with its puzzle-embedding
table. ConceptARC is read from ``--concept DIR`` (the folder holding
``arc-agi_concept_challenges.json``); without it the recipe runs without that set.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import trm_core
from trm_core import mix_seed, read_split
from trm_plugin_arc import ArcTask
from trm_plugin_arc.presets import PRESETS
from trm_plugin_arc.voting import submission_problems


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="paper-arc1", choices=["paper-arc1", "paper-arc2"])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--concept", type=Path, default=None)
    parser.add_argument("--skip-checkpoint", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    preset = PRESETS[args.recipe]
    options = json.loads(json.dumps(preset["data"]["options"]))
    if args.concept and (args.concept / "arc-agi_concept_challenges.json").is_file():
        options["data_dir"] = str(args.concept)
    else:
        options["sets"]["concept"] = None
        print(f"no ConceptARC (--concept {args.concept}): the recipe without it")
    task = ArcTask()
    task.configure(options)
    out = args.data_dir or Path.home() / ".cache" / "trm" / "bench" / f"arc-{args.recipe}"

    started = time.perf_counter()
    task.build_dataset(options, out)
    built = time.perf_counter() - started
    summary = json.loads((out / "dataset.json").read_text())
    disk = _size(out) / 2**20
    print(
        f"data: {built:.1f} s (the build itself: {summary['seconds']} s), {disk:,.0f} MiB on disk"
    )
    print(f"  tasks {summary['tasks']}, training pairs {summary['train_examples']}, "
          f"test inputs {summary['test_inputs']}, "
          f"test rows {summary['test_examples']}")  # fmt: skip
    print(f"  augmentations per task: {summary['augmentations_per_task']}, "
          f"puzzle identifiers {summary['puzzle_identifiers']:,}")  # fmt: skip

    train, test = read_split(out / "train", task), read_split(out / "test", task)
    rng = np.random.default_rng(0)
    rows, variants = rng.integers(len(train), size=4096), rng.integers(1000, size=4096)
    task.training_example(train, 0, 0, 0)  # load the tables once
    started = time.perf_counter()
    for index, variant in zip(rows, variants, strict=True):
        task.training_example(train, int(index), int(variant), mix_seed(0, index, variant))
    per_row = (time.perf_counter() - started) / len(rows)
    print(
        f"training rows: {per_row * 1e6:.0f} us each, {per_row * 768 * 1e3:.0f} ms per batch of 768"
    )

    labels = np.asarray(test.labels)
    run = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    metrics, _ = task.evaluate_predictions(
        test, np.arange(len(test)), labels, np.zeros(len(test)), run, 0
    )
    voted = time.perf_counter() - started
    tasks = {name: len(t["test"]) for name, t in task.tables(test).test_tasks.items()}
    problems = submission_problems(json.loads((run / "submission.json").read_text()), tasks)
    print(f"evaluator: {voted:.1f} s for {len(test):,} rows; pass@1 with the labels as "
          f"predictions {metrics['pass@1']:.3f} over {metrics['test_inputs']:.0f} test "
          f"inputs; submission.json for {len(tasks)} tasks, "
          f"{len(problems)} problems")  # fmt: skip

    if args.skip_checkpoint:
        return
    model_config = {**preset["model"], "vocab_size": task.vocab_size, "seq_len": task.seq_len,
                    "num_puzzle_identifiers": summary["puzzle_identifiers"],
                    "dtype": "float32"}  # fmt: skip
    model = trm_core.build_model(model_config, device="cpu")
    table = next(b for n, b in model.named_buffers() if n.endswith("puzzle_embedding.weights"))
    table.normal_()  # a trained table is dense
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "last.pt"
        started = time.perf_counter()
        trm_core.save_checkpoint(path, model)
        saved = time.perf_counter() - started
        started = time.perf_counter()
        trm_core.load_checkpoint(path)
        loaded = time.perf_counter() - started
        table_mib = table.numel() * 4 / 2**20
        weights_mib = model.num_parameters() * 4 / 2**20
        print(f"checkpoint: {path.stat().st_size / 2**20:,.0f} MiB (table {table_mib:,.0f} MiB, "
              f"weights {weights_mib:.0f} MiB), written in {saved:.1f} s, "
              f"read back in {loaded:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
