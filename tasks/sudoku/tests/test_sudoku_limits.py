"""The generator's limits: kinds out of reach, too few distinct puzzles, the stream kept."""

from __future__ import annotations

import multiprocessing
import random
import time

import pytest

from trm_core import ConfigError, mix_seed
from trm_plugin_sudoku import SudokuTask
from trm_plugin_sudoku.generate import (
    PuzzleSpec,
    Shortfall,
    _unique,
    disjoint,
    generate,
    generate_distinct,
    make_puzzle,
    most_signatures,
    signature,
)
from trm_plugin_sudoku.parallel import imap_chunks
from trm_plugin_sudoku.solver import random_solution


def _full_pass(spec: PuzzleSpec, rng: random.Random):
    """make_puzzle as it was: the whole pass, then the givens range checked."""
    solution = random_solution(rng)
    puzzle = solution[:]
    target = 0 if spec.minimal or spec.givens is None else rng.randint(*spec.givens)
    givens, order = 81, list(range(81))
    rng.shuffle(order)
    for cell in order:
        if givens <= target:
            break
        puzzle[cell] = 0
        if _unique(puzzle):
            givens -= 1
        else:
            puzzle[cell] = solution[cell]
    if spec.givens is not None and not spec.givens[0] <= givens <= spec.givens[1]:
        return None
    return puzzle, solution


@pytest.mark.parametrize(
    "spec",
    [PuzzleSpec(givens=(22, 24)), PuzzleSpec(givens=(17, 21)), PuzzleSpec(givens=(26, 40)),
     PuzzleSpec(givens=(21, 23), minimal=False), PuzzleSpec()],
)  # fmt: skip
def test_a_try_that_stops_early_misses_as_the_full_pass_did(spec):
    for n in range(12):
        assert make_puzzle(spec, random.Random(n)) == _full_pass(spec, random.Random(n))


def _old_generated(spec, wanted, seed, avoid):
    """The data set's rounds before the generator watched its supply."""
    kept, start, dropped = [], 0, 0
    while len(kept) < wanted:
        need = wanted - len(kept)
        seeds = [mix_seed(seed, 5, i) for i in range(start, start + need)]
        start += need
        made = generate(spec, seeds)
        keep, lost = disjoint([*avoid, *(m.puzzle for m in kept)], [m.puzzle for m in made])
        dropped += lost
        kept += [made[i] for i in keep]
    return kept, dropped


@pytest.mark.parametrize(
    ("spec", "count"),
    [(PuzzleSpec(givens=(70, 76), minimal=False), 60), (PuzzleSpec(min_guesses=3), 12)],
)
def test_distinct_puzzles_are_the_ones_the_old_rounds_kept(spec, count):
    avoid = [m.puzzle for m in generate(spec, range(5), workers=1)]
    old = _old_generated(spec, count, 11, avoid)
    assert generate_distinct(spec, count, lambda i: mix_seed(11, 5, i), avoid) == old


def test_the_signature_bound_holds():
    assert [most_signatures(g, g) for g in (81, 80, 79, 78)] == [1, 1, 24, 189]
    made = generate(PuzzleSpec(givens=(78, 81), minimal=False), range(300), workers=1)
    for givens in (78, 79, 80, 81):
        found = {signature(m.puzzle) for m in made if sum(map(bool, m.puzzle)) == givens}
        assert 0 < len(found) <= most_signatures(givens, givens)


def test_a_kind_out_of_reach_or_too_few_puzzles_stop_in_seconds():
    started = time.monotonic()
    with pytest.raises(Shortfall) as stop:
        generate_distinct(PuzzleSpec(givens=(55, 60), minimal=False, min_guesses=1), 5,
                          lambda i: i)  # fmt: skip
    assert stop.value.verdict.kind == "none"
    with pytest.raises(Shortfall) as stop:
        generate_distinct(PuzzleSpec(givens=(77, 81), minimal=False), 2000, lambda i: i)
    assert stop.value.verdict.found < 300
    assert time.monotonic() - started < 20
    assert not multiprocessing.active_children()


def _slow(items: list[float]) -> list[float]:
    time.sleep(sum(items))
    return items


def test_closing_the_chunks_early_stops_the_workers():
    started = time.monotonic()
    chunks = imap_chunks(_slow, [0.0, 0.0, 60.0, 60.0, 60.0], workers=2, chunk=1)
    assert next(chunks) == [0.0]
    chunks.close()
    assert not multiprocessing.active_children()
    assert time.monotonic() - started < 20


def test_refusals_come_when_built_and_name_the_options(tmp_path):
    options = {"train": {"count": 2, "givens": [81, 81], "minimal": False}}
    SudokuTask.options_from(options)  # read as options: a model trained elsewhere still loads
    with pytest.raises(ConfigError, match=r"data\.options\.train\.count=2 asks for more "
                       r"puzzles than can be told apart with data\.options\.train\.givens="
                       r"\[81, 81\]: at most 1 can"):  # fmt: skip
        SudokuTask().build_dataset(options, tmp_path / "data")
    options = {"train": {"count": 5, "givens": [55, 60], "minimal": False, "min_guesses": 1}}
    with pytest.raises(ConfigError, match=r"data\.options\.train: no puzzle with .*min_guesses"):
        SudokuTask().build_dataset(options, tmp_path / "data")
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
