"""The plugin contract version: a plugin written for another contract is refused at
load, by name, before it can fail inside a run; ``trm-plugins`` shows it as
incompatible and exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import trm_core
from trm_core import PLUGIN_CONTRACT, PluginError, Registry, UnknownPluginError
from trm_core.registry import PluginLoadWarning, contract_problem

from .test_registry import _mixer_plugin

ENGINE = trm_core.__version__
NEXT_MINOR = ".".join([ENGINE.split(".")[0], str(int(ENGINE.split(".")[1]) + 1)])

#: A mixer plugin in the shape of today's contract, with its declaration as a field.
MIXER_MODULE = """
import trm_core

TRM_PLUGIN_CONTRACT = {contract!r}

class Echo(trm_core.Mixer):
    def forward(self, hidden, rotary):
        return hidden

@trm_core.hookimpl
def register_mixers(register):
    register({name!r}, Echo)
"""

#: What a contract-1 plugin looked like: it reads names the engine no longer has,
#: so importing it would fail; a refusal by requirement must come before the import.
CONTRACT_1_MODULE = """
from trm_core import num_heads_of  # gone in contract 2: importing this module fails

TRM_PLUGIN_CONTRACT = 1
"""


def build_distribution(tmp_path, dist: str, module: str, source: str, requires: str) -> str:
    """Build and install a real plugin distribution with pip (no index, no build
    isolation) into a folder of its own; returns that folder for PYTHONPATH."""
    project = tmp_path / f"{dist}-src"
    (project / module).mkdir(parents=True)
    (project / module / "__init__.py").write_text(textwrap.dedent(source))
    (project / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "1.0.0"
        dependencies = ["{requires}"]

        [project.entry-points.trm]
        {module.removeprefix("trm_plugin_")} = "{module}"

        [tool.setuptools]
        packages = ["{module}"]
        """)
    )
    target = tmp_path / f"{dist}-site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(project)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(target)


def trm_plugins(site: str, plugin: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": site, "TRM_LOAD_PLUGINS": f"trm-core,{plugin}"}
    command = "from trm_core.cli import run, plugins_main; run(plugins_main)"
    return subprocess.run(
        [sys.executable, "-c", command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_plugin_declaring_an_old_contract_is_refused_by_name(tmp_path):
    site = build_distribution(
        tmp_path,
        "trm-plugin-old",
        "trm_plugin_old",
        MIXER_MODULE.format(contract=PLUGIN_CONTRACT - 1, name="old"),
        requires="trm-core",
    )
    result = trm_plugins(site, "old")
    assert result.returncode == 1, result.stderr
    assert "old" not in result.stdout  # not listed among the usable plugins
    message = (
        f"INCOMPATIBLE plugin 'old' from trm-plugin-old 1.0.0 was written for plugin "
        f"contract {PLUGIN_CONTRACT - 1}, but trm-core {ENGINE} implements contract "
        f"{PLUGIN_CONTRACT}; install a release of trm-plugin-old written for contract "
        f"{PLUGIN_CONTRACT}"
    )
    assert message in result.stderr.splitlines()
    assert len(result.stderr.splitlines()) == 1  # one line, not also a warning

    listed = json.loads(trm_plugins(site, "old", "--json").stdout)
    [refused] = listed["incompatible"]
    assert refused["plugin"] == "old" and refused["distribution"] == "trm-plugin-old"
    assert listed["failed"] == [] and listed["contract"] == PLUGIN_CONTRACT


def test_a_plugin_whose_requirement_excludes_this_engine_is_refused_before_import(tmp_path):
    """Its trm-core range is read from its metadata: the module, which would fail to
    import against this engine, is never imported."""
    site = build_distribution(
        tmp_path, "trm-plugin-ancient", "trm_plugin_ancient", CONTRACT_1_MODULE,
        requires="trm-core>=0.1,<0.2",
    )  # fmt: skip
    result = trm_plugins(site, "ancient")
    assert result.returncode == 1, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "ancient" in line]
    assert line == (
        f"INCOMPATIBLE plugin 'ancient' from trm-plugin-ancient 1.0.0 requires "
        f"trm-core<0.2,>=0.1, but trm-core {ENGINE} (plugin contract {PLUGIN_CONTRACT}) is "
        "installed; install a release of trm-plugin-ancient for it, or a trm-core that "
        "trm-plugin-ancient supports"
    )
    assert "ImportError" not in result.stderr and "num_heads_of" not in result.stderr


def test_other_commands_warn_in_one_line_and_name_it_when_it_is_asked_for(tmp_path):
    site = build_distribution(
        tmp_path, "trm-plugin-old", "trm_plugin_old",
        MIXER_MODULE.format(contract=PLUGIN_CONTRACT - 1, name="old"), requires="trm-core",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": site, "TRM_LOAD_PLUGINS": "trm-core,old,sudoku"}
    command = "from trm_core.cli import run, run_main; run(run_main)"
    result = subprocess.run(
        [sys.executable, "-c", command, "--task", "sudoku", "--mixer", "old", "--max-steps", "1"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("warning: trm: plugin 'old' from trm-plugin-old 1.0.0 was written")
    assert lines[-1].startswith("error: ") and "unknown mixer 'old'" in lines[-1]
    assert not (tmp_path / "runs").exists()  # refused before a run folder is made


# -- in-process: the rules themselves ------------------------------------------------------


def write_distribution(root, dist: str, module: str, source: str, requires: list[str]) -> None:
    """An installed distribution (dist-info + module) under ``root``, without pip."""
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    lines = [f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    entry = module.removeprefix("trm_plugin_")
    (info / "entry_points.txt").write_text(f"[trm]\n{entry} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


def load(tmp_path, monkeypatch, *plugins: str) -> Registry:
    for plugin in plugins:  # each test's module is new, whatever an earlier test imported
        monkeypatch.delitem(sys.modules, f"trm_plugin_{plugin}", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TRM_LOAD_PLUGINS", ",".join(["trm-core", *plugins]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        return Registry.from_environment().load()


@pytest.mark.parametrize(
    "requires",
    [
        [],  # no requirement at all: judged by its declaration
        ["trm-core"],
        [f"trm-core>={ENGINE},<{NEXT_MINOR}"],
        ["trm-core<0.1 ; extra == 'legacy'"],  # only with an extra nobody asked for
        ["numpy>=1.24", "trm-core~=" + ".".join(ENGINE.split(".")[:2])],
    ],
)
def test_a_plugin_for_this_contract_loads(tmp_path, monkeypatch, requires):
    source = MIXER_MODULE.format(contract=PLUGIN_CONTRACT, name="echo")
    write_distribution(tmp_path, "trm-plugin-echo", "trm_plugin_echo", source, requires)
    registry = load(tmp_path, monkeypatch, "echo")
    assert registry.failures == []
    assert registry.entry("mixer", "echo").distribution == "trm-plugin-echo"


def test_an_installed_plugin_without_a_declaration_was_written_for_contract_1(
    tmp_path, monkeypatch
):
    """The declaration arrived with contract 2: every plugin written for contract 1
    lacks it, however loose its requirement (trm 0.1's own plugins required trm-core>=0.1)."""
    source = MIXER_MODULE.format(contract=PLUGIN_CONTRACT, name="echo").replace(
        f"TRM_PLUGIN_CONTRACT = {PLUGIN_CONTRACT!r}", ""
    )
    write_distribution(tmp_path, "trm-plugin-echo", "trm_plugin_echo", source, ["trm-core>=0.1"])
    registry = load(tmp_path, monkeypatch, "echo")
    [failure] = registry.failures
    assert failure.incompatible
    assert failure.describe() == (
        "plugin 'echo' from trm-plugin-echo 1.2.3 declares no TRM_PLUGIN_CONTRACT, so it was "
        f"written for plugin contract 1 (trm-core 0.1), but trm-core {ENGINE} implements "
        f"contract {PLUGIN_CONTRACT}; install a release of trm-plugin-echo written for "
        f"contract {PLUGIN_CONTRACT} (its author adds TRM_PLUGIN_CONTRACT = {PLUGIN_CONTRACT} "
        "once it is)"
    )
    assert registry.names("mixer") == ["attention", "mlp"]


def test_a_plugin_added_by_hand_need_not_declare():
    registry = Registry(select={"trm-core"})
    registry.add_plugin(_mixer_plugin("echo"), name="echo")
    assert "echo" in registry.names("mixer")


@pytest.mark.parametrize(
    ("contract", "requires", "says"),
    [
        (PLUGIN_CONTRACT + 1, [], f"was written for plugin contract {PLUGIN_CONTRACT + 1}"),
        (PLUGIN_CONTRACT + 1, [], "; upgrade trm-core"),
        ("2", [], "declares TRM_PLUGIN_CONTRACT = '2', which is not a contract version"),
        (True, [], "declares TRM_PLUGIN_CONTRACT = True"),
        (PLUGIN_CONTRACT, [f"trm-core>={NEXT_MINOR}"], f"requires trm-core>={NEXT_MINOR}, but"),
        (PLUGIN_CONTRACT, ["trm-core<0.1"], f"but trm-core {ENGINE} (plugin contract"),
    ],
)
def test_a_plugin_for_another_contract_is_recorded_and_not_registered(
    tmp_path, monkeypatch, contract, requires, says
):
    source = MIXER_MODULE.format(contract=contract, name="echo")
    write_distribution(tmp_path, "trm-plugin-echo", "trm_plugin_echo", source, requires)
    registry = load(tmp_path, monkeypatch, "echo")
    [failure] = registry.failures
    assert failure.incompatible and failure.distribution == "trm-plugin-echo"
    assert says in failure.describe()
    assert failure.describe().startswith("plugin 'echo' from trm-plugin-echo 1.2.3 ")
    with pytest.raises(UnknownPluginError, match="failed to load.*trm-plugin-echo"):
        registry.get("mixer", "echo")


def test_a_plugin_added_by_hand_is_checked_too(monkeypatch):
    import types

    plugin = types.SimpleNamespace(TRM_PLUGIN_CONTRACT=PLUGIN_CONTRACT - 1)
    registry = Registry(select={"trm-core"})
    with pytest.raises(PluginError, match=r"plugin 'old' \(trm-plugin-old 9\) was written for"):
        registry.add_plugin(plugin, name="old", distribution="trm-plugin-old", version="9")


def test_the_declaration_may_sit_on_the_entry_points_object_or_its_module():
    class Hooks:
        TRM_PLUGIN_CONTRACT = PLUGIN_CONTRACT - 1

    assert "written for plugin contract" in contract_problem(Hooks(), "d")
    assert contract_problem(object(), "d", required=False) is None
    assert "declares no TRM_PLUGIN_CONTRACT" in contract_problem(object(), "d")
    module = sys.modules[__name__]
    assert not hasattr(module, "TRM_PLUGIN_CONTRACT")


def test_trm_plugins_version_names_the_contract(capsys):
    from trm_core.cli import plugins_main

    with pytest.raises(SystemExit) as exit_:
        plugins_main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"trm-core {ENGINE}, plugin contract {PLUGIN_CONTRACT}\n"
