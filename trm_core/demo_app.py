"""``trm-demo``: a web page where a trained model solves a puzzle step by step.

    trm-demo --model SOURCE [--host 127.0.0.1] [--port 7860] [--device cpu]
    trm-demo --write-space DIR --model SOURCE

SOURCE is anything :func:`trm_core.load_model` takes. The page (Gradio, the optional
extra ``trm-core[demo]``) reads a puzzle in the task's own text format, streams the
answer after each supervision step, draws the halting probability per step, and
gives the task's rule check; a strategy selector shows the candidates of
``augment-vote`` and ``rollouts`` and the one chosen. It needs no internet access:
the theme uses the system's fonts, and Gradio's analytics are off. It listens on
127.0.0.1 unless ``--host`` says otherwise.

``--write-space DIR`` writes a folder that can be pushed to a Hugging Face Space as
it is: ``app.py``, ``requirements.txt``, a ``README.md`` with the Space's settings,
and the model folder (or, for ``hf://owner/name``, its id).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from trm_core.command import Parser, fail, guarded, named, run

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
INSTALL = "pip install 'trm-core[demo]'"
CSS = ".trm-grid{margin:0}.trm-grid figcaption{font-size:12px}#trm-cells{max-width:460px}"


def gradio() -> Any:
    """The gradio module, or ImportError in one line saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        import gradio as gr
    except ImportError:
        raise ImportError(f"trm-demo needs Gradio: {INSTALL}") from None
    return gr


def theme(gr: Any) -> Any:
    """Gradio's default look with the system's fonts (the default fetches Google Fonts)."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def solve_events(solver, text: str, index: float, strategy: str, count: float):
    """The Solve button's stream: ``(steps, chart, verdict)`` HTML after each step, then
    the verdict (and, for a strategy, its candidates). Bad input ends it with the reason
    in the verdict, in one line; the server keeps serving."""
    from trm_core.demo import (
        DemoInputError,
        choice_html,
        error_html,
        halt_chart,
        steps_html,
        verdict_html,
    )

    strategy = strategy or "unroll"
    count = 1 if count is None else int(count)
    try:
        _, tokens = solver.pick(text, (1 if index is None else int(index)) - 1)
        if strategy != "unroll":
            solver.strategy(strategy, count)  # a bad choice is refused before any work
    except DemoInputError as error:
        yield "", "", error_html(str(error))
        return
    total, steps, began = solver.steps_per_answer, [], time.perf_counter()
    try:
        for step in solver.steps(tokens):
            steps.append(step)
            chart = halt_chart([s.halt for s in steps], total)
            yield steps_html(solver, steps), chart, '<div class="trm-working">solving...</div>'
        prediction = steps[-1].prediction
        extra = ""
        if strategy != "unroll":
            choice = solver.candidates(tokens, strategy, count)
            prediction = choice.candidates[choice.chosen]
            extra = choice_html(solver, choice)
        verdict = verdict_html(solver.check(tokens, prediction), time.perf_counter() - began)
    except DemoInputError as error:
        yield steps_html(solver, steps), "", error_html(str(error))
        return
    except Exception as error:  # the model or the task failed: one line, keep serving
        yield steps_html(solver, steps), "", error_html(f"{type(error).__name__}: {error}")
        return
    yield steps_html(solver, steps), halt_chart([s.halt for s in steps], total), verdict + extra


def typed_events(solver, cells):
    """The typed grid's edit: ``(text, verdict)``, the puzzle text the grid spells, or the
    text left as it is and the reason in the verdict."""
    from trm_core.demo import DemoInputError, error_html

    gr = gradio()
    try:
        return solver.typed_text(cells), ""
    except DemoInputError as error:
        return gr.update(), error_html(str(error))


def text_events(solver, text, index):
    """The text box's edit: the typed grid filled from the text, or left as it is when the
    text is not (yet) a puzzle."""
    from trm_core.demo import DemoInputError

    try:
        return solver.cells(text, (1 if index is None else int(index)) - 1)
    except DemoInputError:
        return gradio().update()


def build_page(solver, examples: list[tuple[str, str]] | None = None) -> Any:
    """The Gradio Blocks page of ``solver`` (a :class:`trm_core.demo.Solver`); ``examples``
    (``[(name, text)]``) are offered in a list, the first one shown when the page opens."""
    from trm_core.demo import MAX_CANDIDATES, STRATEGIES

    gr = gradio()
    loaded = solver.loaded
    rows, cols = solver.task.grid_shape
    examples = list(examples or [])
    first = examples[0] if examples else ("", "")
    with gr.Blocks(title=f"trm-demo: {solver.name}", analytics_enabled=False) as page:
        gr.Markdown(
            f"# trm-demo: {solver.name}\n"
            f"A Tiny Recursive Model (`{loaded.source}`, step {loaded.step}) answers a "
            f"{solver.name} puzzle ({rows}x{cols}); its answer after each of its "
            f"{solver.steps_per_answer} supervision steps appears as it is computed. "
            "Changed cells are outlined; faded cells are those the model is unsure of."
        )
        with gr.Row():
            with gr.Column(scale=2):
                if examples:
                    pick = gr.Dropdown(
                        [name for name, _ in examples], label="example puzzles",
                        value=first[0], elem_id="trm-examples",
                    )  # fmt: skip
                if solver.typed:
                    try:
                        start = solver.cells(first[1]) if first[1] else None
                    except ValueError:
                        start = None
                    grid = gr.Dataframe(
                        start or [[""] * cols for _ in range(rows)],
                        headers=[str(c) for c in range(1, cols + 1)], row_count=rows,
                        column_count=cols, datatype="str", type="array", interactive=True,
                        label="type the puzzle, a symbol a cell (the text below follows)",
                        elem_id="trm-cells", max_height=520,
                    )  # fmt: skip
                text = gr.Textbox(
                    first[1], label=f"or paste it ({solver.name}'s text format)",
                    lines=2 if solver.typed else 8,
                    max_lines=30, elem_id="trm-puzzle",
                )  # fmt: skip
                index = gr.Number(
                    value=1, precision=0, minimum=1, label="which puzzle of the text (an "
                    "ARC task's test input, a line of a list)", elem_id="trm-index",
                )  # fmt: skip
                with gr.Row():
                    strategy = gr.Radio(
                        list(STRATEGIES), value="unroll", label="strategy", elem_id="trm-strategy"
                    )
                    count = gr.Slider(
                        1, MAX_CANDIDATES, value=8, step=1,
                        label="A copies (augment-vote) or K trajectories (rollouts)",
                    )  # fmt: skip
                solve = gr.Button("Solve", variant="primary", elem_id="trm-solve")
            with gr.Column(scale=1):
                chart = gr.HTML(elem_id="trm-chart")
                verdict = gr.HTML(elem_id="trm-verdict")
        steps = gr.HTML(elem_id="trm-steps")
        if examples:
            chosen = dict(examples)
            pick.input(lambda name: chosen.get(name, ""), pick, text)
        if solver.typed:
            # Each fills the other: typing a cell spells the text (``input``: a person's
            # edits only); a paste, or an example picked, fills the grid (``change``).
            grid.input(lambda cells: typed_events(solver, cells), grid, [text, verdict])
            text.change(lambda t, i: text_events(solver, t, i), [text, index], grid)
        solve.click(
            lambda *a: (yield from solve_events(solver, *a)),
            [text, index, strategy, count], [steps, chart, verdict],
            concurrency_limit=4, show_progress="minimal",
        )  # fmt: skip
    return page


def read_examples(task, path: str | None) -> list[tuple[str, str]]:
    """``[(name, text)]``: each puzzle of a file in the task's format, as its own text."""
    if not path:
        return []
    from trm_core.data import read_text_file

    text = read_text_file(Path(path))
    puzzles = task.read_puzzles(text, str(path))  # ValueError naming the file and place
    lines = text.splitlines()
    if len(puzzles) == len([line for line in lines if line.strip() and line[0] != "#"]):
        chosen = [line for line in lines if line.strip() and line[0] != "#"]  # one a line
        return [(where, line) for (where, _), line in zip(puzzles, chosen, strict=True)]
    return [(str(path), text)]


def serve(
    source: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    device: str = "cpu",
    examples: str | None = None,
    block: bool = True,
) -> Any:
    """Load ``source``, build its page and serve it; returns the page (``block=False``:
    at once, serving in the background; ``page.close()`` stops it)."""
    import trm_core
    from trm_core.demo import Solver

    gr = gradio()
    loaded = trm_core.load_model(source, device=device)
    solver = Solver(loaded)
    page = build_page(solver, read_examples(loaded.task, examples) + solver.examples())
    page.queue(default_concurrency_limit=4)
    page.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
        theme=theme(gr), css=CSS, footer_links=[], ssr_mode=False,
    )  # fmt: skip
    return page


# ----------------------------------------------------------------------------- a Space

APP = '''"""A Hugging Face Space: a trm model served by trm-demo (written by --write-space)."""

from trm_core.demo_app import serve

serve({source!r}, host="0.0.0.0", port=7860{examples})
'''

SPACE_README = """---
title: trm-demo {task}
emoji: 🧩
colorFrom: blue
colorTo: gray
sdk: gradio
app_file: app.py
pinned: false
---

# trm-demo: {task}

A Tiny Recursive Model solving {task} puzzles step by step, served by `trm-demo`
([trm](https://example.invalid/trm)). The model: {model}.

Run it here with `pip install -r requirements.txt && python app.py`, or push this folder
to a Hugging Face Space (SDK: Gradio):

```bash
huggingface-cli repo create NAME --repo-type space --space_sdk gradio
git init && git remote add space https://huggingface.co/spaces/OWNER/NAME
git add . && git commit -m "trm-demo" && git push space HEAD:main
```
"""


def write_space(out: str | os.PathLike, source: str, examples: str | None = None) -> Path:
    """Write a folder that can be pushed to a Hugging Face Space as it is; returns it.

    ``app.py`` serves ``source`` with :func:`serve`; ``requirements.txt`` names trm-core
    (with the demo and hub extras) and the distributions of the model's components;
    ``model/`` is the model folder (a run or checkpoint is exported first), or for
    ``hf://owner/name`` the Space loads the id.
    """
    import trm_core
    from trm_core.modelfolder import is_model_folder

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--write-space {out}: the folder exists and is not empty")
    loaded = trm_core.load_model(source, device="cpu")
    read_examples(loaded.task, examples)  # a bad file fails before anything is written
    out.mkdir(parents=True, exist_ok=True)
    if str(source).startswith("hf://"):
        shown, model = str(source), f"`{source}` on the Hub"
    else:
        given = Path(source)
        if is_model_folder(given):
            shutil.copytree(given, out / "model")
        else:
            trm_core.export_model(loaded, out / "model")
        shown, model = "model", "the folder `model/` here"
    extra = ""
    if examples:
        shutil.copyfile(examples, out / "examples.txt")
        extra = ', examples="examples.txt"'
    (out / "app.py").write_text(APP.format(source=shown, examples=extra))
    folder = loaded.folder if shown != "model" else out / "model"
    manifest = json.loads((folder / "config.json").read_text()) if folder else {}
    distributions = {"trm-core[demo,hub]": trm_core.__version__}
    for component in manifest.get("components", {}).values():
        name = component.get("distribution")
        if name and name != "trm-core":
            distributions[name] = component.get("version")
    lines = ["torch"] + [f"{n}=={v}" if v else n for n, v in distributions.items()]
    (out / "requirements.txt").write_text("\n".join(lines) + "\n")
    (out / "README.md").write_text(SPACE_README.format(task=loaded.config.task, model=model))
    return out


# ----------------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="trm-demo",
        description="Serve a web page where a trained trm model solves puzzles step by step.",
    )
    parser.add_argument(
        "--model", type=named, required=True, metavar="SOURCE",
        help="a model folder, a run folder, a checkpoint or hf://owner/name[@revision]",
    )  # fmt: skip
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on "
                        f"(default {DEFAULT_HOST}: this machine only)")  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 7860")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    parser.add_argument("--examples", metavar="FILE", help="puzzles offered on the page")
    parser.add_argument(
        "--write-space", metavar="DIR", help="write a Hugging Face Space folder and exit"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        return fail(f"--port must lie in 1..65535, got {args.port}")
    return guarded(lambda: _demo(args))


def _demo(args: argparse.Namespace) -> int:
    if args.write_space:
        try:
            out = write_space(args.write_space, args.model, args.examples)
        except (FileExistsError, ValueError) as error:
            return fail(str(error))
        print(f"wrote {out}: push it to a Hugging Face Space (see {out / 'README.md'})")
        return 0
    try:
        gradio()
        serve(args.model, host=args.host, port=args.port, device=args.device,
              examples=args.examples)  # fmt: skip
    except (ImportError, ValueError) as error:
        return fail(str(error))
    return 0


def demo_command() -> None:
    run(main)
