"""The Life data set, generated from ``data.options``::

    seed: 0            # the generator's seed (train and test use separate streams)
    side: 8            # boards are side x side tori
    train_count: 2000  # training boards
    test_count: 500    # test boards
    density: 0.375     # each cell of a board is alive with this probability

Each example is a random board (the input) and its next generation (the label).
Boards are drawn independently, so a test board may repeat a training board
only on tiny sides; the build counts such repeats in ``dataset.json``. So no
count is out of reach for want of distinct boards; but every board is drawn at
once, so train and test together may hold at most ``MAX_CELLS`` cells.

A file of boards (``trm-eval --data FILE``) holds one board a line, in the
one-line form ``trm-solve`` reads: rows of ``.`` (dead) and ``#`` (alive)
separated by ``/``. Empty lines are skipped. Each label is again the board's
next generation, by the same rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import (
    ConfigError,
    DataError,
    build_once,
    mix_seed,
    read_text_file,
    say,
    write_split,
)

from .board import ALIVE, DEAD, SYMBOLS, parse, step

MIN_SIDE, MAX_SIDE = 3, 32
#: The most cells (boards x side x side, train and test together) a build draws: they
#: are all in memory at once, about 16 bytes a cell while they are made.
MAX_CELLS = 2**28


def _at_least(low: int):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"data.options.{attribute.name} must be an integer >= {low}")

    return check


def _side(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int) or not MIN_SIDE <= value <= MAX_SIDE:
        raise ConfigError(f"data.options.side must be an integer in {MIN_SIDE}..{MAX_SIDE}")


def _density(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError("data.options.density must be a probability strictly between 0 and 1")


@attrs.define(kw_only=True, frozen=True)
class LifeOptions:
    seed: int = attrs.field(default=0, validator=_at_least(0))
    side: int = attrs.field(default=8, validator=_side)
    train_count: int = attrs.field(default=2000, validator=_at_least(1))
    test_count: int = attrs.field(default=500, validator=_at_least(1))
    density: float = attrs.field(default=0.375, validator=_density)


def check_size(options: LifeOptions) -> None:
    """Refuse, before drawing, counts too large to draw at once, naming them. (Checked
    by the build, not when the options are read: a model trained on a larger set
    elsewhere still loads.)"""
    cells = (options.train_count + options.test_count) * options.side**2
    if cells > MAX_CELLS:
        raise ConfigError(
            f"data.options.train_count={options.train_count} + "
            f"data.options.test_count={options.test_count} boards of side {options.side} "
            f"(data.options.side) are {cells:,} cells, more than the {MAX_CELLS:,} the "
            "generator draws at once; lower the counts or the side"
        )


def random_boards(count: int, options: LifeOptions, stream: int) -> np.ndarray:
    """[count, side, side] boards, each cell alive with probability ``density``."""
    rng = np.random.default_rng(mix_seed(options.seed, stream))
    alive = rng.random((count, options.side, options.side)) < options.density
    return np.where(alive, ALIVE, DEAD).astype(np.uint8)


def build(parsed: LifeOptions, out_dir: Path) -> Path:
    """Write the ``train`` and ``test`` splits into ``out_dir``, unless already there."""
    if not (Path(out_dir) / "dataset.json").exists():
        check_size(parsed)  # refused before anything is made (a rebuild checks again)

    def write(folder: Path) -> dict[str, Any]:
        check_size(parsed)
        say(f"generating {parsed.train_count} + {parsed.test_count} Life boards")
        summary: dict[str, Any] = {"options": attrs.asdict(parsed)}
        splits = {"train": parsed.train_count, "test": parsed.test_count}
        seen: set[bytes] = set()
        for stream, (name, count) in enumerate(splits.items()):
            boards = random_boards(count, parsed, stream)
            inputs = boards.reshape(count, -1)
            labels = step(boards).reshape(count, -1)
            write_split(folder / name, inputs, labels, task="life", side=parsed.side)
            keys = [row.tobytes() for row in inputs]
            summary[name] = {
                "boards": count,
                "alive_after": round(float((labels == ALIVE).mean()), 4),
                "changed_cells": round(float((labels != inputs).mean()), 4),
            }
            if name == "test":
                summary[name]["seen_in_training"] = sum(key in seen for key in keys)
            seen.update(keys)
        return summary

    return build_once(out_dir, write, what="the Life data set")


#: What a file of boards holds, as :func:`read_boards`' errors say.
FORMAT = "one board a line, rows of . (dead) and # (alive) separated by /"


def read_boards(path: Path, side: int) -> tuple[np.ndarray, list[int]]:
    """The boards of a file (see the module's docstring) and the line of each:
    ([N, side * side] tokens, N line numbers).

    Raises DataError naming the file, and the line where it applies: a file that is
    missing, not UTF-8 text or holds no board; a line that is not a board (a file of
    another format), a board of another side than the model's, or a malformed one.
    """
    boards, lines = [], []
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}, line {number}"
        if not set(line) <= {*SYMBOLS, "/"}:
            raise DataError(f"{where}: not a Life board: expected {FORMAT}, got {line[:30]!r}")
        rows = line.split("/")
        size = len(rows)
        if size != side and all(len(row) == size for row in rows):
            raise DataError(
                f"{where}: a {size}x{size} board, but the model takes {side}x{side} boards "
                "(its data.options.side)"
            )
        try:
            boards.append(parse(line, side))
        except ValueError as error:
            raise DataError(f"{where}: {error} (expected {FORMAT})") from None
        lines.append(number)
    if not boards:
        raise DataError(f"{path}: no board; expected {FORMAT}")
    return np.stack(boards), lines
