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
    input_file,
    mix_seed,
    one_of,
    positive,
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


def _wall_probability(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    numbers = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not numbers or len(value) != 2 or not 0 <= value[0] <= value[1] < 1:
        raise ValueError(f"must be [low, high], numbers with 0 <= low <= high < 1; got {value!r}")


def _side(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 3 <= value <= MAX_SIDE:
        raise ValueError(f"must be an integer within 3..{MAX_SIDE}, got {value!r}")


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
    wall_probability: list[float] = attrs.field(
        factory=lambda: [0.3, 0.5], validator=_wall_probability
    )
    min_length: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(positive)
    )
    repo: str = HUB_REPO  # hub: the dataset

    def spec(self, side: int) -> MazeSpec:
        return MazeSpec(
            side=side, wall_probability=tuple(self.wall_probability), min_length=self.min_length
        )


@attrs.define(kw_only=True)
class MazeOptions:
    seed: int = 0
    side: int = attrs.field(default=30, validator=_side)
    train: SplitOptions = attrs.Factory(lambda: SplitOptions(count=1000))
    test: SplitOptions = attrs.Factory(lambda: SplitOptions(count=1000))


def parse_options(options: dict[str, Any]) -> MazeOptions:
    """Strictly check ``data.options``: every key named in full when its value is wrong
    (a typo names the nearest valid key)."""
    where = "data.options"
    options = dict(options)
    for name in ("train", "test"):
        if name in options:
            options[name] = _split_options(options[name], f"{where}.{name}")
    top = structure(MazeOptions, options, where)
    for name in ("train", "test"):
        split = getattr(top, name)
        try:
            if split.source == "generate":
                if split.count is None:
                    raise ConfigError("source generate needs count: N (how many mazes)")
                split.spec(top.side)
            elif split.source == "csv" and not split.path:
                raise ConfigError("source csv needs path: FILE")
        except (ConfigError, ValueError) as error:
            raise ConfigError(f"{where}.{name}: {error}") from None
    return top


def _split_options(value: Any, where: str) -> SplitOptions:
    if not isinstance(value, dict):
        shown = "null" if value is None else repr(value)
        raise ConfigError(
            f"{where} must be a mapping of split options (source: {', '.join(SOURCES)}), "
            f"got {shown}"
        )
    return structure(SplitOptions, value, where)


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def _load(name: str, split: SplitOptions, options: MazeOptions, avoid: set[bytes]) -> Mazes:
    if split.source == "generate":
        return _generated(name, split, options, avoid)
    if split.source == "csv":
        try:
            path = input_file(Path(split.path).expanduser())
        except DataError as error:
            raise DataError(f"data.options.{name}.path: {error}") from None
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
