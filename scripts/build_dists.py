"""Build every trm distribution as a wheel and an sdist, check them, and optionally
gather their dependencies, so that a folder installs by name with no index:

    python scripts/build_dists.py --out dist --deps
    pip install --no-index --find-links dist trm-plugin-maze   # after installing torch

Each distribution is built with the standard front end (``python -m build``: the
sdist first, then the wheel from the sdist, so a file missing from the sdist fails
here, not on a user's machine). Every artefact is then checked: no tests, caches
or build leftovers inside; the licence, README and metadata present (licence,
classifiers, Python and dependency requirements, project URLs); each plugin's
``trm-core`` requirement admits the trm-core built beside it and has an upper
bound, and its entry-point module declares the plugin contract trm-core
implements. ``--deps`` downloads the third-party wheels they need (never torch:
install the build that fits your machine first). ``--release`` also refuses the
placeholder project URLs. File times come from the last commit
(``SOURCE_DATE_EPOCH``), so the same commit builds byte-identical wheels (not sdists:
setuptools stamps their archive with the time of the build).

Exit status: 0 when everything was built and passed the checks, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

#: Every distribution in the repository, as (name, folder). trm-core comes first:
#: the plugins' checks compare against its version and contract.
DISTRIBUTIONS = (
    ("trm-core", "."),
    ("trm-plugin-sudoku", "tasks/sudoku"),
    ("trm-plugin-maze", "tasks/maze"),
    ("trm-plugin-arc", "tasks/arc"),
    ("trm-plugin-conv", "examples/trm-plugin-conv"),
    ("trm-task-life", "examples/trm-task-life"),
    ("trm-logger-mlflow", "examples/trm-logger-mlflow"),
)

#: Never downloaded by --deps: the user installs the torch build for their machine.
NOT_DOWNLOADED = {"torch"}

PLACEHOLDER_HOST = "example.invalid"
CACHE = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.hypothesis|\.ruff_cache)(/|$)|\.py[cod]$")
TESTS = re.compile(r"(^|/)(tests?|testing_data)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
LEFTOVER = re.compile(
    r"(^|/)(build|dist|runs)/|\.egg-info/(?!PKG-INFO|SOURCES|requires|entry|top_level|dependency_links)"
)
METADATA_FIELDS = (
    "Name",
    "Version",
    "Summary",
    "License-Expression",
    "Requires-Python",
    "Classifier",
    "Project-URL",
    "Description-Content-Type",
)


def say(text: str) -> None:
    print(text, flush=True)


# -- reading artefacts ------------------------------------------------------------


def artefact_names(path: Path) -> list[str]:
    """The member paths of a wheel or sdist, sdist paths without their top folder."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    with tarfile.open(path) as archive:
        return [name.partition("/")[2] for name in archive.getnames() if "/" in name]


def read_member(path: Path, name: str) -> str:
    """One member's text (``name`` as artefact_names gives it)."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            return archive.read(name).decode("utf-8")
    with tarfile.open(path) as archive:
        top = archive.getnames()[0].partition("/")[0]
        member = archive.extractfile(f"{top}/{name}")
        if member is None:
            raise KeyError(name)
        return member.read().decode("utf-8")


def metadata_of(path: Path) -> email.message.Message:
    """The core metadata (METADATA in a wheel, PKG-INFO in an sdist)."""
    names = artefact_names(path)
    if path.suffix == ".whl":
        [name] = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
    else:
        name = "PKG-INFO"
    return email.parser.Parser().parsestr(read_member(path, name))


def entry_point_modules(path: Path) -> dict[str, str]:
    """A wheel's ``trm`` entry points: name -> module."""
    names = artefact_names(path)
    found = [n for n in names if re.fullmatch(r"[^/]+\.dist-info/entry_points\.txt", n)]
    if not found:
        return {}
    points, group = {}, None
    for line in read_member(path, found[0]).splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
        elif "=" in line and group == "trm":
            name, _, target = line.partition("=")
            points[name.strip()] = target.strip().partition(":")[0]
    return points


def module_constant(source: str, name: str):
    """The constant a module's source assigns to ``name`` at top level, or None."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    return None


def declared_contract(source: str) -> int | None:
    """The ``TRM_PLUGIN_CONTRACT = N`` a module's source assigns at top level."""
    return module_constant(source, "TRM_PLUGIN_CONTRACT")


def engine_contract() -> int:
    """The plugin contract of the trm-core in this repository (read, not imported)."""
    source = (ROOT / "trm_core" / "hookspecs.py").read_text(encoding="utf-8")
    contract = module_constant(source, "PLUGIN_CONTRACT")
    if contract is None:
        raise SystemExit("trm_core/hookspecs.py defines no PLUGIN_CONTRACT")
    return contract


# -- checks ---------------------------------------------------------------------------


def check_artefact(
    path: Path, core_version: str | None, contract: int, release: bool = False
) -> list[str]:
    """What is wrong with one wheel or sdist; empty when it is fit to publish.

    Args:
        core_version: the trm-core version built beside it (its plugins must admit it).
        contract: the plugin contract that trm-core implements.
        release: also refuse placeholder project URLs.
    """
    problems = []
    names = artefact_names(path)
    for name in names:
        if CACHE.search(name):
            problems.append(f"holds a cache file: {name}")
        elif TESTS.search(name):
            problems.append(f"holds a test file: {name}")
        elif LEFTOVER.search(name):
            problems.append(f"holds a build leftover: {name}")
    wheel = path.suffix == ".whl"
    licence = [n for n in names if n.endswith("LICENSE")]
    if not licence:
        problems.append("has no LICENSE file")
    if not wheel:
        for required in ("README.md", "pyproject.toml", "PKG-INFO"):
            if required not in names:
                problems.append(f"has no {required}")

    meta = metadata_of(path)
    for field in METADATA_FIELDS:
        if not meta.get_all(field):
            problems.append(f"metadata has no {field}")
    description = meta.get_payload() or meta.get("Description", "")
    if len(description.strip()) < 200:
        problems.append("metadata has no long description (the README)")
    if release:
        placeholders = [u for u in meta.get_all("Project-URL") or [] if PLACEHOLDER_HOST in u]
        if placeholders:
            problems.append(
                f"has placeholder project URLs ({'; '.join(placeholders)}); give the "
                "distribution its public home in pyproject.toml before a release"
            )

    name = canonicalize_name(meta.get("Name", ""))
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    required = {canonicalize_name(r.name): r for r in requirements if r.marker is None}
    if name == "trm-core":
        if "torch" not in required:
            problems.append("does not require torch")
    else:
        core = required.get("trm-core")
        if core is None:
            problems.append("does not require trm-core")
        else:
            if not any(spec.operator in ("<", "<=", "~=", "==") for spec in core.specifier):
                problems.append(
                    f"requires trm-core{core.specifier or ''} with no upper bound; bound it "
                    "by the next contract change (trm-core>=0.N,<0.N+1)"
                )
            if core_version and not core.specifier.contains(core_version, prereleases=True):
                problems.append(
                    f"requires trm-core{core.specifier}, which excludes the trm-core "
                    f"{core_version} built beside it"
                )
    if wheel:
        points = entry_point_modules(path)
        if name != "trm-core" and not points:
            problems.append("has no entry point in the group 'trm'")
        for point, module in points.items():
            candidates = [
                f"{module.replace('.', '/')}/__init__.py",
                f"{module.replace('.', '/')}.py",
            ]
            source = next((c for c in candidates if c in names), None)
            if source is None:
                problems.append(f"entry point {point!r} names {module}, which the wheel lacks")
                continue
            declared = declared_contract(read_member(path, source))
            if declared != contract:
                problems.append(
                    f"entry point {point!r}: {source} declares TRM_PLUGIN_CONTRACT = "
                    f"{declared!r}; trm-core implements contract {contract}"
                )
    return problems


# -- building --------------------------------------------------------------------------


def source_date_epoch() -> str | None:
    """The last commit's time, for reproducible file times; None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def build(folder: Path, out: Path, env: dict[str, str]) -> list[Path]:
    """``python -m build`` one distribution into ``out``; the artefacts it made."""
    before = set(out.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(folder)],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise SystemExit(f"python -m build {folder} failed (exit {result.returncode}):\n{tail}")
    return sorted(set(out.iterdir()) - before)


def third_party_requirements(wheels: Iterable[Path]) -> list[str]:
    """What the built wheels require from outside the repository (no extras, no torch)."""
    ours = {canonicalize_name(name) for name, _ in DISTRIBUTIONS}
    found: dict[str, str] = {}
    for wheel in wheels:
        for text in metadata_of(wheel).get_all("Requires-Dist") or []:
            requirement = Requirement(text)
            key = canonicalize_name(requirement.name)
            if requirement.marker is not None or key in ours or key in NOT_DOWNLOADED:
                continue
            found.setdefault(key, f"{key}{requirement.specifier}")
    return sorted(found.values())


def download(requirements: list[str], out: Path) -> None:
    """Fetch the wheels ``requirements`` need (transitively) into ``out``."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "--dest", str(out), *requirements],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise SystemExit(f"pip download failed (exit {result.returncode}):\n{tail}")
    pulled = [
        p.name
        for p in out.glob("*.whl")
        if canonicalize_name(p.name.split("-")[0]) in NOT_DOWNLOADED
    ]
    if pulled:
        for name in pulled:
            (out / name).unlink()
        raise SystemExit(
            f"a dependency pulled {', '.join(pulled)}; trm never downloads torch for the "
            "user (removed). Find which requirement needs it and drop or pin that one."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_dists.py",
        description="Build and check wheels and sdists of every trm distribution.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder (default dist/)")
    parser.add_argument(
        "--deps",
        action="store_true",
        help="also download the third-party wheels they need (not torch), so the folder "
        "installs with pip install --no-index --find-links",
    )
    parser.add_argument(
        "--release", action="store_true", help="also refuse placeholder project URLs"
    )
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        choices=[name for name, _ in DISTRIBUTIONS],
        help="build only this distribution (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("build") is None:
        print(
            "error: the build front end is not installed: python3 -m pip install build "
            "(it comes with trm-core's [dev] extra)",
            file=sys.stderr,
        )
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stale = [p.name for p in out.iterdir() if p.name.startswith(("trm_", "trm-"))]
    if stale:
        print(
            f"error: {out} already holds trm artefacts ({', '.join(sorted(stale)[:4])}"
            f"{', ...' if len(stale) > 4 else ''}); use an empty folder",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ)
    epoch = source_date_epoch()
    if epoch:
        env["SOURCE_DATE_EPOCH"] = epoch
    contract = engine_contract()
    selected = [(n, f) for n, f in DISTRIBUTIONS if not args.only or n in args.only]

    built: list[Path] = []
    start = time.perf_counter()
    for name, folder in selected:
        say(f"building {name} ({folder})")
        built += build(ROOT / folder, out, env)
    core_version = next(
        (str(metadata_of(p)["Version"]) for p in built if p.name.startswith("trm_core-")), None
    )

    failed = False
    for path in built:
        problems = check_artefact(path, core_version, contract, release=args.release)
        size = path.stat().st_size / 1024
        say(f"  {'ok  ' if not problems else 'FAIL'} {path.name} ({size:,.0f} KiB)")
        for problem in problems:
            print(f"       {path.name}: {problem}", file=sys.stderr)
        failed |= bool(problems)
    if failed:
        return 1
    wheels = [p for p in built if p.suffix == ".whl"]
    if args.deps:
        requirements = third_party_requirements(wheels)
        say(f"downloading dependencies (not torch): {' '.join(requirements)}")
        download(requirements, out)
    say(
        f"built {len(built)} artefacts of {len(selected)} distributions into {out} in "
        f"{time.perf_counter() - start:.0f} s (plugin contract {contract}, trm-core "
        f"{core_version or 'not built'})"
    )
    say(f"install by name: pip install --no-index --find-links {out} trm-plugin-maze")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
