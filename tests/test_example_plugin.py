"""The example third-party plugin, examples/trm-plugin-conv, used as an author would.

In-process: register it with the ``trm_registry`` fixture and train one step.
For real: ``pip install`` it into a scratch virtual environment and check that
``trm-plugins --json`` finds it through the ``trm`` entry-point group.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import tomllib
import torch

import trm_core

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trm-plugin-conv"
VERSION = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]
CONV_ROW = {"kind": "mixer", "name": "conv", "distribution": "trm-plugin-conv", "version": VERSION}
# What the trm-plugins console script runs; the scratch venv has no such script
# of its own (trm-core's scripts live in the base environment's bin/).
PLUGINS_JSON = "from trm_core.cli import plugins_main; raise SystemExit(plugins_main(['--json']))"


@pytest.fixture(autouse=True)
def first_party_only(monkeypatch):
    """Load trm-core's own plugins, nothing else installed (the example adds itself)."""
    monkeypatch.setenv("TRM_LOAD_PLUGINS", "trm-core")


def load_example() -> ModuleType:
    """The example's module, imported from its source file (it is not installed here)."""
    path = EXAMPLE / "trm_plugin_conv" / "__init__.py"
    spec = importlib.util.spec_from_file_location("trm_plugin_conv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- in-process ------------------------------------------------------------------


def test_conv_mixer_trains_in_process(trm_registry):
    plugin = load_example()
    trm_registry.add_plugin(plugin, distribution="trm-plugin-conv", version=VERSION)
    assert trm_registry.entry("mixer", "conv").obj is plugin.ConvMixer

    torch.manual_seed(0)
    model = trm_core.build_model(
        {
            "mixer": "conv",
            "vocab_size": 11,
            "seq_len": 16,
            "hidden_size": 32,
            "puzzle_emb_len": 4,
            "dtype": "float32",
            "cycles": 2,
            "think_steps": 2,
            "halt_max_steps": 2,
            "options": {"conv": {"kernel_size": 5}},
        },
        device="cpu",
    )
    generator = torch.Generator().manual_seed(0)
    batch = {
        "inputs": torch.randint(1, 11, (3, 16), generator=generator),  # [B, S]
        "labels": torch.randint(1, 11, (3, 16), generator=generator),  # [B, S]
        "puzzle_identifiers": torch.zeros(3, dtype=torch.long),  # [B]
    }
    carry = model.initial_carry(batch)
    carry, out = model(carry, batch)

    logits = out["logits"]
    assert logits.shape == (3, 16, 11)
    assert torch.isfinite(logits).all()

    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), batch["labels"].reshape(-1))
    loss.backward()
    mixers = [m for m in model.modules() if isinstance(m, plugin.ConvMixer)]
    assert len(mixers) == model.config.num_layers  # one per block of the reasoning net
    for mixer in mixers:
        assert mixer.weight.dtype == torch.float32
        assert mixer.weight.shape == (32, 1, 5)  # [D, 1, K], K from model.options.conv
        assert mixer.weight.grad is not None
        assert torch.isfinite(mixer.weight.grad).all()
        assert mixer.weight.grad.abs().sum() > 0


# -- installed for real ----------------------------------------------------------


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def explain(result: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def plugin_rows(python: str, env: dict[str, str], cwd: Path) -> list[dict[str, str]]:
    """``trm-plugins --json`` under ``python``, as (kind, name, distribution, version) rows."""
    result = run([python, "-c", PLUGINS_JSON], env, cwd)
    assert result.returncode == 0, explain(result)
    payload = json.loads(result.stdout)
    assert payload["failed"] == [], explain(result)
    keys = ("kind", "name", "distribution", "version")
    return [{key: row[key] for key in keys} for row in payload["plugins"]]


def make_venv(venv: Path, env: dict[str, str], cwd: Path) -> Path:
    """A scratch venv that sees this interpreter's packages (torch, pip, editable trm-core).

    ``--system-site-packages`` exposes the *base installation's* site-packages,
    and ``site`` processes the .pth files there, so an editable trm-core (its
    ``__editable__`` .pth and finder) and its dist-info (entry points) are seen.
    When this interpreter is itself a venv, its site-packages is not the base
    installation's; a .pth in the scratch venv then adds it with
    ``site.addsitedir`` so that its .pth files run too.
    """
    created = run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], env, cwd
    )
    assert created.returncode == 0, explain(created)
    python = venv / "bin" / "python"
    if sys.prefix != sys.base_prefix:
        purelib = run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env, cwd
        )
        assert purelib.returncode == 0, explain(purelib)
        lines = [f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages()]
        Path(purelib.stdout.strip(), "_trm_outer_environment.pth").write_text("".join(lines))
    return python


def test_pip_installed_example_is_listed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRM_LOAD_PLUGINS"}  # load everything
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")

    # Before: the base environment does not have it.
    base_rows = plugin_rows(sys.executable, env, tmp_path)
    assert any(row["distribution"] == "trm-core" for row in base_rows), base_rows
    assert not any(row["name"] == "conv" for row in base_rows), (
        f"trm-plugin-conv is installed in the base environment ({base_rows}); "
        "pip uninstall trm-plugin-conv"
    )

    # Install a copy: pip builds in the source tree (build/, *.egg-info) and the
    # repository's example folder must stay clean.
    source = tmp_path / "trm-plugin-conv"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    )
    python = make_venv(tmp_path / "venv", env, tmp_path)
    # --no-index/--no-deps: no network; --no-build-isolation: build with the
    # setuptools already installed instead of downloading one.
    install = run(
        [python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation", source],
        env,
        tmp_path,
    )
    assert install.returncode == 0, explain(install)

    # After: listed next to trm-core's own plugins, by distribution and version.
    rows = plugin_rows(str(python), env, tmp_path)
    assert CONV_ROW in rows, rows
    assert all(row in rows for row in base_rows), (base_rows, rows)


def test_conv_option_is_set_from_the_command_line(reverse, trm_registry, capsys):
    """A third-party mixer's own option is a config key: set with --set, recorded in the
    run's config, checked with nearest-key hints before any data is built."""
    from trm_core.cli import run_main
    from trm_core.run import read_config

    trm_registry.add_plugin(load_example(), distribution="trm-plugin-conv", version=VERSION)
    argv = ["--task", "reverse", "--preset", "cpu", "--device", "cpu", "--mixer", "conv"]
    argv += ["--out", str(reverse), "--max-steps", "2"]
    assert run_main([*argv, "--set", "model.options.conv.kernel_size=5"]) == 0
    [run] = list(reverse.iterdir())
    assert read_config(run).model.options["conv"] == {"kernel_size": 5}
    capsys.readouterr()

    assert run_main([*argv, "--set", "model.options.conv.kernal_size=5"]) == 2
    error = capsys.readouterr().err
    assert "unknown key model.options.conv.kernal_size (did you mean 'kernel_size'?)" in error
    assert run_main([*argv, "--set", "model.options.conv.kernel_size=4"]) == 2
    assert "model.options.conv.kernel_size must be odd and positive, got 4" in (
        capsys.readouterr().err
    )
    assert run_main([*argv, "--set", "model.options.cnv.kernel_size=5"]) == 2
    assert "model.options.cnv: no component is called 'cnv' (did you mean 'conv'?)" in (
        capsys.readouterr().err
    )
    assert not (reverse.parent / "data").exists() or len(list(reverse.iterdir())) == 1
