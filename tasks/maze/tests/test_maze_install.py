"""``pip install ./tasks/maze`` into an environment that has trm-core but not the maze plugin.

The scratch virtual environment sees this interpreter's packages (torch,
trm-core, pip, setuptools) through a folder of links to everything in its
site-packages *except* trm-plugin-maze's own files, so before the install the
plugin is truly absent: no entry point, no importable module.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import tomllib

MAZE = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((MAZE / "pyproject.toml").read_text())["project"]["version"]
PLUGINS_JSON = "from trm_core.cli import plugins_main; raise SystemExit(plugins_main(['--json']))"
RUN = "import sys; from trm_core.cli import run_main; raise SystemExit(run_main(sys.argv[1:]))"


def run(command: list, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(part) for part in command], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def maze_files() -> set[str]:
    """Top-level names in site-packages that belong to an installed trm-plugin-maze."""
    try:
        dist = distribution("trm-plugin-maze")
    except PackageNotFoundError:
        return set()
    return {Path(str(file)).parts[0] for file in dist.files or []}


def shim_without_maze(shim: Path) -> None:
    """Links to every entry of this interpreter's site-packages but the maze plugin's."""
    shim.mkdir()
    skip = maze_files()
    for directory in map(Path, site.getsitepackages()):
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.name not in skip and not (shim / entry.name).exists():
                (shim / entry.name).symlink_to(entry)


def tasks(python: Path, env: dict[str, str], cwd: Path) -> list[dict[str, str]]:
    payload = json.loads(run([python, "-c", PLUGINS_JSON], env, cwd).stdout)
    return [row for row in payload["plugins"] if row["kind"] == "task"]


def test_pip_install_adds_the_maze_task_and_trm_run_trains_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRM_LOAD_PLUGINS"}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", TRM_DATA_DIR=str(tmp_path))
    shim_without_maze(tmp_path / "shim")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], env, tmp_path)
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                  env, tmp_path).stdout.strip()  # fmt: skip
    Path(purelib, "_base_packages.pth").write_text(
        f"import site; site.addsitedir({str(tmp_path / 'shim')!r})\n"
    )

    before = tasks(python, env, tmp_path)
    assert not any(row["name"] == "maze" for row in before), before
    missing = subprocess.run([python, "-c", "import trm_plugin_maze"], capture_output=True)
    assert missing.returncode != 0  # not importable either

    # Install a copy (pip builds in the source tree); no network, no build isolation.
    source = tmp_path / "maze"
    shutil.copytree(MAZE, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "tests", "benchmarks"))  # fmt: skip
    run([python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
         source], env, tmp_path)  # fmt: skip

    after = tasks(python, env, tmp_path)
    maze = [row for row in after if row["name"] == "maze"]
    assert [(r["distribution"], r["version"]) for r in maze] == [("trm-plugin-maze", VERSION)]
    # trm-run --task maze --mixer attention --preset cpu --max-steps 5, with its data and
    # run folders in the test's own folder, on the CPU in float32 whatever the machine.
    command = ["--task", "maze", "--mixer", "attention", "--preset", "cpu", "--max-steps", "5"]
    command += ["--device", "cpu", "--set", "model.dtype=float32"]
    trained = run([python, "-c", RUN, *command, "--out", tmp_path / "runs"], env, tmp_path)
    assert "task maze, mixer attention, preset cpu" in trained.stdout
    assert "done: step 5" in trained.stdout
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "checkpoints" / "last.pt").is_file()
