"""The models the benchmark scripts and docs/performance.md time, by name: each is an
installed task's preset as ``trm-bench`` takes it (``--task``, ``--preset``, ``--set``).

"tiny" is the paper's architecture at hidden size 128 (the README's trm-bench table).
"""

from __future__ import annotations

#: name -> trm-bench arguments
MODELS: dict[str, list[str]] = {
    "tiny-sudoku-mlp": ["--task", "sudoku", "--preset", "paper-mlp",
                        "--set", "model.hidden_size=128"],
    "tiny-sudoku-att": ["--task", "sudoku", "--preset", "paper-attention",
                        "--set", "model.hidden_size=128",
                        "--set", "model.options.attention.num_heads=4"],
    "paper-sudoku-mlp": ["--task", "sudoku", "--preset", "paper-mlp"],
    "paper-sudoku-att": ["--task", "sudoku", "--preset", "paper-attention"],
    "paper-maze-att": ["--task", "maze", "--preset", "paper"],
    # ARC gives every augmented puzzle its own identifier; the real table (~10^6 rows)
    # would not change the step's work, only its memory: a small one stands in.
    "paper-arc-att": ["--task", "arc", "--preset", "paper-arc1",
                      "--set", "model.num_puzzle_identifiers=1024"],
}  # fmt: skip


def model_config(name: str, dtype: str = "auto") -> dict:
    """The model config mapping of ``name`` (what trm-bench builds for it)."""
    from trm_core.bench import bench_config

    args = MODELS[name]
    task, preset = args[1], args[3]
    sets = [args[i + 1] for i in range(4, len(args), 2)]
    return bench_config(task, preset, overrides=sets, dtype=dtype)[0]
