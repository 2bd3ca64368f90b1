"""Release readiness: the artefact checks of scripts/build_dists.py, and the versions
and contract declarations of every distribution in the repository.

The real build (``python -m build`` of all six distributions, then an offline
install of trm-plugin-maze by name into a fresh virtual environment) runs in
``.ci/run``; here the checks run on small wheels and sdists the tests write.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

import trm_core
from trm_core.registry import BUILTINS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_dists.py"


@pytest.fixture(scope="module")
def dists():
    spec = importlib.util.spec_from_file_location("build_dists", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_dists"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["build_dists"]


README = "# trm-plugin-demo\n\n" + "A demo task plugin for trm, long enough to be a README. " * 8


def metadata(name: str, requires: list[str], urls=("Homepage, https://trm.example.org",)) -> str:
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {name}",
        "Version: 0.2.0",
        "Summary: a demo",
        "License-Expression: MIT",
        "License-File: LICENSE",
        "Requires-Python: >=3.10",
        "Classifier: Programming Language :: Python :: 3",
        *(f"Project-URL: {url}" for url in urls),
        *(f"Requires-Dist: {r}" for r in requires),
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(lines) + "\n\n" + README


def wheel(tmp_path, files: dict[str, str], name="trm-plugin-demo", **meta) -> Path:
    """A wheel of ``trm_plugin_demo`` with its entry point, licence and metadata."""
    requires = meta.pop("requires", ["trm-core>=0.2,<0.3"])
    info = f"{name.replace('-', '_')}-0.2.0.dist-info"
    members = {
        f"{info}/METADATA": metadata(name, requires, **meta),
        f"{info}/licenses/LICENSE": "MIT License\n",
        f"{info}/entry_points.txt": "[trm]\ndemo = trm_plugin_demo\n",
        **files,
    }
    path = tmp_path / f"{name.replace('-', '_')}-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


def sdist(tmp_path, files: dict[str, str]) -> Path:
    top = "trm_plugin_demo-0.2.0"
    members = {
        "PKG-INFO": metadata("trm-plugin-demo", ["trm-core>=0.2,<0.3"]),
        "LICENSE": "MIT License\n",
        "README.md": README,
        "pyproject.toml": "[project]\n",
        **files,
    }
    path = tmp_path / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{member}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


GOOD_MODULE = {"trm_plugin_demo/__init__.py": "TRM_PLUGIN_CONTRACT = 2\n"}


def test_a_complete_plugin_wheel_and_sdist_pass(dists, tmp_path):
    assert dists.check_artefact(wheel(tmp_path, GOOD_MODULE), "0.2.0", 2) == []
    assert dists.check_artefact(sdist(tmp_path, GOOD_MODULE), "0.2.0", 2) == []


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"tests/test_demo.py": ""}, "holds a test file: tests/test_demo.py"),
        ({"trm_plugin_demo/conftest.py": ""}, "holds a test file: trm_plugin_demo/conftest.py"),
        (
            {"trm_plugin_demo/__pycache__/x.cpython-311.pyc": ""},
            "holds a cache file: trm_plugin_demo/__pycache__/x.cpython-311.pyc",
        ),
        ({"build/lib/trm_plugin_demo/x.py": ""}, "holds a build leftover: build/lib/"),
    ],
)
def test_tests_caches_and_leftovers_are_refused(dists, tmp_path, extra, problem):
    for artefact in (wheel(tmp_path, {**GOOD_MODULE, **extra}), sdist(tmp_path, extra)):
        problems = dists.check_artefact(artefact, "0.2.0", 2)
        assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize(
    ("requires", "problem"),
    [
        (["trm-core>=0.2"], "requires trm-core>=0.2 with no upper bound"),
        (["trm-core"], "requires trm-core with no upper bound"),
        (["trm-core>=0.1,<0.2"], "which excludes the trm-core 0.2.0 built beside it"),
        (["numpy"], "does not require trm-core"),
    ],
)
def test_a_plugin_must_bound_its_trm_core_requirement(dists, tmp_path, requires, problem):
    problems = dists.check_artefact(wheel(tmp_path, GOOD_MODULE, requires=requires), "0.2.0", 2)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("source", "declared"),
    [("TRM_PLUGIN_CONTRACT = 1\n", "1"), ("import trm_core\n", "None")],
)
def test_the_entry_point_module_must_declare_this_contract(dists, tmp_path, source, declared):
    artefact = wheel(tmp_path, {"trm_plugin_demo/__init__.py": source})
    assert dists.check_artefact(artefact, "0.2.0", 2) == [
        f"entry point 'demo': trm_plugin_demo/__init__.py declares TRM_PLUGIN_CONTRACT = "
        f"{declared}; trm-core implements contract 2"
    ]


def test_missing_licence_and_metadata_are_named(dists, tmp_path):
    path = tmp_path / "trm_plugin_demo-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("trm_plugin_demo-0.2.0.dist-info/METADATA", "Name: trm-plugin-demo\n")
        archive.writestr("trm_plugin_demo/__init__.py", "TRM_PLUGIN_CONTRACT = 2\n")
    problems = dists.check_artefact(path, "0.2.0", 2)
    for expected in ("has no LICENSE file", "metadata has no Classifier",
                     "metadata has no Project-URL", "metadata has no long description (the README)",
                     "has no entry point in the group 'trm'"):  # fmt: skip
        assert expected in problems


def test_placeholder_urls_pass_a_build_and_fail_a_release(dists, tmp_path):
    artefact = wheel(tmp_path, GOOD_MODULE, urls=("Homepage, https://example.invalid/trm",))
    assert dists.check_artefact(artefact, "0.2.0", 2) == []
    [problem] = dists.check_artefact(artefact, "0.2.0", 2, release=True)
    assert problem.startswith("has placeholder project URLs (Homepage, https://example.invalid")


def test_the_output_folder_must_not_hold_older_artefacts(dists, tmp_path, capsys):
    (tmp_path / "trm_core-0.1.0-py3-none-any.whl").write_text("")
    assert dists.main(["--out", str(tmp_path)]) == 2
    assert (
        "already holds trm artefacts (trm_core-0.1.0-py3-none-any.whl)" in capsys.readouterr().err
    )


# -- the repository's own distributions ----------------------------------------------------


def projects(dists) -> dict[str, dict]:
    return {
        name: tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        for name, folder in dists.DISTRIBUTIONS
    }


def test_every_distribution_is_listed_for_the_build(dists):
    found = {path.parent.relative_to(ROOT).as_posix() for path in ROOT.glob("*/*/pyproject.toml")}
    assert found | {"."} == {folder for _, folder in dists.DISTRIBUTIONS}


def test_every_plugin_requires_this_trm_core_with_an_upper_bound(dists):
    every = projects(dists)
    core = every.pop("trm-core")
    assert core["version"] == trm_core.__version__  # the installed engine is this tree's
    for name, project in every.items():
        assert project["version"] == core["version"], f"{name} is not released with trm-core"
        [requirement] = [
            Requirement(r) for r in project["dependencies"] if Requirement(r).name == "trm-core"
        ]
        assert requirement.specifier.contains(core["version"]), (name, requirement)
        assert not requirement.specifier.contains(_next_minor(core["version"])), (
            f"{name} must stop at the next contract change: {requirement}"
        )


def _next_minor(version: str) -> str:
    major, minor, *_ = version.split(".")
    return f"{major}.{int(minor) + 1}.0"


def test_every_entry_point_module_declares_this_contract(dists):
    for _, folder in dists.DISTRIBUTIONS:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        where = ["."] if folder != "." else [".", "plugins"]
        modules = project.get("entry-points", {}).get("trm", {})
        if folder == ".":  # trm-core's own components are registered, not entry points
            assert not modules, "trm-core lists its built-ins in registry.BUILTINS"
            modules = BUILTINS
        for entry, module in modules.items():
            sources = [ROOT / folder / w / module / "__init__.py" for w in where]
            [source] = [path for path in sources if path.is_file()]
            declared = dists.declared_contract(source.read_text())
            assert declared == trm_core.PLUGIN_CONTRACT, (entry, source, declared)


def test_the_changelog_has_this_version_and_flags_contract_changes():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    heading = re.search(rf"^## \[{re.escape(trm_core.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$",
                        changelog, flags=re.MULTILINE)  # fmt: skip
    assert heading, f"CHANGELOG.md has no section for {trm_core.__version__}"
    section = changelog[heading.end() :].split("\n## [", 1)[0]
    assert f"Plugin contract {trm_core.PLUGIN_CONTRACT}" in section
    assert "**Contract:**" in section  # each contract change is flagged for plugin authors
