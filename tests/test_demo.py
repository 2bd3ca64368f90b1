"""trm-demo without a browser: reading puzzles, the step stream, the verdict, strategies,
refusals, concurrent users, --write-space, and a real server answering HTTP.

The model is a tiny Sudoku model trained for a few steps (tests/tiny_sudoku.py).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import types
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import trm_core
from trm_core.demo import DemoInputError, Solver, grid_html, halt_chart, token_style
from trm_core.demo_app import main, serve, solve_events

from . import tiny_sudoku
from .tiny_sudoku import EASY, OTHER

gradio = pytest.importorskip("gradio", reason="trm-demo's page needs gradio (trm-core[demo])")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_sudoku.train(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def solver(model_dir) -> Solver:
    return Solver(trm_core.load_model(model_dir, device="cpu"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- tokens drawn by each task ---------------------------------------------------------------


def test_every_task_draws_each_token_with_a_symbol_and_a_colour():
    from trm_task_life import LifeTask

    from trm_plugin_arc import ArcTask
    from trm_plugin_maze import MazeTask
    from trm_plugin_sudoku import SudokuTask

    from .tiny_task import ReverseTask

    for task in (SudokuTask(), MazeTask(), ArcTask(), LifeTask(), ReverseTask()):
        style = token_style(task)
        assert len(style) == task.vocab_size
        assert all(colour.startswith("#") and len(colour) == 7 for _, colour in style)
    assert [s for s, _ in SudokuTask().token_style()[2:]] == [str(d) for d in range(1, 10)]
    assert len({c for _, c in ArcTask().token_style()[2:]}) == 10  # the ten ARC colours
    assert ReverseTask().token_style()[3][0] == "3"  # the neutral default: token numbers


def test_a_grid_is_drawn_with_changes_and_confidence():
    style = [("", "#ffffff"), ("a", "#000000")]
    page = grid_html(style, (1, 2), np.array([0, 1]), changed=np.array([False, True]),
                     confidence=np.array([1.0, 0.0]))  # fmt: skip
    assert page.count("<td") == 2 and ">a</td>" in page
    assert "outline:2px" in page and "opacity:0.30" in page and "opacity:1.00" in page
    assert halt_chart([0.1, 0.9], 4).count("<circle") == 2


# -- the stream --------------------------------------------------------------------------


def test_each_step_is_handed_over_as_it_is_computed(solver):
    _, tokens = solver.pick(EASY)
    steps = list(solver.steps(tokens))
    assert [s.number for s in steps] == [1, 2, 3, 4]
    for step in steps:
        assert step.prediction.shape == (81,) and 0.0 <= step.halt <= 1.0
        assert ((step.confidence > 0) & (step.confidence <= 1)).all()
    assert (steps[0].changed == (steps[0].prediction != tokens)).all()
    assert (steps[2].changed == (steps[2].prediction != steps[1].prediction)).all()
    final, _ = solver.loaded.predict(tokens[None])
    assert (steps[-1].prediction == final[0]).all()  # the same answer as trm-solve's


def test_the_page_stream_yields_every_step_then_the_verdict(solver):
    shown = list(solve_events(solver, EASY, 1, "unroll", 1))
    assert len(shown) == 5  # four steps, then the verdict
    assert [s.count('class="trm-grid trm-step"') for s, _, _ in shown] == [1, 2, 3, 4, 4]
    _, chart, verdict = shown[-1]
    assert chart.count("<circle") == 4
    _, tokens = solver.pick(EASY)
    problems = solver.check(tokens, list(solver.steps(tokens))[-1].prediction)
    assert problems is not None
    assert 'class="trm-verdict"' in verdict and "answered in" in verdict
    if problems:
        assert f"{len(problems)} rule(s) broken" in verdict
    else:
        assert "keeps every rule" in verdict


def test_a_malformed_puzzle_gives_the_tasks_reason_in_one_line(solver):
    [(steps, chart, verdict)] = list(solve_events(solver, "53..7", 1, "unroll", 1))
    assert steps == chart == ""
    assert 'class="trm-error"' in verdict
    assert "expected 81 characters, got 5" in verdict and "Traceback" not in verdict
    repeated = "11" + EASY[2:]
    [(_, _, verdict)] = list(solve_events(solver, repeated, 1, "unroll", 1))
    assert "trm-error" in verdict and "\n" not in verdict
    assert len(list(solve_events(solver, EASY, 1, "unroll", 1))) == 5  # still serving


def test_an_oversized_input_is_refused_with_a_reason(solver):
    with pytest.raises(DemoInputError, match=r"^the input has 300,000 characters; the page"):
        solver.read("." * 300_000)
    with pytest.raises(DemoInputError, match="^no puzzle"):
        solver.read("   ")
    with pytest.raises(DemoInputError, match=r"puzzle 3 asked for, but the input holds 2"):
        solver.pick(f"{EASY}\n{OTHER}\n", 2)


def test_an_arc_grid_over_30x30_is_refused_with_the_tasks_reason():
    from trm_plugin_arc import ArcTask

    loaded = types.SimpleNamespace(
        task=ArcTask(), model=types.SimpleNamespace(config=types.SimpleNamespace(seq_len=900))
    )
    solver = Solver(loaded)
    train = [{"input": [[1]], "output": [[2]]}]
    big = json.dumps({"train": train, "test": [{"input": [[1] * 31] * 2}]})
    with pytest.raises(DemoInputError, match="31 columns, more than 30"):
        solver.read(big)
    [(_, tokens)] = solver.read(json.dumps({"train": train, "test": [{"input": [[1, 2]]}]}))
    assert tokens.shape == (900,)


def test_four_people_solving_at_once_each_get_their_own_answer(solver):
    puzzles = [EASY, OTHER, EASY.replace("5", ".", 1), OTHER.replace("3", ".", 1)]
    alone = [list(solver.steps(solver.pick(p)[1]))[-1].prediction for p in puzzles]
    got: dict[int, list] = {}

    def solve(i: int) -> None:
        got[i] = list(solve_events(solver, puzzles[i], 1, "unroll", 1))

    threads = [threading.Thread(target=solve, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(got) == [0, 1, 2, 3]
    for i, shown in got.items():
        final = shown[-1][0]
        last = final[final.rindex('class="trm-grid trm-step"') :]
        style = token_style(solver.task)
        expected = grid_html(style, (9, 9), alone[i])
        cells = [part.split(">")[1] for part in expected.split("<td")[1:]]
        drawn = [part.split(">")[1].split("<")[0] for part in last.split("<td")[1:]]
        assert drawn == [c.split("<")[0] for c in cells], f"user {i} got another answer"


# -- typing a puzzle and the examples ------------------------------------------------------


def test_a_sudoku_typed_cell_by_cell_is_its_text_and_back(solver):
    from trm_core.demo_app import text_events, typed_events

    assert solver.typed
    cells = solver.cells(EASY)
    assert len(cells) == 9 and all(len(row) == 9 for row in cells)
    assert [c or "." for row in cells for c in row] == list(EASY)
    assert solver.typed_text(cells) == EASY
    cells[0][1] = " 4 "  # as typed: spaces around a digit are fine
    assert solver.typed_text(cells)[1] == "4"
    assert typed_events(solver, cells)[1] == ""
    cells[2][3] = "x"
    with pytest.raises(DemoInputError, match=r"^row 3, column 4: 'x' is not a digit 1-9$"):
        solver.typed_text(cells)
    _, verdict = typed_events(solver, cells)
    assert "trm-error" in verdict and "row 3, column 4" in verdict
    with pytest.raises(DemoInputError, match="must be 9x9"):
        solver.typed_text(cells[:8])
    assert text_events(solver, EASY, 1) == solver.cells(EASY)
    assert not isinstance(text_events(solver, "53..", 1), list)  # not a puzzle: grid kept


@pytest.mark.parametrize("name", ["sudoku", "maze", "arc", "life"])
def test_every_task_offers_example_puzzles_it_reads(name):
    task = trm_core.get_registry().get("task", name)()
    preset = task.presets()["cpu" if "cpu" in task.presets() else next(iter(task.presets()))]
    task.configure(preset.get("data", {}).get("options", {}))
    examples = task.example_puzzles()
    assert len(examples) >= 2 and len({n for n, _ in examples}) == len(examples)
    rows, cols = task.grid_shape
    for _, text in examples:
        [(_, tokens), *_] = task.read_puzzles(text, "example")
        assert np.asarray(tokens).shape == (rows * cols,)
    assert task.example_puzzles() == examples  # the same every time


def test_the_page_opens_on_the_first_example(solver):
    from trm_core.demo_app import build_page

    examples = solver.examples()
    assert [n for n, _ in examples][:2] == ["easy #1 (45 givens)", "easy #2 (45 givens)"]
    page = build_page(solver, examples)
    values = [getattr(block, "value", None) for block in page.blocks.values()]
    assert examples[0][1] in values and examples[0][0] in values
    assert solver.cells(examples[0][1]) in [v.get("data") if isinstance(v, dict) else v
                                            for v in values]  # fmt: skip


# -- strategies --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), [("rollouts", 3), ("augment-vote", 2)])
def test_a_strategy_shows_its_candidates_and_the_one_it_chose(solver, name, count):
    from trm_core.strategies import make_strategy

    _, tokens = solver.pick(EASY)
    choice = solver.candidates(tokens, name, count)
    assert choice.candidates.shape == (count, 81) and len(choice.halts) == count
    assert choice.votes.min() >= 1 and 0 <= choice.chosen < count
    _, strategy = make_strategy({"name": name, ("k" if name == "rollouts" else
                                                "augmentations"): count})  # fmt: skip
    answer, _ = solver.loaded.predict(tokens[None], strategy=strategy)
    assert (choice.candidates[choice.chosen] == answer[0]).all()  # what trm-solve answers
    shown = list(solve_events(solver, EASY, 1, name, count))
    verdict = shown[-1][2]
    assert verdict.count('class="trm-grid trm-candidate') == count
    assert "(chosen)" in verdict and f"{name}: {count} candidates" in verdict
    [(_, _, refused)] = list(solve_events(solver, EASY, 1, name, 0))[-1:]
    assert "must lie in 1..64, got 0" in refused


# -- the command -------------------------------------------------------------------------


def test_write_space_writes_a_folder_a_space_runs(model_dir, tmp_path, capsys):
    out = tmp_path / "space"
    examples = tmp_path / "examples.txt"
    examples.write_text(f"{EASY}\n{OTHER}\n")
    assert main(["--write-space", str(out), "--model", str(model_dir),
                 "--examples", str(examples)]) == 0  # fmt: skip
    assert {p.name for p in out.iterdir()} == {
        "app.py", "requirements.txt", "README.md", "model", "examples.txt",
    }  # fmt: skip
    assert {p.name for p in (out / "model").iterdir()} == {
        "config.json", "model.safetensors", "README.md",
    }  # fmt: skip
    app = (out / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert "serve('model'" in app and 'examples="examples.txt"' in app
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert f"trm-core[demo,hub]=={trm_core.__version__}" in requirements
    assert any(line.startswith("trm-plugin-sudoku") for line in requirements)
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme
    assert trm_core.load_model(out / "model").config.task == "sudoku"
    # a second write into the same folder is refused, in one line
    assert main(["--write-space", str(out), "--model", str(model_dir)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_bad_arguments_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["--model", str(tmp_path / "nothing"), "--port", "0"]) == 2
    assert "--port must lie in 1..65535" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    monkeypatch.setitem(sys.modules, "gradio", None)  # gradio not installed
    assert main(["--model", str(tmp_path / "nothing")]) == 2
    assert "pip install 'trm-core[demo]'" in capsys.readouterr().err


def test_a_real_server_on_localhost_serves_the_page(model_dir):
    port = free_port()
    page = serve(str(model_dir), port=port, block=False)
    try:
        assert page.server_name == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
            body = response.read().decode()
        assert "trm-demo: sudoku" in body
        assert "fonts.googleapis" not in body and "fonts.gstatic" not in body
    finally:
        page.close()
    assert torch.get_num_threads() >= 1
