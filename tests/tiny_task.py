"""A tiny task for the trainer's tests: reverse a row of 8 digits.

Small enough to learn on CPU in seconds, with a real augmentation (relabelling
the digits by a permutation drawn from the seed) and its inverse.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

import trm_core
import trm_core.config
from trm_core import Task, hookimpl, read_split, write_split

DIGITS = 5  # tokens 1..5; 0 is PAD
LENGTH = 8

PRESET = {
    "model": {
        "mixer": "mlp",
        "options": {"grid": {"positions": "none"}, "attention": {"num_heads": 2}},
        "hidden_size": 32,
        "expansion": 2,
        "cycles": 2,
        "think_steps": 2,
        "puzzle_emb_len": 2,
        "halt_max_steps": 2,
        "dtype": "float32",
    },
    "data": {"options": {"train": 256, "test": 64, "seed": 0}, "augmentations": 3},
    "train": {
        "global_batch_size": 32,
        "steps": 40,
        "lr": 3e-3,
        "lr_warmup_steps": 4,
        "weight_decay": 0.01,
        "puzzle_emb_lr": 1e-2,
        "puzzle_emb_weight_decay": 0.01,
        "ema_rate": 0.9,
        "log_interval": 5,
    },
    "eval": {"interval_steps": 20, "batch_size": 64, "images": 2},
    "by_mixer": {"attention": {"model": {"options": {"grid": {"positions": "rope"}}}}},
}


class ReverseTask(Task):
    """Input: 8 digits; answer: the same digits reversed."""

    @property
    def vocab_size(self) -> int:
        return DIGITS + 1

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (1, LENGTH)

    def presets(self) -> dict[str, dict[str, Any]]:
        return {"cpu": PRESET, "paper": PRESET}

    def build_dataset(self, options: dict[str, Any], out_dir: Path) -> Path:
        out_dir = Path(out_dir)
        try:
            read_split(out_dir / "train", self), read_split(out_dir / "test", self)
            return out_dir  # already built from these options
        except trm_core.DataError:
            pass
        rng = np.random.default_rng(options.get("seed", 0))
        for split in ("train", "test"):
            inputs = rng.integers(1, DIGITS + 1, size=(options[split], LENGTH))
            if split == "train" and options.get("train_file"):  # a user's file of rows first
                inputs = np.concatenate(
                    [self.read_data(Path(options["train_file"])).inputs, inputs]
                )
            ids = None
            if options.get("identifiers"):  # a puzzle identifier each: 1..k (test: 1..k/2)
                k = options["identifiers"] // (1 if split == "train" else 2)
                ids = 1 + np.arange(len(inputs)) % k
            write_split(out_dir / split, inputs, inputs[:, ::-1], ids, task="reverse")
        if options.get("extra"):  # an extra held-out set, scored once after training
            inputs = rng.integers(1, DIGITS + 1, size=(options["extra"], LENGTH))
            write_split(out_dir / "extra" / "more", inputs, inputs[:, ::-1], task="reverse")
        return out_dir

    def _permutation(self, seed: int) -> np.ndarray:
        table = np.arange(DIGITS + 1)
        table[1:] = 1 + np.random.default_rng(seed).permutation(DIGITS)
        return table  # PAD stays 0

    def augment(self, inputs, labels, seed):
        table = self._permutation(seed)
        return table[inputs], table[labels]

    def inverse_augment(self, tokens, seed):
        return np.argsort(self._permutation(seed))[tokens]

    def metrics(self, inputs, labels, predictions):
        return {"valid_digits": float(((predictions >= 1) & (predictions <= DIGITS)).mean())}

    def render_text(self, tokens) -> str:
        return "".join(str(int(t) - 1) if t else "." for t in tokens)

    def render_image(self, inputs, prediction, target):
        rows = [inputs, prediction, target]
        image = np.zeros((3 * 4, LENGTH * 4, 3), dtype=np.uint8)
        for r, row in enumerate(rows):
            for c, token in enumerate(row):
                shade = int(token) * 40
                image[r * 4 : r * 4 + 3, c * 4 : c * 4 + 3] = (shade, 255 - shade, 128)
        return image

    def parse_puzzle(self, text: str) -> np.ndarray:
        text = text.strip()
        if len(text) != LENGTH or not all(ch in "01234" for ch in text):
            raise ValueError(f"expected {LENGTH} digits 0-4, got {text!r}")
        return np.array([int(ch) + 1 for ch in text])

    def typed_puzzle(self, cells: list[list[str]]) -> str:
        for column, cell in enumerate(cells[0], start=1):
            if cell.strip() not in ("", *"01234"):
                raise ValueError(f"row 1, column {column}: {cell!r} is not a digit 0-4")
        return "".join(cell.strip() or "0" for cell in cells[0])

    def read_data(self, path: Path) -> trm_core.Split:
        """A ``.rev`` file: a row of digits 0-4 a line; the answer is the row reversed."""
        path = Path(path)
        if path.suffix != ".rev":
            raise trm_core.DataError(f"{path}: not a reverse file (*.rev)")
        rows = []
        for number, line in enumerate(trm_core.read_text_file(path).splitlines(), start=1):
            try:
                rows.append(self.parse_puzzle(line))
            except ValueError as error:
                raise trm_core.DataError(f"{path}, line {number}: {error}") from None
        inputs = np.stack(rows)
        return trm_core.make_split(path, inputs, inputs[:, ::-1], task="reverse")

    def source_files(self, options) -> list[Path]:
        """A file of rows to prepend to the training split (``train_file``), if given."""
        return [Path(options["train_file"])] if options.get("train_file") else []

    def export_state(self, data_dir: Path) -> dict[str, Any]:
        """A toy state: the training split's size and first row."""
        train = read_split(Path(data_dir) / "train", self)
        return {"train_examples": len(train), "first_row": np.array(train.inputs[0])}

    def import_state(self, state) -> None:
        if set(state) != {"train_examples", "first_row"}:
            raise trm_core.DataError(f"a reverse state holds train_examples and first_row: {state}")
        self.state = dict(state)


@hookimpl
def register_tasks(register):
    register("reverse", ReverseTask)


def registry() -> trm_core.Registry:
    """trm-core's own plugins and this task, and nothing else installed."""
    found = trm_core.Registry(select={"trm-core"})
    found.add_plugin(sys.modules[__name__], distribution="tests")
    return found


def run_config(**sections: dict[str, Any]) -> trm_core.RunConfig:
    """The cpu preset as a RunConfig, with each section's values updated by ``sections``
    (e.g. ``model={"dtype": "bfloat16"}``); one puzzle identifier unless a section says."""
    mapping = trm_core.config.merge({}, PRESET)
    mapping.pop("by_mixer")
    mapping["task"], mapping["preset"] = "reverse", "cpu"
    mapping["model"].update(
        vocab_size=DIGITS + 1,
        seq_len=LENGTH,
        num_puzzle_identifiers=2,  # blank 0 and id 1
    )
    for name, values in sections.items():
        mapping[name].update(values)
    return trm_core.config.build_run_config(mapping)
