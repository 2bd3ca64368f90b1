"""The task: registration, sizes from options, metrics, text, images, parsing, presets."""

from __future__ import annotations

import numpy as np
import pytest

import trm_core
from trm_core import ConfigError, get_registry
from trm_core.config import build_run_config
from trm_core.run import resolve
from trm_plugin_maze import MazeTask
from trm_plugin_maze.grid import OPEN, PATH, parse_maze
from trm_plugin_maze.paths import solve
from trm_plugin_maze.render import COLOURS, draw_maze

MAZE = "S..#\n.#..\n...#\n#.G."
TASK = MazeTask()


def small_task(side: int = 4) -> MazeTask:
    task = MazeTask()
    task.configure({"side": side})
    return task


def test_registered_through_the_entry_point_with_its_side_from_the_options():
    assert get_registry().get("task", "maze") is MazeTask
    assert (TASK.vocab_size, TASK.seq_len, TASK.ignore_label_id) == (6, 900, 0)
    task = small_task(11)
    assert (task.grid_shape, task.seq_len) == ((11, 11), 121)
    with pytest.raises(ConfigError, match="data.options.side must be an integer within 3..64"):
        task.configure({"side": 2})


def test_metrics_count_any_shortest_path_as_valid():
    maze = parse_maze("S...\n.##.\n...G\n....")
    label = solve(maze[None])[0]
    other = maze.copy()
    other[[4, 8, 9, 10]] = PATH  # the other shortest path
    copied = maze.copy()  # no path at all
    inputs = np.stack([maze] * 3)
    metrics = small_task().metrics(inputs, np.stack([label] * 3), np.stack([label, other, copied]))
    assert metrics == {"valid_path_accuracy": pytest.approx(2 / 3)}


def test_text_round_trips_and_parse_errors_name_row_and_column():
    task = small_task()
    tokens = task.parse_puzzle(MAZE)
    assert task.render_text(tokens) == MAZE.replace(".", " ")
    assert (task.parse_puzzle(MAZE.replace(".", " ")) == tokens).all()
    cases = [
        ("S..#\n.#.\n...#\n#.G.", "row 2 has 3 cells, but a maze of 4 rows needs 4"),
        ("S..#\n.#x.\n...#\n#.G.", r"row 2, column 3: 'x'"),
        ("S..#\n.#o.\n...#\n#.G.", "a path cell is the answer"),
        ("S..#\n.#..\n...#\n#...", "the maze has 0 G cells"),
        ("S..\n.#.\n..G", "a 3x3 maze, but this task's mazes are 4x4"),
    ]
    for text, message in cases:
        with pytest.raises(ValueError, match=message):
            task.parse_puzzle(text)


def test_read_puzzles_splits_blocks_and_names_the_bad_one():
    task = small_task()
    text = f"\n{MAZE}\n\n{MAZE}\n"
    found = task.read_puzzles(text, "mazes.txt")
    assert [where for where, _ in found] == [
        "mazes.txt, maze 1 (line 2)",
        "mazes.txt, maze 2 (line 7)",
    ]
    with pytest.raises(ValueError, match=r"mazes.txt, maze 2 \(line 7\): row 1, column 1: 'x'"):
        task.read_puzzles(f"{MAZE}\n\n\n{'x' + MAZE[1:]}", "mazes.txt")


def test_check_answer_lists_problems_and_accepts_a_shortest_path():
    task = small_task()
    maze = task.parse_puzzle(MAZE)
    assert task.check_answer(maze, solve(maze[None])[0]) == []
    assert "the marked cells do not connect S to G" in task.check_answer(maze, maze)


def test_the_image_colours_walls_ends_and_both_paths():
    maze = parse_maze("S...\n.##.\n...G\n....")
    label = solve(maze[None])[0]
    other = maze.copy()
    other[[4, 8, 9, 10]] = PATH
    image = draw_maze(maze, other, label)
    assert image.dtype == np.uint8 and image.shape == (300, 300, 3)
    cell = 300 // 4
    centre = lambda i: tuple(image[(i // 4) * cell + cell // 2, (i % 4) * cell + cell // 2])  # noqa: E731
    assert centre(0) == COLOURS["start"] and centre(11) == COLOURS["goal"]
    assert centre(5) == COLOURS["wall"] and centre(15) == COLOURS["open"]
    assert centre(4) == COLOURS["extra"] and centre(1) == COLOURS["missed"]
    assert centre(3) == COLOURS["missed"]
    assert centre(4) != centre(1)
    both = draw_maze(maze, label, label)
    assert tuple(both[cell // 2, cell + cell // 2]) == COLOURS["path"]
    assert draw_maze(np.full(900, OPEN), np.full(900, OPEN), np.full(900, OPEN)).shape == (
        300,
        300,
        3,
    )


@pytest.mark.parametrize("name", ["cpu", "paper"])
def test_presets_are_valid_run_configs(name):
    mapping, _, _ = resolve("maze", preset=name)
    side = mapping["data"]["options"]["side"]
    mapping["model"].update(vocab_size=6, seq_len=side * side)
    config = build_run_config(mapping)
    assert config.task == "maze"
    assert config.model.mixer == ("mlp" if name == "cpu" else "attention")
    if name == "cpu":
        assert (side, config.data.augmentations, config.model.halt_max_steps) == (7, 0, 2)
        model = resolve("maze", preset=name, mixer="attention")[0]["model"]
        assert model["options"]["grid"]["positions"] == "rope"
    if name == "paper":
        assert side == 30 and config.model.options["grid"]["positions"] == "rope"
        # 50,000 reference epochs of 1,000 mazes at batch 768; evaluation every 5,000.
        assert (config.train.global_batch_size, config.train.steps) == (768, 65105)
        assert config.eval.interval_steps == 6511
        assert (config.model.cycles, config.model.think_steps, config.model.hidden_size) == (
            3, 4, 512,
        )  # fmt: skip
        assert (config.train.lr, config.train.puzzle_emb_lr, config.train.weight_decay) == (
            1e-4, 1e-4, 1.0,
        )  # fmt: skip
        assert config.data.augmentations == 0


def test_the_paper_model_has_the_spec_parameter_count():
    mapping, _, _ = resolve("maze", preset="paper")
    model = dict(mapping["model"], vocab_size=6, seq_len=900, num_puzzle_identifiers=2)
    model = {**model, "dtype": "float32"}  # shapes only: any dtype counts the same
    assert trm_core.build_model(model, device="meta").num_parameters() == 6_822_914


def test_cpu_is_the_default_without_cuda_and_paper_with_it():
    assert resolve("maze", mixer="attention", cuda=False)[2].startswith("preset cpu")
    assert resolve("maze", mixer="attention", cuda=True)[2].startswith("preset paper")
