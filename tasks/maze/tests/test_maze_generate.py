"""The offline generator: unique S and G, paths above the threshold, seeds and disjoint splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trm_core import ConfigError, read_split
from trm_plugin_maze import MazeTask
from trm_plugin_maze.augment import TRANSFORMS, apply, canonical
from trm_plugin_maze.generate import MazeSpec, default_min_length, generate
from trm_plugin_maze.grid import GOAL, PATH, START
from trm_plugin_maze.paths import shortest_lengths, solve


@pytest.mark.parametrize(("side", "min_length"), [(30, None), (15, None), (11, 16), (7, 8)])
def test_every_maze_has_one_s_one_g_and_a_path_above_the_threshold(side, min_length):
    spec = MazeSpec(side=side, min_length=min_length)
    puzzles, labels, lengths, tried = generate(spec, 12, seed=0, workers=1)
    assert puzzles.shape == (12, side * side) and tried >= 12
    assert ((puzzles == START).sum(1) == 1).all() and ((puzzles == GOAL).sum(1) == 1).all()
    assert (lengths > spec.threshold).all()
    assert (shortest_lengths(puzzles) == lengths).all()
    assert (solve(puzzles) == labels).all()  # the label is the documented tie-break
    assert ((labels == PATH).sum(1) == lengths - 1).all()
    walls = (puzzles == 1).mean(1)
    assert ((walls > 0.2) & (walls < 0.55)).all()


def test_the_default_threshold_scales_the_hard_one_with_the_side():
    assert default_min_length(30) == 110 and default_min_length(15) == 55
    assert MazeSpec(side=11).threshold == 41


def test_the_same_seed_gives_the_same_mazes_over_any_number_of_processes():
    spec = MazeSpec(side=9, min_length=12)
    one = generate(spec, 300, seed=7, workers=1)
    two = generate(spec, 300, seed=7, workers=2)
    more = generate(spec, 400, seed=7, workers=1)
    assert (one[0] == two[0]).all() and (one[1] == two[1]).all()
    assert (more[0][:300] == one[0]).all()  # a larger count extends a smaller one
    assert not (generate(spec, 300, seed=8, workers=1)[0] == one[0]).all()


def test_an_unreachable_threshold_fails_clearly():
    with pytest.raises(ValueError, match="min_length 81 is out of range for side 9"):
        MazeSpec(side=9, min_length=81)
    with pytest.raises(ValueError, match="lower min_length"):
        generate(MazeSpec(side=5, min_length=20), 1, seed=0, workers=1)


def test_train_and_test_never_share_a_maze_and_the_set_is_reused(tmp_path, capsys):
    options = {
        "seed": 1,
        "side": 4,
        "train": {"count": 300, "min_length": 3},
        "test": {"count": 200, "min_length": 3},
    }
    out = MazeTask().build_dataset(options, tmp_path / "data")
    train, test = read_split(out / "train"), read_split(out / "test")
    assert len(train) == 300 and len(test) == 200
    train_keys = set(canonical(np.asarray(train.inputs)))
    assert not train_keys & set(canonical(np.asarray(test.inputs)))
    assert len(set(canonical(np.asarray(test.inputs)))) == 200
    # Small mazes repeat, under transforms too; a repeat was replaced, and said so.
    assert "replaced" in capsys.readouterr().err
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["splits"]["test"]["path_length"]["min"] > 3
    stamp = (out / "train" / "inputs.npy").stat().st_mtime_ns
    MazeTask().build_dataset(options, out)
    assert (out / "train" / "inputs.npy").stat().st_mtime_ns == stamp
    for transform in range(TRANSFORMS):  # the transforms of a training maze are not test mazes
        moved = set(canonical(apply(np.asarray(train.inputs), transform)))
        assert moved == train_keys


def test_options_are_checked_strictly():
    with pytest.raises(ConfigError, match="min_lenght.*min_length"):
        MazeTask.options_from({"train": {"min_lenght": 3}})
    with pytest.raises(ConfigError, match="data.options.side must be an integer within 3..64"):
        MazeTask.options_from({"side": 80})
    with pytest.raises(ConfigError, match="data.options.test: source generate needs count"):
        MazeTask.options_from({"test": {"count": None}})
    with pytest.raises(ConfigError, match="data.options.test.count must be positive, got 0"):
        MazeTask.options_from({"test": {"count": 0}})
    with pytest.raises(ConfigError, match="source 'zip' is not one of generate, csv, hub"):
        MazeTask.options_from({"train": {"source": "zip"}})
    with pytest.raises(ConfigError, match="wall_probability"):
        MazeTask.options_from({"train": {"count": 5, "wall_probability": [0.6, 0.2]}})
