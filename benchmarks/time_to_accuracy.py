"""Time to accuracy: recipes trained side by side, several seeds each, their test accuracy
against training compute (FLOPs) and wall-clock seconds.

    python benchmarks/time_to_accuracy.py --task sudoku --seeds 0 1 2 \\
        --recipe base= --recipe n1=model.think_steps=1 \\
        --recipe cur=train.curriculum.a.until=0.5,train.curriculum.a.think_steps=1 \\
        --json results.json

Each ``--recipe NAME=KEY=VALUE,KEY=VALUE`` is ``trm-run --task TASK --mixer MIXER
--device cpu`` with those ``--set`` values (and ``train.seed``); the runs go one after
another (never in parallel: on a few cores parallel runs thrash and their timings mean
nothing), recipe by recipe within a seed, so a slow spell of the machine hits every recipe
alike. ``--trm-run CMD`` runs another installation's ``trm-run`` (0.2's, say) for the
recipes named by ``--other NAME``.

Printed: one line per run, then per recipe the final test exact accuracy (mean, min-max
over seeds), the extra splits' (``hard/...``), the training FLOPs, and the seconds of
training (``train_seconds`` in metrics.json: evaluations left out) and of the whole run
(the summary line's time: training and evaluations, without the setup), then the curve:
mean test accuracy at each evaluation against mean FLOPs and training seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from trm_core.bench import machine_summary

DONE = re.compile(r"^done: step (\d+) of (\d+) in (?:(\d+)m)?(\d+)s")


def parse_recipe(text: str) -> tuple[str, list[str]]:
    name, _, settings = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"--recipe NAME=KEY=VALUE,...: no name in {text!r}")
    return name, [s for s in settings.split(",") if s]


def run_once(command: list[str], out: Path, log: Path) -> dict:
    began = time.monotonic()
    with open(log, "w") as stream:
        # In the run's own folder: a checkout's folder on the path must not shadow the
        # installation --other-trm-run names.
        code = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=out).returncode
    wall = time.monotonic() - began
    if code != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({code}); see {log}")
    return {**read_run(out, log), "wall_seconds": wall}


def read_run(out: Path, log: Path) -> dict:
    """One finished run: its evaluations (``points``), final accuracies and seconds."""
    text = log.read_text()
    done = [DONE.match(line) for line in text.splitlines()]
    done = [m for m in done if m][-1]
    run_seconds = int(done.group(3) or 0) * 60 + int(done.group(4))
    [run] = [p for p in out.iterdir() if p.is_dir()]
    history = json.loads((run / "metrics.json").read_text())
    points = [
        {
            "step": record["step"],
            "flops": record.get("train_flops"),
            "train_seconds": record.get("train_seconds"),
            "exact_accuracy": record["metrics"]["exact_accuracy"],
        }
        for record in history
    ]
    final = history[-1]["metrics"]
    extra = {k: v for k, v in final.items() if k.endswith("/exact_accuracy")}
    return {"points": points, "final": final["exact_accuracy"], "extra": extra,
            "run_seconds": run_seconds, "run": str(run)}  # fmt: skip


def summarise(name: str, runs: list[dict]) -> dict:
    finals = [r["final"] for r in runs]
    out = {
        "recipe": name,
        "seeds": len(runs),
        "test_mean": statistics.mean(finals),
        "test_min": min(finals),
        "test_max": max(finals),
        "run_seconds": statistics.mean(r["run_seconds"] for r in runs),
    }
    for key in runs[0]["extra"]:
        values = [r["extra"][key] for r in runs]
        out[key] = {"mean": statistics.mean(values), "min": min(values), "max": max(values)}
    last = [r["points"][-1] for r in runs]
    if all(p["flops"] is not None for p in last):
        out["tflops"] = statistics.mean(p["flops"] for p in last) / 1e12
    if all(p["train_seconds"] is not None for p in last):
        out["train_seconds"] = statistics.mean(p["train_seconds"] for p in last)
    curve = []
    for i in range(min(len(r["points"]) for r in runs)):
        at = [r["points"][i] for r in runs]
        curve.append({
            "step": at[0]["step"],
            "tflops": None if at[0]["flops"] is None
            else statistics.mean(p["flops"] for p in at) / 1e12,
            "train_seconds": None if at[0]["train_seconds"] is None
            else statistics.mean(p["train_seconds"] for p in at),
            "exact_accuracy": statistics.mean(p["exact_accuracy"] for p in at),
        })  # fmt: skip
    out["curve"] = curve
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="sudoku")
    parser.add_argument("--mixer", default="mlp")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipe", type=parse_recipe, action="append", default=[],
                        metavar="NAME=KEY=VALUE,...")  # fmt: skip
    parser.add_argument(
        "--trm-run", default="trm-run", help="the trm-run command (default: PATH's)"
    )
    parser.add_argument("--other", action="append", default=[], metavar="NAME",
                        help="a recipe run with --other-trm-run instead")  # fmt: skip
    parser.add_argument("--other-trm-run", help="another installation's trm-run command")
    parser.add_argument("--json", help="write every run and the summaries here")
    parser.add_argument("--collect", nargs="+", metavar="FOLDER",
                        help="train nothing: summarise the NAME-seedN runs kept in these "
                        "--keep folders (of several sittings, say)")  # fmt: skip
    parser.add_argument("--keep", help="keep the run folders under this folder")
    args = parser.parse_args(argv)

    if args.collect:
        results = collect([Path(folder) for folder in args.collect])
        return report(results, args.json)
    if not args.recipe:
        parser.error("name at least one --recipe (or --collect kept runs)")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tta-"))
    results: dict[str, list[dict]] = {name: [] for name, _ in args.recipe}
    for seed in args.seeds:
        for name, settings in args.recipe:
            program = args.other_trm_run if name in args.other else args.trm_run
            if not program:
                parser.error(f"--other {name} needs --other-trm-run")
            out = root / f"{name}-seed{seed}"
            out.mkdir(parents=True, exist_ok=False)
            command = [*shlex.split(program), "--task", args.task, "--mixer", args.mixer,
                       "--preset", args.preset, "--device", "cpu", "--out", str(out)]  # fmt: skip
            for setting in [*settings, f"train.seed={seed}"]:
                command += ["--set", setting]
            result = run_once(command, out, root / f"{name}-seed{seed}.log")
            results[name].append(result)
            extra = " ".join(f"{k} {v:.3f}" for k, v in result["extra"].items())
            print(f"{name} seed {seed}: test {result['final']:.3f} {extra} "
                  f"run {result['run_seconds']}s wall {result['wall_seconds']:.0f}s",
                  flush=True)  # fmt: skip
    return report(results, args.json)


def collect(folders: list[Path]) -> dict[str, list[dict]]:
    """``{recipe: [run, ...]}`` of the finished ``NAME-seedN`` runs in ``folders``."""
    results: dict[str, list[dict]] = {}
    for folder in folders:
        for log in sorted(folder.glob("*-seed*.log")):
            name, _, seed = log.stem.rpartition("-seed")
            out = folder / log.stem
            try:
                run = read_run(out, log)
            except (IndexError, ValueError, OSError):
                print(f"skipped {log}: not a finished run", file=sys.stderr)
                continue
            results.setdefault(name, []).append({**run, "seed": int(seed)})
    return results


def report(results: dict[str, list[dict]], json_path: str | None) -> int:
    summaries = [summarise(name, runs) for name, runs in results.items() if runs]
    print()
    for s in summaries:
        extra = " ".join(
            f"{k} {v['mean']:.3f} ({v['min']:.3f}-{v['max']:.3f})"
            for k, v in s.items() if k.endswith("/exact_accuracy")
        )  # fmt: skip
        flops = f" {s['tflops']:.1f} TFLOP" if "tflops" in s else ""
        trained = f" train {s['train_seconds']:.0f}s" if "train_seconds" in s else ""
        print(f"{s['recipe']:>12}: test {s['test_mean']:.3f} ({s['test_min']:.3f}-"
              f"{s['test_max']:.3f}) {extra}{flops}{trained} run {s['run_seconds']:.0f}s "
              f"[{s['seeds']} seeds]")  # fmt: skip
    for s in summaries:
        print(f"\n{s['recipe']} curve: step, TFLOP, train s, test exact")
        for p in s["curve"]:
            tf = "-" if p["tflops"] is None else f"{p['tflops']:.1f}"
            ts = "-" if p["train_seconds"] is None else f"{p['train_seconds']:.0f}"
            print(f"  {p['step']:>6} {tf:>7} {ts:>6} {p['exact_accuracy']:.3f}")
    if json_path:
        machine = machine_summary(torch.device("cpu"))
        Path(json_path).write_text(json.dumps(
            {"machine": machine, "runs": results, "summaries": summaries}, indent=1
        ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
