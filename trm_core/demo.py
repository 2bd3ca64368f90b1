"""What ``trm-demo``'s page shows, without the page: a model answering one puzzle step by step.

:class:`Solver` wraps a :class:`~trm_core.LoadedModel` for any task:

- :meth:`Solver.read` reads a user's text with the task's own reader
  (``Task.read_puzzles``), refusing a huge paste before the task sees it;
- :meth:`Solver.steps` yields the answer after each supervision step as soon as it
  is computed (the one unroll loop, :func:`trm_core.evaluate.unroll`, runs in a
  thread and hands each step over), with each cell's confidence, the halting
  probability and the cells that changed;
- :meth:`Solver.candidates` answers with an inference strategy (``rollouts``,
  ``augment-vote``) and says which candidate was chosen, with its votes and halt score;
- :func:`grid_html`, :func:`steps_html`, :func:`halt_chart` and :func:`verdict_html`
  draw them, each token as the task draws it (``Task.token_style``).

The page itself (Gradio) is :mod:`trm_core.demo_app`; nothing here imports it.
"""

from __future__ import annotations

import html
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from .config import ConfigError
from .evaluate import unroll
from .inference import LoadedModel

#: Characters a pasted puzzle may have (an ARC task JSON of 30x30 grids is ~20,000).
MAX_TEXT = 200_000
#: Candidates a strategy may run for one puzzle on the page (A or K).
MAX_CANDIDATES = 64
#: The strategies the page offers, each with the option its count sets.
STRATEGIES = {"unroll": None, "augment-vote": "augmentations", "rollouts": "k"}


class DemoInputError(ValueError):
    """What the user gave cannot be answered; the message is one line for the page."""


@attrs.frozen
class Step:
    """The model's answer after one supervision step."""

    number: int  # 1-based
    prediction: np.ndarray  # [S] tokens
    confidence: np.ndarray  # [S] probability of each predicted token
    halt: float  # halting probability, sigmoid(halt logit)
    changed: np.ndarray  # [S] bool: differs from the previous step (step 1: from the puzzle)
    seconds: float  # since the solve began


@attrs.frozen
class Choice:
    """A strategy's candidates for one puzzle and the one it chose."""

    strategy: str
    candidates: np.ndarray  # [M, S] tokens, in the puzzle's own frame
    halts: np.ndarray  # [M] halting probabilities
    votes: np.ndarray  # [M] how many candidates give the same answer
    chosen: int  # the index of the chosen candidate
    rule: str  # how it was chosen: "halt" or "vote"
    seconds: float


class Solver:
    """One loaded model serving many people: every call works on its own puzzle; the
    model runs one solve at a time (a lock), so concurrent users each get their own."""

    def __init__(self, loaded: LoadedModel, max_text: int = MAX_TEXT) -> None:
        self.loaded = loaded
        self.task = loaded.task
        self.max_text = max_text
        self.style = token_style(self.task)
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.loaded.config.task

    @property
    def steps_per_answer(self) -> int:
        return self.loaded.model.config.halt_max_steps

    def read(self, text: str) -> list[tuple[str, np.ndarray]]:
        """Every puzzle in ``text`` (the task's format), or DemoInputError saying why not."""
        if text is None or not text.strip():
            raise DemoInputError("no puzzle: paste one in the task's text format")
        if len(text) > self.max_text:
            raise DemoInputError(
                f"the input has {len(text):,} characters; the page takes at most {self.max_text:,}"
            )
        try:
            puzzles = self.task.read_puzzles(text, "the puzzle")
        except ValueError as error:
            raise DemoInputError(one_line(str(error))) from None
        if not puzzles:
            raise DemoInputError("no puzzle in the input")
        config = self.loaded.model.config
        for where, tokens in puzzles:
            if np.asarray(tokens).shape != (config.seq_len,):
                raise DemoInputError(f"{where}: not a puzzle of {config.seq_len} tokens")
        return puzzles

    def pick(self, text: str, index: int = 0) -> tuple[str, np.ndarray]:
        """The ``index``-th puzzle (0-based) of ``text``: an ARC task's chosen test input."""
        puzzles = self.read(text)
        if not 0 <= index < len(puzzles):
            raise DemoInputError(
                f"puzzle {index + 1} asked for, but the input holds {len(puzzles)}"
            )
        return puzzles[index]

    @property
    def typed(self) -> bool:
        """Whether the task reads a puzzle typed cell by cell (``Task.typed_puzzle``)."""
        return self.task.supports("typed_puzzle")

    def examples(self) -> list[tuple[str, str]]:
        """The task's own example puzzles (``Task.example_puzzles``) that this model
        reads; an example it cannot read is left out."""
        found = []
        for name, text in self.task.example_puzzles():
            try:
                self.read(text)
            except DemoInputError:
                continue
            found.append((str(name), text))
        return found

    def typed_text(self, cells: Sequence[Sequence[Any]]) -> str:
        """The puzzle text of a grid typed cell by cell, or DemoInputError saying why not."""
        rows, cols = self.task.grid_shape
        cells = [["" if c is None else str(c) for c in row] for row in cells]
        if len(cells) != rows or any(len(row) != cols for row in cells):
            raise DemoInputError(f"the typed grid must be {rows}x{cols}")
        try:
            return self.task.typed_puzzle(cells)
        except ValueError as error:
            raise DemoInputError(one_line(str(error))) from None

    def cells(self, text: str, index: int = 0) -> list[list[str]]:
        """The ``index``-th puzzle of ``text`` as the grid's cells (the tokens' symbols),
        to fill the typed grid; DemoInputError when the text is not a puzzle."""
        _, tokens = self.pick(text, index)
        rows, cols = self.task.grid_shape
        symbols = [self.style[int(t)][0] for t in np.asarray(tokens)]
        return [symbols[r * cols : (r + 1) * cols] for r in range(rows)]

    def _batch(self, tokens: np.ndarray, copies: int = 1) -> dict[str, torch.Tensor]:
        device = self.loaded.device
        inputs = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=device)
        inputs = inputs[None].repeat(copies, 1)
        ids = torch.ones(copies, dtype=torch.long, device=device)  # as LoadedModel.predict
        return {"inputs": inputs, "puzzle_identifiers": ids}

    def steps(self, tokens: np.ndarray) -> Iterator[Step]:
        """The answer after each supervision step, each yielded as soon as it is computed."""
        model, batch = self.loaded.model, self._batch(tokens)
        model.eval()
        handed: queue.Queue = queue.Queue()
        began = time.perf_counter()

        def hand_over(step: int, out: dict[str, torch.Tensor]) -> None:
            probabilities = torch.softmax(out["logits"][0].float(), dim=-1)  # [S, V]
            confidence, prediction = probabilities.max(-1)
            halt = torch.sigmoid(out["halt_logits"][0].float())
            handed.put((step, prediction.cpu().numpy(), confidence.cpu().numpy(), float(halt)))

        def work() -> None:
            try:
                with self.lock:
                    unroll(model, batch, on_step=hand_over)
            except Exception as error:  # handed to the reader, who reports it in one line
                handed.put(error)
            finally:
                handed.put(None)

        threading.Thread(target=work, name="trm-demo-unroll", daemon=True).start()
        previous = np.asarray(tokens)
        while (item := handed.get()) is not None:
            if isinstance(item, Exception):
                raise item
            number, prediction, confidence, halt = item
            yield Step(
                number, prediction, confidence, halt, prediction != previous,
                time.perf_counter() - began,
            )  # fmt: skip
            previous = prediction

    def strategy(self, name: str, count: int, seed: int = 0) -> tuple[str, Any]:
        """The strategy ``name`` with ``count`` (A copies or K trajectories), checked
        against the task and model; DemoInputError saying why not."""
        from .strategies import check_strategy, make_strategy

        option = STRATEGIES.get(name)
        if option is None:
            raise DemoInputError(
                f"unknown strategy {name!r} for candidates; choose "
                + " or ".join(n for n, o in STRATEGIES.items() if o)
            )
        if isinstance(count, bool) or not 1 <= int(count) <= MAX_CANDIDATES:
            raise DemoInputError(f"{option} must lie in 1..{MAX_CANDIDATES}, got {count}")
        try:
            name, strategy = make_strategy({"name": name, option: int(count), "seed": seed})
            check_strategy(name, strategy, self.task, self.loaded.model)
        except ConfigError as error:
            raise DemoInputError(one_line(str(error))) from None
        if not hasattr(strategy, "candidates"):
            raise DemoInputError(f"the strategy {name!r} does not list its candidates")
        return name, strategy

    def candidates(self, tokens: np.ndarray, name: str, count: int, seed: int = 0) -> Choice:
        """Answer with the strategy ``name`` (``augment-vote`` with ``count`` copies,
        ``rollouts`` with ``count`` trajectories): every candidate and the chosen one."""
        from .strategies import select_by_halt, select_by_vote

        name, strategy = self.strategy(name, count, seed)
        began = time.perf_counter()
        with self.lock:
            self.loaded.model.eval()
            predictions, halt_logits = strategy.candidates(
                self.loaded.model, self.task, self._batch(tokens), seed
            )  # [1, M, S], [1, M]
        rule = getattr(strategy, "primary", "halt")
        select = select_by_vote if rule == "vote" else select_by_halt
        chosen = select(predictions, halt_logits)[0]  # [S]
        found = predictions[0]
        same = (found[:, None, :] == found[None, :, :]).all(-1)  # [M, M]
        index = int((found == chosen).all(-1).nonzero()[0, 0])
        return Choice(
            name, found.cpu().numpy(), torch.sigmoid(halt_logits[0]).cpu().numpy(),
            same.sum(-1).cpu().numpy(), index, rule, time.perf_counter() - began,
        )  # fmt: skip

    def check(self, tokens: np.ndarray, prediction: np.ndarray) -> list[str] | None:
        """The task's rule check of an answer (None: the task cannot check one)."""
        return self.task.check_answer(np.asarray(tokens), np.asarray(prediction))


def one_line(text: str) -> str:
    """A message as one line (a task's reason may span several)."""
    return " ".join(text.split())


def token_style(task: Any) -> list[tuple[str, str]]:
    """The task's ``token_style``, checked: one ``(symbol, colour)`` per token."""
    style = [(str(symbol), str(colour)) for symbol, colour in task.token_style()]
    if len(style) != task.vocab_size:
        raise ValueError(
            f"{type(task).__name__}.token_style gives {len(style)} styles for a vocabulary "
            f"of {task.vocab_size}"
        )
    return style


# ----------------------------------------------------------------------------- drawing


def grid_html(
    style: Sequence[tuple[str, str]],
    shape: tuple[int, int],
    tokens: np.ndarray,
    *,
    changed: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    title: str = "",
    css_class: str = "trm-grid",
) -> str:
    """A grid as an HTML table: each cell the token's symbol on its colour, faded where
    the model is unsure (``confidence``), outlined where it ``changed``."""
    rows, cols = shape
    cell = max(8, min(26, 300 // max(rows, cols, 1)))
    tokens = np.asarray(tokens).reshape(-1)
    parts = [f'<figure class="{css_class}">']
    if title:
        parts.append(f"<figcaption>{html.escape(title)}</figcaption>")
    parts.append('<table style="border-collapse:collapse;font-family:monospace">')
    for r in range(rows):
        parts.append("<tr>")
        for c in range(cols):
            i = r * cols + c
            token = int(tokens[i])
            symbol, colour = style[token] if 0 <= token < len(style) else ("?", "#ffffff")
            css = [
                f"width:{cell}px;height:{cell}px;padding:0;text-align:center",
                f"font-size:{max(6, cell * 3 // 5)}px;border:1px solid #bbb;background:{colour}",
            ]
            if confidence is not None:
                css.append(f"opacity:{0.3 + 0.7 * float(confidence[i]):.2f}")
            if changed is not None and changed[i]:
                css.append("outline:2px solid #e8590c;outline-offset:-2px")
            parts.append(f'<td style="{";".join(css)}">{html.escape(symbol)}</td>')
        parts.append("</tr>")
    parts.append("</table></figure>")
    return "".join(parts)


def steps_html(solver: Solver, steps: Sequence[Step]) -> str:
    """Every step so far, side by side."""
    shape = solver.task.grid_shape
    grids = [
        grid_html(
            solver.style, shape, s.prediction, changed=s.changed, confidence=s.confidence,
            title=f"step {s.number}: {int(s.changed.sum())} changed, halt {s.halt:.2f}",
            css_class="trm-grid trm-step",
        )
        for s in steps
    ]  # fmt: skip
    flex = "display:flex;flex-wrap:wrap;gap:8px"
    return f'<div class="trm-steps" style="{flex}">{"".join(grids)}</div>'


def halt_chart(halts: Sequence[float], total: int) -> str:
    """The halting probability per step, as a small inline SVG line chart."""
    width, height, pad = 320, 120, 20
    span = max(total - 1, 1)

    def point(i: int, p: float) -> str:
        x = pad + (width - 2 * pad) * i / span
        y = height - pad - (height - 2 * pad) * p
        return f"{x:.1f},{y:.1f}"

    line = " ".join(point(i, p) for i, p in enumerate(halts))
    half = height - pad - (height - 2 * pad) * 0.5
    dots = "".join(
        f'<circle cx="{point(i, p).split(",")[0]}" cy="{point(i, p).split(",")[1]}" r="2.5" '
        'fill="#1c7ed6"/>'
        for i, p in enumerate(halts)
    )
    return (
        f'<svg class="trm-halt" width="{width}" height="{height}" role="img" '
        f'aria-label="halting probability per step">'
        f'<text x="{pad}" y="12" font-size="11">halting probability per step</text>'
        f'<line x1="{pad}" y1="{half:.1f}" x2="{width - pad}" y2="{half:.1f}" '
        'stroke="#aaa" stroke-dasharray="4 3"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#555"/>'
        f'<polyline points="{line}" fill="none" stroke="#1c7ed6" stroke-width="2"/>{dots}'
        f'<text x="{pad}" y="{height - 4}" font-size="10">step 1</text>'
        f'<text x="{width - pad - 40}" y="{height - 4}" font-size="10">step {total}</text>'
        "</svg>"
    )


def verdict_html(problems: list[str] | None, seconds: float, shown: int = 12) -> str:
    """The task's rule check: a tick, the broken rules, or that the task cannot check."""
    took = f"{seconds:.2f} s"
    if problems is None:
        body = f"answered in {took}; this task cannot check an answer without its solution"
    elif not problems:
        body = f"&#10004; the answer keeps every rule (answered in {took})"
    else:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems[:shown])
        more = f"<li>... and {len(problems) - shown} more</li>" if len(problems) > shown else ""
        body = f"&#10008; {len(problems)} rule(s) broken (answered in {took})<ul>{items}{more}</ul>"
    return f'<div class="trm-verdict">{body}</div>'


def error_html(message: str) -> str:
    """A refusal, in one line on the page."""
    return f'<div class="trm-error" style="color:#c92a2a">{html.escape(one_line(message))}</div>'


def choice_html(solver: Solver, choice: Choice) -> str:
    """A strategy's candidates with their votes and halt scores, the chosen one marked."""
    shape = solver.task.grid_shape
    cards = []
    for i, candidate in enumerate(choice.candidates):
        mark = " (chosen)" if i == choice.chosen else ""
        cards.append(
            grid_html(
                solver.style, shape, candidate,
                title=f"#{i + 1}: {int(choice.votes[i])} vote(s), halt {choice.halts[i]:.2f}{mark}",
                css_class="trm-grid trm-candidate" + (" trm-chosen" if mark else ""),
            )
        )  # fmt: skip
    rule = "the most votes" if choice.rule == "vote" else "the highest halt score"
    head = (
        f"<p>{choice.strategy}: {len(choice.candidates)} candidates; chosen by {rule}: "
        f"#{choice.chosen + 1}</p>"
    )
    return (
        f'<div class="trm-candidates">{head}'
        f'<div style="display:flex;flex-wrap:wrap;gap:8px">{"".join(cards)}</div></div>'
    )
