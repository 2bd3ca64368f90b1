"""Building the Sudoku data set from ``data.options``.

The options name a source per split::

    seed: 0
    train: {source: generate, count: 3000, givens: [36, 45], minimal: false}
    test:  {source: generate, count: 1000, givens: [36, 45], minimal: false}
    extra_tests:                      # evaluated once, after training
      hard: {source: generate, count: 500, givens: [26, 30], minimal: false}
      magictour: {source: list, path: magictour_top1465.txt, optional: true}

Sources: ``generate`` (offline, the default), ``csv`` (a Sudoku-Extreme-format
file), ``hub`` (the same CSV from the Hugging Face Hub; needs the ``hub``
extra and the network) and ``list`` (one puzzle a line, solved by the solver).
Generated splits come from separate seeds, and no generated test puzzle is a
transform (under the training augmentations) of a training puzzle.

Options that cannot give the puzzles asked for are refused in one line naming
them, when the data is built. Before generating: a count above the puzzles
that can be told apart with that many givens
(:func:`~trm_plugin_sudoku.generate.most_signatures`; a training and a test
count together, the test puzzles being new) or above ``TRY_BUDGET``. Within
seconds of generating: a kind of puzzle the generator does not reach, or too
few distinct puzzles (:func:`~trm_plugin_sudoku.generate.generate_distinct`).
"""

from __future__ import annotations

import statistics
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
    input_file,
    mix_seed,
    non_negative,
    one_of,
    say,
    subsample,
    write_split,
)

from .generate import (
    DRAWS_PER_ITEM,
    MAX_TRIES,
    PILOT_TRIES,
    TRY_BUDGET,
    PuzzleSpec,
    Shortfall,
    Verdict,
    generate_distinct,
    most_signatures,
)
from .grid import to_tokens
from .solver import solve
from .sources import Puzzles, hub_csv, read_csv, read_list

SOURCES = ("generate", "csv", "hub", "list")
#: The default difficulty floor of generated minimal puzzles (solver guesses).
DEFAULT_MIN_GUESSES = 10


def _givens(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 17 <= value[0] <= value[1] <= 81
    ):
        raise ValueError(
            f"must be [low, high], integers with 17 <= low <= high <= 81; got {value!r}"
        )


@attrs.define(kw_only=True)
class SplitOptions(SourceOptions):
    """Where one split's puzzles come from.

    ``count``: generate: how many puzzles; csv/hub/list: sample this many (None:
    every row). ``path``: csv/list: the file. ``split``: hub: the split's file
    (default: this split's name).
    """

    source: str = attrs.field(default="generate", validator=one_of(SOURCES))
    # generate: the givens range [low, high]; minimal puzzles (every removable clue
    # removed) or puzzles stopped at a givens count; a difficulty floor in solver guesses
    # (None: 10 for minimal puzzles, whose median is then 14 guesses; 0 otherwise).
    givens: list[int] | None = attrs.field(default=None, validator=_givens)
    minimal: bool = True
    min_guesses: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    repo: str = "sapientinc/sudoku-extreme"  # hub: the dataset
    min_difficulty: int | None = None  # csv/hub: keep rows rated at least this
    verify: bool = True  # csv/hub: prove each puzzle unique with the solver
    # extra test sets only: skip, with a note, when the file is missing or no path is given
    optional: bool = False

    def __attrs_post_init__(self) -> None:
        if self.source == "generate":
            if self.count is None:
                raise ValueError("source generate needs count: N (how many puzzles)")
            self.spec()
        elif self.source in ("csv", "list") and not self.path and not self.optional:
            raise ValueError(f"source {self.source} needs path: FILE")

    def spec(self) -> PuzzleSpec:
        givens = None if self.givens is None else tuple(self.givens)
        floor = self.min_guesses
        if floor is None:
            floor = DEFAULT_MIN_GUESSES if self.minimal else 0
        return PuzzleSpec(givens=givens, minimal=self.minimal, min_guesses=floor)


#: How a split that is not a mapping is refused.
SPLIT = {"expects": f"be a mapping of split options (source: {', '.join(SOURCES)})"}


@attrs.define(kw_only=True)
class SudokuOptions:
    """``data.options`` (:attr:`SudokuTask.Options`); an extra test set set to null is
    dropped."""

    seed: int = 0
    train: SplitOptions = attrs.field(factory=lambda: SplitOptions(count=1000), metadata=SPLIT)
    test: SplitOptions = attrs.field(factory=lambda: SplitOptions(count=1000), metadata=SPLIT)
    extra_tests: dict[str, SplitOptions] = attrs.field(
        factory=dict, metadata={"expects": "map names to split options", "each": SPLIT["expects"]}
    )


def _enough(parsed: SudokuOptions) -> None:
    """Refuse, before generating, counts that no generator run can give: more puzzles
    than can be told apart with the givens asked for (a split alone, or a test set with
    the training set it must differ from), or than ``TRY_BUDGET`` tries make. (Checked
    when the data is built, not when the options are read, which also happens when a
    trained model is loaded.)"""
    splits = {"train": parsed.train, "test": parsed.test}
    splits.update({f"extra_tests.{name}": split for name, split in parsed.extra_tests.items()})
    generated = {name: split for name, split in splits.items() if split.source == "generate"}
    for name, split in generated.items():
        if split.count > TRY_BUDGET:
            raise ConfigError(
                f"data.options.{name}.count={split.count} is more puzzles than the generator "
                f"makes for one split ({TRY_BUDGET:,} tries at most, one puzzle a try at "
                f"best); lower data.options.{name}.count"
            )
        _distinguishable([name], [split])
    if "train" in generated:
        for name, split in generated.items():
            if name != "train":
                _distinguishable(["train", name], [parsed.train, split])


def _distinguishable(names: list[str], splits: list[SplitOptions]) -> None:
    """Refuse splits that ask for more puzzles than can be told apart in their givens
    ranges (all of them together: each later split differs from the first)."""
    ranges = [split.givens for split in splits]
    if any(givens is None for givens in ranges):
        return  # minimal puzzles of any number of givens: more than any count
    values = sorted({g for low, high in ranges for g in range(low, high + 1)})
    most = sum(most_signatures(g, g) for g in values)
    wanted = sum(split.count for split in splits)
    if wanted <= most:
        return
    pairs = list(zip(names, splits, strict=True))
    counts = " + ".join(f"data.options.{name}.count={split.count}" for name, split in pairs)
    givens = " and ".join(f"data.options.{name}.givens={split.givens}" for name, split in pairs)
    together = " (test puzzles must differ from training puzzles)" if len(names) > 1 else ""
    raise ConfigError(
        f"{counts} asks for more puzzles than can be told apart with {givens}{together}: at "
        f"most {most:,} can (by their givens per row, column, box and digit, which the "
        "training augmentations keep); lower the count or widen the givens range to fewer "
        "givens"
    )


def _load(name: str, split: SplitOptions, seed: int, avoid: list[np.ndarray]) -> Puzzles | None:
    """The puzzles of one split; None for a missing optional file."""
    if split.source == "generate":
        return _generated(name, split, seed, avoid)
    if split.source in ("csv", "list") and not split.path:
        say(f"  {name}: skipped, no path given (--set data.options.extra_tests.{name}.path=FILE)")
        return None
    if split.source in ("csv", "list"):
        path = Path(split.path).expanduser()
        if split.optional and not path.exists():
            say(f"  {name}: skipped, {split.path} not found (optional)")
            return None
        key = "data.options." + (name if name in ("train", "test") else f"extra_tests.{name}")
        try:
            input_file(path)
        except DataError as error:
            raise DataError(f"{key}.path: {error}") from None
    else:
        path = hub_csv(split.split or name, split.repo)
    if split.source == "list":
        found = read_list(path)
    else:
        found = read_csv(path, min_difficulty=split.min_difficulty, verify=split.verify)
    return found.take(subsample(len(found), split.count, seed, name))


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def _generated(name: str, split: SplitOptions, seed: int, avoid: list[np.ndarray]) -> Puzzles:
    """``count`` generated puzzles, none a transform of one in ``avoid`` or of each other."""
    spec, wanted = split.spec(), split.count
    code = _code(name)
    try:
        kept, dropped = generate_distinct(
            spec, wanted, lambda i: mix_seed(seed, code, i), avoid, progress=f"generating {name}"
        )
    except Shortfall as short:
        raise ConfigError(_shortfall(name, split, short.verdict, len(avoid))) from None
    if dropped:
        say(f"  {name}: dropped {dropped} puzzles that could be transforms of others")
    return Puzzles(
        np.asarray([m.puzzle for m in kept], dtype=np.uint8),
        np.asarray([m.solution for m in kept], dtype=np.uint8),
        np.arange(1, wanted + 1),
        guesses=np.asarray([m.guesses for m in kept]),
    )


def _shortfall(name: str, split: SplitOptions, verdict: Verdict, avoided: int) -> str:
    """The one line that says why the generator stopped, naming the options to change."""
    key = "data.options." + (name if name in ("train", "test") else f"extra_tests.{name}")
    spec = split.spec()
    kind = [f"{key}.minimal={'true' if spec.minimal else 'false'}"]
    if spec.givens is not None:
        kind.insert(0, f"{key}.givens={list(spec.givens)}")
    if spec.min_guesses:
        default = " (the default)" if split.min_guesses is None else ""
        kind.append(f"{key}.min_guesses={spec.min_guesses}{default}")
    kind = ", ".join(kind)
    if verdict.kind in ("none", "stuck"):
        tries = PILOT_TRIES if verdict.kind == "none" else MAX_TRIES
        advice = []
        if spec.givens is not None:
            advice.append(f"widen {key}.givens")
        if spec.minimal and spec.givens is not None:
            advice.append(
                f"set {key}.minimal=false (this generator's minimal puzzles have about 20 to 30 "
                "givens)"
            )
        if spec.min_guesses:
            advice.append(f"lower {key}.min_guesses")
        advice = advice or [f"lower {key}.count"]
        where = "" if verdict.kind == "none" else f" (puzzle {verdict.drawn + 1})"
        return (
            f"{key}: no puzzle with {kind} came out of {tries:,} tries{where}: this generator "
            f"does not reach that kind; {' or '.join(advice)}"
        )
    besides = f" besides the {avoided:,} training puzzles" if avoided else ""
    advice = f"lower {key}.count"
    if avoided:
        advice += " or data.options.train.count (test puzzles must differ from training ones)"
    if spec.givens is not None:
        advice += f", or widen {key}.givens to fewer givens"
    asked = f"{key}.count={verdict.wanted} is more than these options give"
    distinct = f"distinct puzzle{'' if verdict.found == 1 else 's'} with {kind}{besides}"
    if verdict.kind == "exhausted":
        return (
            f"{asked}: only {verdict.found:,} {distinct} (none a transform of another) turned "
            f"up in {verdict.drawn:,} made, none new in the last half of them; {advice}"
        )
    return (
        f"{asked}: {verdict.found:,} {distinct} came out of {verdict.drawn:,} made in "
        f"{verdict.cost:,} tries, and at the rate new ones come the generator's limits "
        f"({DRAWS_PER_ITEM} made per puzzle asked for, {TRY_BUDGET:,} tries) would give "
        f"about {verdict.reach:,}; {advice}"
    )


def _describe(found: Puzzles, split: SplitOptions) -> dict[str, Any]:
    givens = (found.puzzles > 0).sum(1)
    if found.guesses is not None:  # generated or solved already: every puzzle's count
        guesses = found.guesses.tolist()
    else:  # a CSV read without verify: rate a sample
        guesses = [solve(p, limit=2).guesses for p in found.puzzles[:200].tolist()]
    return {
        "source": attrs.asdict(split),
        "givens": {"min": int(givens.min()), "median": float(np.median(givens)),
                   "max": int(givens.max())},
        "median_guesses": statistics.median(guesses),
        "guesses_over": len(guesses),
    }  # fmt: skip


def build(parsed: SudokuOptions, out_dir: Path) -> Path:
    """Write ``train``, ``test`` and ``extra/<name>`` splits to ``out_dir`` (reused if there)."""
    if not (Path(out_dir) / "dataset.json").exists():
        _enough(parsed)  # refused before anything is made (a rebuild checks again)
    return build_once(
        Path(out_dir), lambda tmp: _write(parsed, tmp), what="the Sudoku data set", stale=_appeared
    )


def _write(parsed: SudokuOptions, out_dir: Path) -> dict[str, Any]:
    _enough(parsed)
    summary: dict[str, Any] = {"splits": {}, "skipped": []}
    train = _load("train", parsed.train, parsed.seed, [])
    avoid = list(train.puzzles)
    wanted = [("test", parsed.test, out_dir / "test")] + [
        (name, split, out_dir / "extra" / name) for name, split in parsed.extra_tests.items()
    ]
    built = [("train", parsed.train, out_dir / "train", train)]
    for name, split, path in wanted:
        found = _load(name, split, parsed.seed, avoid if split.source == "generate" else [])
        if found is None:
            summary["skipped"].append({"name": name, "path": split.path})
            continue
        built.append((name, split, path, found))
    for name, split, path, found in built:
        write_split(
            path, to_tokens(found.puzzles), to_tokens(found.solutions), task="sudoku",
            source_lines=None if split.source == "generate" else found.lines.tolist(),
        )  # fmt: skip
        summary["splits"][name] = {"examples": len(found), **_describe(found, split)}
    say("  " + ", ".join(f"{name} {info['examples']}" for name, info in summary["splits"].items()))
    return summary


def _appeared(summary: dict[str, Any]) -> str | None:
    """Why a complete data set is stale: an optional file skipped as missing is there now."""
    for skipped in summary.get("skipped", []):
        if skipped["path"] and Path(skipped["path"]).expanduser().is_file():
            return f"{skipped['path']} (extra test {skipped['name']}, skipped) is there now"
    return None
