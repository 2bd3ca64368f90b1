"""How large a task preset's model folder is, and how long it takes to write and load.

    python benchmarks/export_size.py --task arc --preset paper-arc1 \
        --set data.options.data_dir=../shared/data/arc

Builds (or reuses) the preset's data, builds its model with untrained weights (the
sizes are those of a trained one), exports it in float32 and in bfloat16 the way
``trm-export`` does, and prints each folder's files, the puzzle-embedding rows kept
and the time to write and to ``load_model`` it. The folders are written under a
temporary folder and removed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import trm_core
from trm_core.distributed import World
from trm_core.export import export_model
from trm_core.inference import LoadedModel
from trm_core.run import prepare, resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--preset")
    parser.add_argument("--mixer")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    mapping, task, chosen = resolve(
        args.task, mixer=args.mixer, preset=args.preset, overrides=args.set, cuda=False
    )
    mapping["device"] = "cpu"
    world = World(device=torch.device("cpu"))
    started = time.perf_counter()
    config, data_dir = prepare(mapping, task, world, log=print)
    print(f"{args.task} {chosen}: data ready in {time.perf_counter() - started:.1f} s")
    torch.manual_seed(0)
    model = trm_core.TRMModel(config.model, device="cpu").eval()
    loaded = LoadedModel(f"{args.task}/{config.preset}", config, task, model, step=0, ema=True)
    print(f"model: {model.num_parameters():,} parameters, {config.model.num_puzzle_identifiers:,} "
          "puzzle identifiers")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        for dtype in ("float32", "bfloat16"):
            out = Path(scratch) / dtype
            started = time.perf_counter()
            export_model(loaded, out, dtype=dtype, data_dir=data_dir)
            wrote = time.perf_counter() - started
            sizes = {path.name: path.stat().st_size for path in sorted(out.iterdir())}
            kept = json.loads((out / "config.json").read_text())["weights"]["puzzle_embeddings"]
            started = time.perf_counter()
            trm_core.load_model(out)
            read = time.perf_counter() - started
            total = sum(sizes.values())
            print(
                f"{dtype}: {total:,} bytes ({total / 2**20:,.1f} MiB) written in {wrote:.1f} s, "
                f"loaded in {read:.3f} s; " + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
            )
            for key, info in kept.items():
                print(f"  {key}: {info['rows_kept']:,} of {info['identifiers']:,} rows kept")


if __name__ == "__main__":
    main()
