"""Race two real ``trm-run`` processes on one empty data cache folder, many times, per task:

    python scripts/cache_race.py                      # 30 pairs for each of the four tasks
    python scripts/cache_race.py --repeat 3 --task life --task arc --keep

Each repetition starts two ``trm-run --task T --device cpu --max-steps 1 ...
--set data.cache_dir=FRESH_EMPTY_DIR --out RUNS`` processes at the same moment
(small data options whose build takes about a second, so that the two builds
overlap, and a one-step run of a tiny model), waits for both and checks that
both exited 0, that both used the same data folder, that the folder is complete
(``dataset.json`` and its manifest of sizes and checksums) and that each left
its own run folder. It prints one line per repetition (the times, and whether
the builds overlapped: one waited for the other's lock) and a summary per task,
``task T: N of N pairs both finished``. A failed process has its stderr tail
printed. The data and runs go to a temporary folder (``--keep`` keeps it).
ARC reads small ARC Prize JSON files the script writes; Life is the example
task of examples/trm-task-life (skipped with a note when not installed).

Exit status: 0 when every pair finished, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = ("sudoku", "maze", "arc", "life")

#: The model and the run, as small as they go: the race is in the data, not the training.
COMMON = [
    "model.dtype=float32", "model.hidden_size=16", "model.halt_max_steps=2",
    "train.global_batch_size=8", "eval.max_examples=8", "eval.batch_size=64",
]  # fmt: skip


def task_settings(task: str, files: Path) -> list[str]:
    """Data options of ``task`` whose build takes about a second (``files``: where the ARC
    JSON files are): long enough for the two processes' builds to overlap."""
    if task == "sudoku":
        generated = "source: generate, givens: [50, 60], minimal: false"
        return [f"data.options.train={{{generated}, count: 150}}",
                f"data.options.test={{{generated}, count: 8}}",
                "data.options.extra_tests={}", "data.augmentations=3"]  # fmt: skip
    if task == "maze":
        return ["data.options.side=7", "data.options.train.count=20000",
                "data.options.test.count=8"]  # fmt: skip
    if task == "arc":
        sets = (f"{{a: {{source: json, challenges: {files / 'challenges.json'}, "
                f"solutions: {files / 'solutions.json'}}}}}")  # fmt: skip
        return [f"data.options.sets={sets}", "data.options.test_set=a", "data.options.canvas=6",
                "data.options.augmentations=400", "data.augmentations=399"]  # fmt: skip
    return ["data.options.side=6", "data.options.train_count=500000", "data.options.test_count=16"]


def write_arc_files(folder: Path) -> None:
    """Twelve small ARC tasks (2x2 to 4x4 grids) and their solutions."""
    challenges, solutions = {}, {}
    for n in range(12):
        side = 2 + n % 3
        grid = [[(r * side + c + n) % 10 for c in range(side)] for r in range(side)]
        flipped = [row[::-1] for row in grid]
        challenges[f"task{n}"] = {
            "train": [{"input": grid, "output": flipped}, {"input": flipped, "output": grid}],
            "test": [{"input": grid[::-1]}],
        }
        solutions[f"task{n}"] = [[row[::-1] for row in grid[::-1]]]
    (folder / "challenges.json").write_text(json.dumps(challenges))
    (folder / "solutions.json").write_text(json.dumps(solutions))


def installed_tasks() -> set[str]:
    from trm_core.registry import get_registry

    return set(get_registry().names("task"))


def race(task: str, files: Path, root: Path) -> tuple[list[subprocess.CompletedProcess], float]:
    """Two trm-run processes of ``task`` started together on the empty ``root/data``."""
    (root / "data").mkdir(parents=True)
    command = ["trm-run", "--task", task, "--device", "cpu", "--max-steps", "1",
               "--out", str(root / "runs")]  # fmt: skip
    for setting in [*COMMON, *task_settings(task, files), f"data.cache_dir={root / 'data'}"]:
        command += ["--set", setting]
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core each: the pair runs side by side
    procs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate()
        done.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return done, time.monotonic() - started


def problems(results: list[subprocess.CompletedProcess], root: Path) -> list[str]:
    """What went wrong with a finished pair (empty: both finished and agree)."""
    from trm_core.taskkit import _check

    found = [f"process {n} exited {r.returncode}" for n, r in enumerate(results, 1) if r.returncode]
    if found:
        return found
    used = {line.split()[1] for r in results for line in r.stdout.splitlines()
            if line.startswith("data: ")}  # fmt: skip
    if len(used) != 1:
        return [f"the two runs used different data folders: {sorted(used)}"]
    problem, _ = _check(Path(used.pop()))
    if problem is not None:
        return [f"the data folder is not complete: {problem}"]
    runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    if len(runs) != 2:
        return [f"{len(runs)} run folders in {root / 'runs'}, expected 2"]
    return []


def overlap(results: list[subprocess.CompletedProcess]) -> str:
    said = "".join(r.stderr for r in results)
    if "waiting for another process" in said:
        return "overlapped: one waited for the other's lock"
    if "meanwhile; using it" in said:
        return "overlapped: both built, one rename won"
    builds = said.count("building the ")
    return "one built, the other reused it" if builds == 1 else f"{builds} builds"


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Race two trm-run processes on one empty data cache folder, per task."
    )
    parser.add_argument("--repeat", type=int, default=30, help="pairs per task (default 30)")
    parser.add_argument(
        "--task", action="append", choices=TASKS, help="a task to race (repeatable; default all)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data and run folders")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if shutil.which("trm-run") is None:
        print("error: trm-run is not on PATH (pip install -e . first)", file=sys.stderr)
        return 2
    tasks = args.task or list(TASKS)
    installed = installed_tasks()
    root = Path(tempfile.mkdtemp(prefix="trm-cache-race-"))
    write_arc_files(root)
    summary, failed = [], False
    started = time.monotonic()
    try:
        for task in tasks:
            if task not in installed:
                summary.append(f"task {task}: not installed, skipped")
                continue
            finished = 0
            for n in range(1, args.repeat + 1):
                folder = root / task / str(n)
                results, seconds = race(task, root, folder)
                found = problems(results, folder)
                if found:
                    failed = True
                    print(f"{task} {n}/{args.repeat}: FAILED after {seconds:.1f}s: "
                          + "; ".join(found), flush=True)  # fmt: skip
                    crashed = [r.returncode != 0 for r in results]
                    for number, result in enumerate(results, 1):
                        if crashed[number - 1] or not any(crashed):
                            print(f"  process {number} stderr:\n{tail(result.stderr)}", flush=True)
                else:
                    finished += 1
                    print(f"{task} {n}/{args.repeat}: both finished in {seconds:.1f}s "
                          f"({overlap(results)})", flush=True)  # fmt: skip
                if not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)
            summary.append(f"task {task}: {finished} of {args.repeat} pairs both finished")
    finally:
        print()
        for line in summary:
            print(line)
        print(f"{time.monotonic() - started:.0f}s in all")
        if args.keep:
            print(f"data and runs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
