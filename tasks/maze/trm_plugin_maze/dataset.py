"""Building the Maze data set from ``data.options``.

    seed: 0
    side: 30                      # every maze of the data set is side x side
    train: {source: generate, count: 1000, wall_probability: [0.3, 0.5], min_length: null}
    test:  {source: generate, count: 1000}

Sources: ``generate`` (offline, the default: :mod:`trm_plugin_maze.generate`),
``csv`` (a Maze-Hard-format file, ``path: FILE``) and ``hub`` (the same CSV
from the Hugging Face Hub: ``repo`` and ``split``; needs the ``hub`` extra and
the network). ``count`` subsamples a CSV split. Generated splits use separate
seeds, and a generated test maze equal to a training maze under any of the 8
dihedral transforms (or to another test maze) is replaced, so train and test
never share a maze.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from trm_core import (
    ConfigError,
    DataError,
    SourceOptions,
    build_once,
    hub_file,
    mix_seed,
    one_of,
    say,
    structure,
    subsample,
    write_split,
)

from .augment import canonical
from .generate import MAX_SIDE, MazeSpec, generate
from .sources import Mazes, read_csv

SOURCES = ("generate", "csv", "hub")
HUB_REPO = "sapientinc/maze-30x30-hard-1k"


@attrs.define(kw_only=True)
class SplitOptions(SourceOptions):
    """Where one split's mazes come from.

    ``count``: generate: how many; csv/hub: sample this many (None: all).
    ``path``: csv: the file. ``split``: hub: its file <split>.csv (default: this
    split's name).
    """

    source: str = attrs.field(default="generate", validator=one_of(SOURCES))
    # generate: each maze's wall probability is drawn from [low, high]; its shortest
    # path must be longer than min_length moves (None: 110 x side / 30).
    wall_probability: list[float] = attrs.Factory(lambda: [0.3, 0.5])
    min_length: int | None = None
    repo: str = HUB_REPO  # hub: the dataset

    def spec(self, side: int) -> MazeSpec:
        return MazeSpec(
            side=side, wall_probability=tuple(self.wall_probability), min_length=self.min_length
        )


@attrs.define(kw_only=True)
class MazeOptions:
    seed: int = 0
    side: int = 30
    train: SplitOptions = attrs.Factory(lambda: SplitOptions(count=1000))
    test: SplitOptions = attrs.Factory(lambda: SplitOptions(count=1000))


def parse_options(options: dict[str, Any]) -> MazeOptions:
    """Strictly check ``data.options`` (a typo names the nearest valid key)."""
    where = "data.options"
    top = structure(MazeOptions, dict(options), where)
    if not 3 <= top.side <= MAX_SIDE:
        raise ConfigError(f"{where}.side: {top.side} is outside 3..{MAX_SIDE}")
    for name in ("train", "test"):
        value = getattr(top, name)
        if isinstance(value, dict):
            value = structure(SplitOptions, value, f"{where}.{name}")
            setattr(top, name, value)
        try:
            if value.source == "generate":
                if not value.count or value.count < 1:
                    raise ConfigError("source generate needs count >= 1")
                value.spec(top.side)
            elif value.source == "csv" and not value.path:
                raise ConfigError("source csv needs path: FILE")
        except (ConfigError, ValueError, TypeError) as error:
            raise ConfigError(f"{where}.{name}: {error}") from None
    return top


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def _load(name: str, split: SplitOptions, options: MazeOptions, avoid: set[bytes]) -> Mazes:
    if split.source == "generate":
        return _generated(name, split, options, avoid)
    if split.source == "csv":
        path = Path(split.path).expanduser()
        if not path.is_file():
            raise DataError(f"data.options.{name}: {split.path}: no such file")
    else:
        path = hub_file(split.repo, f"{split.split or name}.csv", "trm-plugin-maze")
    found = read_csv(path, side=options.side)
    return found.take(subsample(len(found), split.count, options.seed, name))


def _generated(name: str, split: SplitOptions, options: MazeOptions, avoid: set[bytes]) -> Mazes:
    """``count`` generated mazes, none a transform of one in ``avoid`` or of each other."""
    spec, wanted = split.spec(options.side), split.count
    asked = wanted
    while True:
        puzzles, labels, lengths, tried = generate(
            spec, asked, mix_seed(options.seed, _code(name)), progress=f"generating {name}"
        )
        keys, seen, keep = canonical(puzzles), set(avoid), []
        for index, key in enumerate(keys):
            if key not in seen:
                seen.add(key)
                keep.append(index)
        if len(keep) >= wanted:
            break
        asked += wanted - len(keep)  # the stream only grows: ask for more and filter again
    if asked > wanted:
        say(f"  {name}: replaced {asked - wanted} mazes shared with another split or repeated")
    keep = np.asarray(keep[:wanted])
    return Mazes(puzzles[keep], labels[keep], np.arange(1, wanted + 1), lengths[keep],
                 candidates=tried)  # fmt: skip


def _describe(found: Mazes, split: SplitOptions) -> dict[str, Any]:
    lengths = found.lengths
    info = {
        "source": attrs.asdict(split),
        "path_length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                        "max": int(lengths.max())},
        "wall_fraction": round(float((found.puzzles == 1).mean()), 4),
    }  # fmt: skip
    if found.candidates:
        info["candidates_tried"] = found.candidates
    return info


def build(options: dict[str, Any], out_dir: Path) -> Path:
    """Write the ``train`` and ``test`` splits to ``out_dir`` (reused if complete)."""
    parsed = parse_options(dict(options))
    what = f"the Maze data set ({parsed.side}x{parsed.side})"
    return build_once(Path(out_dir), lambda tmp: _write(parsed, tmp), what=what)


def _write(parsed: MazeOptions, out_dir: Path) -> dict[str, Any]:
    train = _load("train", parsed.train, parsed, set())
    avoid = set(canonical(train.puzzles)) if parsed.test.source == "generate" else set()
    test = _load("test", parsed.test, parsed, avoid)
    summary: dict[str, Any] = {"side": parsed.side, "splits": {}}
    for name, split, found in (("train", parsed.train, train), ("test", parsed.test, test)):
        write_split(
            out_dir / name, found.puzzles, found.labels, task="maze", side=parsed.side,
            source_lines=None if split.source == "generate" else found.lines.tolist(),
        )  # fmt: skip
        summary["splits"][name] = {"examples": len(found), **_describe(found, split)}
    say(f"  train {len(train)}, test {len(test)}")
    return summary
