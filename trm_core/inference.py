"""Using a trained run: load its model (EMA weights) and answer new puzzles.

Task commands such as ``trm-solve`` build on this::

    run = trm_core.load_run("runs/sudoku-mlp-20260101-120000")
    predictions, halt_logits = run.predict(inputs)  # [N, S] tokens in, [N, S] out
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np
import torch

from .checkpoint import CheckpointError, check_state, model_from_payload, read_checkpoint
from .config import RunConfig
from .devices import resolve_device
from .interfaces import Task
from .model import TRMModel
from .registry import Registry, get_registry
from .run import read_config


@attrs.define
class LoadedRun:
    """A run folder's config, task and model, ready to predict (eval mode)."""

    run_dir: Path
    config: RunConfig
    task: Task
    model: TRMModel
    step: int  # the training step the checkpoint was written at
    ema: bool  # whether the weights are the EMA weights

    @torch.no_grad()
    def predict(
        self,
        inputs: np.ndarray,
        puzzle_identifiers: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Answer puzzles with every supervision step (``halt_max_steps``), as evaluation does.

        Args:
            inputs: [N, S] input tokens (``Task.parse_puzzle`` makes one row).
            puzzle_identifiers: [N]; default the shared identifier 1 (tasks with
                one identifier, such as Sudoku and Maze).

        Returns:
            ``(predictions [N, S] tokens, halt_logits [N])``.
        """
        inputs = np.asarray(inputs, dtype=np.int64)
        if inputs.ndim != 2 or inputs.shape[1] != self.model.config.seq_len:
            raise ValueError(
                f"inputs must be [N, {self.model.config.seq_len}] tokens, got {inputs.shape}"
            )
        if puzzle_identifiers is None:
            puzzle_identifiers = np.ones(len(inputs), dtype=np.int64)
        device = next(self.model.parameters()).device
        predictions, halts = [], []
        for start in range(0, len(inputs), batch_size):
            batch = {
                "inputs": torch.from_numpy(inputs[start : start + batch_size]).to(device),
                "puzzle_identifiers": torch.as_tensor(
                    np.asarray(puzzle_identifiers[start : start + batch_size], dtype=np.int64),
                    device=device,
                ),
            }
            carry = self.model.initial_carry(batch)
            for _ in range(self.model.config.halt_max_steps):
                carry, out = self.model(carry, batch)
            predictions.append(out["logits"].argmax(-1).cpu().numpy())
            halts.append(out["halt_logits"].float().cpu().numpy())
        if not predictions:
            return np.zeros((0, inputs.shape[1]), dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(predictions), np.concatenate(halts)


def load_run(
    run_dir: str | os.PathLike,
    device: str | torch.device | None = "cpu",
    registry: Registry | None = None,
) -> LoadedRun:
    """Load a run folder's last checkpoint, with its EMA weights when it has them."""
    device = resolve_device(device)  # a device this machine lacks fails before any reading
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    registry = registry or get_registry()
    task = registry.get("task", config.task)()
    task.configure(dict(config.data.options))
    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint yet ({path} is missing)")
    payload = read_checkpoint(path)
    model = model_from_payload(payload, path, device, registry)  # checked key by key
    shadows = payload.get("ema")
    if shadows:
        parameters = dict(model.named_parameters())
        check_state(
            {k: parameters[k].shape for k in shadows if k in parameters}, shadows, f"{path} EMA"
        )
        with torch.no_grad():
            for name, value in shadows.items():
                parameters[name].copy_(value)
    return LoadedRun(run_dir, config, task, model, int(payload.get("step", 0)), bool(shadows))
