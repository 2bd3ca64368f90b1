"""The README stays true: its example runs, its commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import trm_core.devices
from trm_core.cli import plugins_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, flags=re.DOTALL)
    assert len(commands) == 2, commands
    install, test = commands[1].split(" && ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert install.replace("pip install", "pip install -q") in ci
    assert test in ci


@pytest.mark.parametrize("native_bfloat16", [False, True])
def test_python_example_runs(machine, native_bfloat16):
    """As a user runs it: dtype "auto", on a CPU without and with native bfloat16."""
    machine.setattr(trm_core.devices, "native_bfloat16", lambda device: native_bfloat16)
    [example] = [block for block in _blocks("python") if "build_model" in block]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert tuple(namespace["out"]["logits"].shape) == (2, 81, 11)
    expected = torch.bfloat16 if native_bfloat16 else torch.float32
    assert namespace["out"]["logits"].dtype == expected


def test_plugin_table_matches_trm_plugins(capsys):
    plugins_main([])
    listed = capsys.readouterr().out.splitlines()
    table = README.split("`trm-plugins` lists what is installed", 1)[1].split("```")[1]
    for line in table.strip().splitlines()[1:]:
        assert line.rstrip() in listed
