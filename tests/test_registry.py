"""The plugin registry: loading, selection, lookups and the errors users see."""

from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
import types
import warnings
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
import torch

import trm_core
from trm_core import Mixer, PluginError, Registry, UnknownPluginError, hookimpl
from trm_core.cli import plugins_main
from trm_core.registry import PluginLoadWarning

FIRST_PARTY = {
    ("encoder", "grid"),
    ("mixer", "attention"),
    ("mixer", "mlp"),
    ("core", "trm"),
    ("halting_head", "first_token"),
    ("strategy", "augment-vote"),
    ("strategy", "rollouts"),
    ("strategy", "steps"),
    ("strategy", "unroll"),
    ("logger", "tensorboard"),
}


class _NoOpMixer(Mixer):
    def forward(self, hidden, rotary):
        return hidden


def _mixer_plugin(name: str) -> types.SimpleNamespace:
    @hookimpl
    def register_mixers(register):
        register(name, _NoOpMixer)

    return types.SimpleNamespace(register_mixers=register_mixers)


def _write_distribution(root, dist: str, entry_points: dict[str, str], modules: dict[str, str]):
    """A real installed distribution (dist-info + modules) under ``root``."""
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = ["[trm]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


GOOD_MODULE = """
import trm_core

TRM_PLUGIN_CONTRACT = trm_core.PLUGIN_CONTRACT

class Echo(trm_core.Mixer):
    def forward(self, hidden, rotary):
        return hidden

@trm_core.hookimpl
def register_mixers(register):
    register("echo", Echo)
"""


TYPO_MODULE = """
import trm_core

TRM_PLUGIN_CONTRACT = trm_core.PLUGIN_CONTRACT

@trm_core.hookimpl
def register_mixer(register):  # missing the final "s"
    pass
"""


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """Install third-party distributions: one works, one misspells a hook, one fails to import."""
    _write_distribution(
        tmp_path, "trm-plugin-echo", {"echo": "trm_plugin_echo"}, {"trm_plugin_echo": GOOD_MODULE}
    )
    _write_distribution(
        tmp_path,
        "trm-plugin-typo",
        {"typo": "trm_plugin_typo"},
        {"trm_plugin_typo": TYPO_MODULE},
    )
    _write_distribution(
        tmp_path,
        "trm-plugin-broken",
        {"broken": "trm_plugin_broken"},
        {"trm_plugin_broken": "raise ImportError('needs libfoo, which is not installed')\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TRM_LOAD_PLUGINS", raising=False)


def test_first_party_plugins_load_through_entry_points():
    registry = Registry().load()
    found = {(e.kind, e.name) for e in registry.entries()}
    assert found >= FIRST_PARTY
    for entry in registry.entries():
        if (entry.kind, entry.name) in FIRST_PARTY:
            assert entry.distribution == "trm-core"
            assert entry.version == trm_core.__version__


def test_unknown_name_lists_the_choices():
    registry = Registry().load()
    with pytest.raises(UnknownPluginError) as info:
        registry.get("mixer", "atention")
    message = str(info.value)
    assert "'atention'" in message
    assert "did you mean 'attention'" in message
    assert "Available: attention, mlp" in message
    with pytest.raises(UnknownPluginError, match="kinds: encoder, mixer, core"):
        registry.get("mixers", "mlp")


def test_unknown_mixer_in_model_config_names_choices(tiny_config):
    with pytest.raises(UnknownPluginError, match="Available: attention, mlp"):
        trm_core.build_model({**tiny_config, "mixer": "transformer"}, device="cpu")


def test_duplicate_names_both_distributions():
    registry = Registry(load_entry_points=False)
    registry.add_plugin(_mixer_plugin("twin"), name="one", distribution="trm-plugin-one")
    registry.add_plugin(_mixer_plugin("twin"), name="two", distribution="trm-plugin-two")
    registry.add_plugin(_mixer_plugin("single"), name="three", distribution="trm-plugin-three")
    with pytest.raises(PluginError) as info:
        registry.get("mixer", "twin")
    message = str(info.value)
    assert "mixer 'twin' is registered twice" in message
    assert "trm-plugin-one (plugin 'one')" in message and "trm-plugin-two (plugin 'two')" in message
    assert registry.get("mixer", "single") is _NoOpMixer  # the others stay usable
    assert [e.distribution for e in registry.entries("mixer")] == [
        "trm-plugin-three",
        "trm-plugin-one",
        "trm-plugin-two",
    ]


def test_failing_plugin_is_named_and_does_not_hide_others(third_party):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry().load()
    names = {(e.kind, e.name): e for e in registry.entries()}
    assert ("mixer", "echo") in names and names["mixer", "echo"].distribution == "trm-plugin-echo"
    assert names["mixer", "echo"].version == "1.2.3"
    assert set(names) >= FIRST_PARTY
    failures = {failure.plugin: failure for failure in registry.failures}
    assert set(failures) == {"broken", "typo"}
    assert failures["broken"].distribution == "trm-plugin-broken"
    assert "needs libfoo" in failures["broken"].error
    assert failures["typo"].distribution == "trm-plugin-typo"
    assert (
        "unknown hook(s) register_mixer (did you mean 'register_mixers'" in failures["typo"].error
    )
    assert any(
        issubclass(w.category, PluginLoadWarning) and "trm-plugin-broken" in str(w.message)
        for w in caught
    )
    # Asking for something that is missing mentions the broken plugin too.
    with pytest.raises(UnknownPluginError, match="failed to load.*trm-plugin-broken"):
        registry.get("mixer", "nothing")


def test_load_switch_selects_plugins(third_party, monkeypatch):
    """TRM_LOAD_PLUGINS selects installed plugins; trm-core's own are always there."""
    monkeypatch.setenv("TRM_LOAD_PLUGINS", "")
    assert {(e.kind, e.name) for e in Registry.from_environment().entries()} == FIRST_PARTY

    monkeypatch.setenv("TRM_LOAD_PLUGINS", "trm-core")
    found = {(e.kind, e.name) for e in Registry.from_environment().entries()}
    assert found == FIRST_PARTY

    # Entry-point names work too, and only the named ones load (the broken one is never imported).
    monkeypatch.setenv("TRM_LOAD_PLUGINS", "echo,mlp")
    registry = Registry.from_environment()
    assert {(e.kind, e.name) for e in registry.entries()} == FIRST_PARTY | {("mixer", "echo")}
    assert registry.failures == []

    monkeypatch.setenv("TRM_LOAD_PLUGINS", "maze")  # a task alone still has the components
    if importlib.util.find_spec("trm_plugin_maze") is not None:
        names = {(e.kind, e.name) for e in Registry.from_environment().entries()}
        assert names == FIRST_PARTY | {("task", "maze")}

    monkeypatch.setenv("TRM_LOAD_PLUGINS", "trm-core,ecko")
    with pytest.raises(PluginError, match="names ecko, which no installed plugin"):
        Registry.from_environment().load()


@pytest.mark.trm_plugins("echo")
def test_marker_selects_what_the_fixture_loads(third_party, trm_registry):
    assert {(e.kind, e.name) for e in trm_registry.entries()} == FIRST_PARTY | {("mixer", "echo")}


def test_the_built_ins_need_no_installed_entry_point(tmp_path):
    """An uninstalled checkout: trm_core imported from the source tree, no trm plugin
    installed at all (every trm distribution hidden from site-packages): trm-core's own
    components and strategies are all there, and nothing else."""
    shim = tmp_path / "site"
    shim.mkdir()
    for directory in map(Path, site.getsitepackages()):
        for entry in directory.iterdir() if directory.is_dir() else []:
            hidden = "trm_" in entry.name.lower().replace("-", "_")
            if not hidden and not (shim / entry.name).exists():
                (shim / entry.name).symlink_to(entry)
    root = Path(trm_core.__file__).resolve().parents[1]
    code = (
        f"import site, sys; site.addsitedir({str(shim)!r}); sys.path.insert(0, {str(root)!r})\n"
        "from trm_core.registry import Registry\n"
        "registry = Registry().load()\n"
        "assert not registry.failures, registry.failures\n"
        "print([(e.kind, e.name, e.distribution) for e in registry.entries()])\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = eval(result.stdout)
    assert {(kind, name) for kind, name, _ in found} == FIRST_PARTY
    assert {distribution for _, _, distribution in found} == {"trm-core"}


def test_misspelled_hook_is_caught_and_leaves_nothing_behind():
    @hookimpl
    def register_mixer(register):  # missing the final "s"
        pass

    registry = Registry(load_entry_points=False)
    with pytest.raises(PluginError, match="plugin 'typo'.*unknown hook.*register_mixer"):
        registry.add_plugin(types.SimpleNamespace(register_mixer=register_mixer), name="typo")
    assert not registry.pm.has_plugin("typo")
    registry.add_plugin(_mixer_plugin("fine"), name="typo")  # the name is free again
    assert registry.names("mixer") == ["fine"]


def test_registration_must_implement_the_interface_all_or_nothing():
    @hookimpl
    def register_mixers(register):
        register("good", _NoOpMixer)
        register("linear", torch.nn.Linear)

    registry = Registry(load_entry_points=False)
    with pytest.raises(PluginError, match="not a subclass of trm_core.Mixer"):
        registry.add_plugin(types.SimpleNamespace(register_mixers=register_mixers), name="bad")
    assert registry.names("mixer") == []  # "good" was not kept either


def test_a_hook_that_raises_is_reported_not_fatal(monkeypatch):
    @hookimpl
    def register_mixers(register):
        raise KeyError("oops")

    registry = Registry(load_entry_points=False)
    with pytest.raises(PluginError, match="KeyError in its hook"):
        registry.add_plugin(types.SimpleNamespace(register_mixers=register_mixers), name="raiser")


def test_a_loaded_plugin_cannot_be_added_twice():
    registry = Registry().load()
    import trm_plugin_mlp

    with pytest.raises(PluginError, match="already loaded as plugin 'mlp' from trm-core"):
        registry.add_plugin(trm_plugin_mlp)


def test_a_failed_selection_is_not_cached(monkeypatch):
    monkeypatch.setenv("TRM_LOAD_PLUGINS", "no-such-plugin")
    registry = Registry.from_environment()
    for _ in range(2):  # raises every time, never answers from a half-loaded state
        with pytest.raises(PluginError, match="no-such-plugin"):
            registry.entries()


def test_fixture_registers_a_plugin_for_one_test(trm_registry, tiny_config, batch):
    trm_registry.add_plugin(_mixer_plugin("noop"), distribution="my-tests")
    assert trm_registry.entry("mixer", "noop").distribution == "my-tests"
    model = trm_core.build_model({**tiny_config, "mixer": "noop"}, device="cpu")
    _carry, out = model(model.initial_carry(batch), batch)
    assert out["logits"].shape == (4, 9, 11)


def test_fixture_does_not_leak(trm_registry):
    assert ("mixer", "noop") not in {(e.kind, e.name) for e in trm_registry.entries()}


def test_trm_plugins_json(capsys):
    assert plugins_main(["--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    rows = {(p["kind"], p["name"]): p for p in listed["plugins"]}
    for key in FIRST_PARTY:
        assert rows[key]["distribution"] == "trm-core"
        assert rows[key]["version"] == trm_core.__version__
    assert listed["failed"] == []


def test_trm_plugins_table_reports_failures(third_party, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trm_core.use_registry(Registry.from_environment()):
            code = plugins_main([])
    out, err = capsys.readouterr()
    assert code == 1
    assert "KIND" in out and "mixer         echo" in out
    assert "trm-plugin-echo" in out and "1.2.3" in out
    assert "FAILED plugin 'broken' from trm-plugin-broken 1.2.3" in err
    assert "FAILED plugin 'typo' from trm-plugin-typo 1.2.3" in err


def test_trm_plugins_reports_conflicts(capsys):
    registry = Registry(select={"trm-core"})
    registry.add_plugin(_mixer_plugin("mlp"), name="copycat", distribution="trm-plugin-copycat")
    with trm_core.use_registry(registry):
        assert plugins_main(["--json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    [conflict] = listed["conflicts"]
    assert f"mixer 'mlp' is registered twice: by trm-core {trm_core.__version__}" in conflict
    assert "trm-plugin-copycat" in conflict


INCOMPLETE_TASK = """
import trm_core

TRM_PLUGIN_CONTRACT = trm_core.PLUGIN_CONTRACT

class Half(trm_core.Task):
    vocab_size = 3  # a plain class attribute implements an abstract property
    grid_shape = (2, 2)

    def presets(self):
        return {"cpu": {}}

@trm_core.hookimpl
def register_tasks(register):
    register("half", Half)
"""


def test_a_task_missing_required_members_is_refused_at_load(tmp_path, monkeypatch):
    """Admission: trm-plugins names the class, what it lacks, its plugin and distribution,
    once, and exits 1; the task is not registered (it would only fail inside trm-run)."""
    _write_distribution(
        tmp_path, "trm-task-half", {"half": "trm_task_half"}, {"trm_task_half": INCOMPLETE_TASK}
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TRM_LOAD_PLUGINS": "trm-core,half"}
    command = "from trm_core.cli import run, plugins_main; run(plugins_main)"
    result = subprocess.run(
        [sys.executable, "-c", command], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "task" not in {line.split()[0] for line in result.stdout.splitlines()[1:]}
    message = (
        "FAILED plugin 'half' from trm-task-half 1.2.3: registered task 'half' as Half, "
        "which does not implement build_dataset, metrics (required by trm_core.Task)"
    )
    assert message in result.stderr
    assert result.stderr.count("trm-task-half") == 1  # reported once, not also as a warning

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TRM_LOAD_PLUGINS", "trm-core,half")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = Registry.from_environment().load()
    with pytest.raises(UnknownPluginError, match="No task plugin is installed.*trm-task-half"):
        registry.get("task", "half")


def test_a_component_with_malformed_options_is_refused():
    class Loose(_NoOpMixer):
        Options = dict  # not an attrs class

    @attrs.define
    class Bare:
        width: int  # no default

    class NoDefault(_NoOpMixer):
        Options = Bare

    class Wishful(_NoOpMixer):
        requires: ClassVar[dict[str, int]] = {"mixr.width": 3}

    for cls, problem in (
        (Loose, "which is not an attrs class"),
        (NoDefault, "has options without a default: width"),
        (Wishful, "requires 'mixr.width', which is neither"),
    ):
        plugin = types.SimpleNamespace(
            register_mixers=hookimpl(lambda register, cls=cls: register("odd", cls))
        )
        registry = Registry(load_entry_points=False)
        with pytest.raises(PluginError, match=problem):
            registry.add_plugin(plugin, name=cls.__name__)
        assert registry.names("mixer") == []
