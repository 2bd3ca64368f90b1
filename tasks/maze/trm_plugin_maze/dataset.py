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

Options that cannot give the mazes asked for are refused in one line naming
them, when the data is built: before generating, a ``min_length`` no maze of
the side reaches and counts beyond ``MAX_BYTES``; within seconds of
generating, too few distinct mazes (the train and test counts together, test
mazes being new), as soon as the stream shows it
(:class:`~trm_plugin_maze.generate.Supply`).
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
    subsample,
    write_split,
)

from .augment import canonical
from .generate import (
    CANDIDATE_BUDGET,
    DRAWS_PER_ITEM,
    MAX_SIDE,
    MazeSpec,
    Shortfall,
    default_min_length,
    generate_distinct,
    longest_path,
)
from .sources import Mazes, read_csv

SOURCES = ("generate", "csv", "hub")
HUB_REPO = "sapientinc/maze-30x30-hard-1k"
#: The most memory the generated splits may take while they are made (all of them are
#: held at once: about 8 bytes a cell and 128 a maze, with their keys and copies).
MAX_BYTES = 2**32


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

    def __attrs_post_init__(self) -> None:
        if self.source == "generate" and self.count is None:
            raise ValueError("source generate needs count: N (how many mazes)")
        if self.source == "csv" and not self.path:
            raise ValueError("source csv needs path: FILE")

    def spec(self, side: int) -> MazeSpec:
        return MazeSpec(
            side=side, wall_probability=tuple(self.wall_probability), min_length=self.min_length
        )


#: How a split that is not a mapping is refused.
SPLIT = {"expects": f"be a mapping of split options (source: {', '.join(SOURCES)})"}


@attrs.define(kw_only=True)
class MazeOptions:
    """``data.options`` (:attr:`MazeTask.Options`)."""

    seed: int = 0
    side: int = attrs.field(default=30, validator=_side)
    train: SplitOptions = attrs.field(factory=lambda: SplitOptions(count=1000), metadata=SPLIT)
    test: SplitOptions = attrs.field(factory=lambda: SplitOptions(count=1000), metadata=SPLIT)

    def __attrs_post_init__(self) -> None:
        for name in ("train", "test"):
            split = getattr(self, name)
            if split.source == "generate":
                try:
                    split.spec(self.side)
                except ValueError as error:
                    _reachable(name, split, self.side)  # the key in full, with the longest path
                    raise ConfigError(f"data.options.{name}: {error}") from None


def _feasible(top: MazeOptions) -> None:
    """Refuse, before generating, what no generator run gives: a min_length no maze of
    the side reaches, splits too large to hold. (Checked when the data is built, not when
    the options are read: options that only name a side, to read or solve mazes, keep
    working.)"""
    for name in ("train", "test"):
        split = getattr(top, name)
        if split.source == "generate":
            _reachable(name, split, top.side)
    _fits(top)


def _reachable(name: str, split: SplitOptions, side: int) -> None:
    """Refuse a min_length that no maze of the side reaches."""
    most_walls = split.wall_probability[1]
    longest = longest_path(side, most_walls)
    threshold = default_min_length(side) if split.min_length is None else split.min_length
    if threshold < longest:
        return
    key = f"data.options.{name}.min_length"
    shown = f"{key} {threshold}"
    if split.min_length is None:
        shown = f"{key} (default {threshold} for side {side})"
    walls = (
        f" with data.options.{name}.wall_probability={split.wall_probability} (no walls)"
        if most_walls <= 0 else ""
    )  # fmt: skip
    raise ConfigError(
        f"{shown} is out of reach for side {side} (data.options.side): no shortest path of a "
        f"{side}x{side} maze{walls} is longer than {longest} moves, and a maze's must be "
        f"longer than min_length; set {key} to at most {longest - 1}, or raise "
        "data.options.side"
    )


def _fits(top: MazeOptions) -> None:
    """Refuse generated splits too large to hold in memory while they are made."""
    names = [n for n in ("train", "test") if getattr(top, n).source == "generate"]
    counts = [getattr(top, n).count for n in names]
    need = sum(counts) * (8 * top.side * top.side + 128)
    if need > MAX_BYTES:
        keys = " + ".join(f"data.options.{n}.count={c}" for n, c in zip(names, counts, strict=True))
        raise ConfigError(
            f"{keys} mazes of side {top.side} (data.options.side) need about "
            f"{need / 2**30:,.1f} GiB of memory while they are made, more than the "
            f"{MAX_BYTES // 2**30} GiB the generator allows; lower the count"
        )


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
    try:
        puzzles, labels, lengths, tried, asked = generate_distinct(
            spec, wanted, mix_seed(options.seed, _code(name)), avoid,
            progress=f"generating {name}",
        )  # fmt: skip
    except Shortfall as short:
        raise ConfigError(_shortfall(name, split, options, short.verdict, len(avoid))) from None
    if asked > wanted:
        say(f"  {name}: replaced {asked - wanted} mazes shared with another split or repeated")
    return Mazes(puzzles, labels, np.arange(1, wanted + 1), lengths, candidates=tried)


def _shortfall(name: str, split: SplitOptions, options: MazeOptions, verdict, avoided: int) -> str:
    """The one line that says why the generator stopped, naming the options to change."""
    key, side = f"data.options.{name}", options.side
    threshold = default_min_length(side) if split.min_length is None else split.min_length
    length = f"{key}.min_length={threshold}"
    if split.min_length is None:
        length = f"{key}.min_length, default {threshold} for side {side}"
    plural = "" if verdict.found == 1 else "s"
    mazes = (
        f"maze{plural} of side {side} (data.options.side) with a shortest path longer than "
        f"{threshold} moves ({length})"
    )  # fmt: skip
    if verdict.kind == "none":
        return (
            f"{length} is out of reach: no maze of side {side} (data.options.side) with "
            f"wall probability {split.wall_probability} has a shortest path that long in "
            f"{verdict.cost:,} candidates; lower {key}.min_length or raise data.options.side"
        )
    besides = f" besides the {avoided:,} training mazes" if avoided else ""
    advice = f"lower {key}.count"
    if avoided:
        advice += " or data.options.train.count (test mazes must differ from training mazes)"
    advice += f", lower {key}.min_length or raise data.options.side"
    asked = f"{key}.count={verdict.wanted} is more than these options give"
    if verdict.kind == "exhausted":
        return (
            f"{asked}: only {verdict.found:,} distinct {mazes}{besides} turned up in "
            f"{verdict.cost:,} candidates, none new in the last half of them; {advice}"
        )
    return (
        f"{asked}: {verdict.found:,} distinct {mazes}{besides} turned up among the "
        f"{verdict.drawn:,} accepted of {verdict.cost:,} candidates, and at the rate new ones "
        f"come the generator's limits ({DRAWS_PER_ITEM} accepted per maze asked for, "
        f"{CANDIDATE_BUDGET:,} candidates) would give about {verdict.reach:,}; {advice}"
    )


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


def build(parsed: MazeOptions, out_dir: Path) -> Path:
    """Write the ``train`` and ``test`` splits to ``out_dir`` (reused if complete)."""
    if not (Path(out_dir) / "dataset.json").exists():
        _feasible(parsed)  # refused before anything is made (a rebuild checks again)
    what = f"the Maze data set ({parsed.side}x{parsed.side})"
    return build_once(Path(out_dir), lambda tmp: _write(parsed, tmp), what=what)


def _write(parsed: MazeOptions, out_dir: Path) -> dict[str, Any]:
    _feasible(parsed)
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
