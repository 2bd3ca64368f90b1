"""The README stays true: its example runs, its commands are the ones CI uses."""

from __future__ import annotations

import ast
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


def _quick_start() -> list[str]:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", quick_start, flags=re.DOTALL)


def test_quick_start_has_two_commands_and_ci_runs_them_verbatim():
    commands = _quick_start()
    assert len(commands) == 2, commands
    assert all(" && " in command and "pip install" in command for command in commands)
    ci = (ROOT / ".ci" / "run").read_text()
    # CI reads the commands out of this README and runs each as it stands ...
    assert "README.md" in ci and "## Quick start" in ci
    assert 'bash -euo pipefail -c "$command"' in ci
    # ... and installs nothing else into the environment the tests run in: its only
    # other installs go into the release check's fresh virtual environment.
    for line in ci.splitlines():
        if "pip install" in line and not line.lstrip().startswith("#"):
            assert '"$release/venv/bin/python" -m pip install' in line, line


def _local_packages() -> dict[str, str]:
    """Top-level import name -> the folder of the repository's distribution providing it
    (tasks and examples; trm-core's own are installed by ``-e '.[dev]'``)."""
    packages = {}
    for pattern in ("tasks/*/pyproject.toml", "examples/*/pyproject.toml"):
        for folder in (pyproject.parent for pyproject in ROOT.glob(pattern)):
            for init in folder.glob("*/__init__.py"):
                packages[init.parent.name] = "./" + folder.relative_to(ROOT).as_posix()
    return packages


def test_the_test_command_installs_every_distribution_the_tests_import():
    """A new contributor runs the README's test command and nothing else: every module of
    the repository's task and example distributions that a test imports must be installed
    by it (the suite once imported ``trm_task_life``, which only CI installed)."""
    install = _quick_start()[1].split(" && ")[0]
    installed = set(re.findall(r"-e (\./\S+)", install))
    packages = _local_packages()
    assert {"trm_plugin_sudoku", "trm_task_life"} <= set(packages), packages
    missing = set()
    tests = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("tasks/*/tests/**/*.py")]
    for path in tests:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                folder = packages.get(name.split(".")[0])
                if folder and folder not in installed:
                    missing.add(f"{path.relative_to(ROOT)} imports {name} from {folder}")
    assert not missing, sorted(missing)


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
