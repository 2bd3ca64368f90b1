"""entry_points.md is the plugin contract: check it against the code it documents.

Every hook and every public member of every interface must be documented, with
the exact call signature, and the worked example must be the real example
distribution in examples/trm-plugin-conv/, byte for byte.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from torch import nn

from trm_core import hookspecs
from trm_core.interfaces import KINDS, Component

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "entry_points.md"
EXAMPLE_FILES = (
    "examples/trm-plugin-conv/pyproject.toml",
    "examples/trm-plugin-conv/trm_plugin_conv/__init__.py",
)
# A fenced block: ```info\n body ```, the closing fence alone on its line.
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="([^"]+)"')


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body under the heading line ``heading``, up to the next heading of any level."""
    lines = text.splitlines()
    try:
        start = lines.index(heading) + 1
    except ValueError:
        pytest.fail(f"entry_points.md has no heading line {heading!r}")
    body = []
    in_fence = False
    for line in lines[start:]:
        if line.startswith("```"):
            in_fence = not in_fence
        if line.startswith("#") and not in_fence:
            break
        body.append(line)
    return "\n".join(body) + "\n"


def call_text(function) -> str:
    """``name(arg, ...)`` without ``self``: how the doc writes a call signature."""
    params = [p for p in inspect.signature(function).parameters if p != "self"]
    return f"{function.__name__}({', '.join(params)})"


def hook_functions() -> list:
    marker = f"{hookspecs.PROJECT}_spec"  # what pluggy's HookspecMarker sets on a hookspec
    return [
        obj
        for _, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(obj, marker, None) is not None
    ]


def interface_members(interface: type) -> list[str]:
    names = {name for name in vars(interface) if not name.startswith("_")}
    if issubclass(interface, nn.Module) and interface is not Component:
        names.add("forward")
    return sorted(names)


def test_every_hook_is_collected():
    # Guards the walk below against finding nothing (e.g. a renamed marker).
    assert {f.__name__ for f in hook_functions()} == set(hookspecs.HOOK_KINDS)


@pytest.mark.parametrize("hook", hook_functions(), ids=lambda f: f.__name__)
def test_hook_documented_with_exact_signature(doc, hook):
    signature = call_text(hook)
    assert f"`{signature}`" in doc, f"entry_points.md does not document the hook `{signature}`"
    # Each hook has its own heading, so readers (and links) can find it.
    section(doc, f"### `{signature}`")


@pytest.mark.parametrize(
    "interface", [*(k.interface for k in KINDS.values()), Component], ids=lambda c: c.__name__
)
def test_interface_members_documented(doc, interface):
    body = section(doc, f"### `{interface.__name__}`")
    missing = []
    for name in interface_members(interface):
        member = inspect.getattr_static(interface, name)
        # A method by its call, e.g. `forward(inputs, puzzle_identifiers)`; a
        # property or class attribute by its name.
        wanted = f"`{call_text(member)}`" if inspect.isfunction(member) else f"`{name}`"
        if wanted not in body:
            missing.append(wanted)
    assert not missing, (
        f"the {interface.__name__} section of entry_points.md does not document: "
        + ", ".join(missing)
    )


def test_worked_example_is_the_example_distribution(doc):
    body = section(doc, "## Worked example")
    blocks = FENCE.findall(body)
    assert blocks, "the Worked example section has no code blocks"
    shown = {}
    for info, code in blocks:
        title = TITLE.search(info)
        assert title, f'a Worked example code block has no title="<file>": ```{info}'
        path = title.group(1)
        assert (ROOT / path).is_file(), f"the Worked example shows {path}, which does not exist"
        expected = (ROOT / path).read_text(encoding="utf-8")
        assert code == expected, (
            f"the Worked example's copy of {path} differs from the file; "
            "paste the file into entry_points.md again"
        )
        shown[path] = code
    assert set(EXAMPLE_FILES) <= set(shown), (
        f"the Worked example must show {', '.join(EXAMPLE_FILES)}; it shows {', '.join(shown)}"
    )
