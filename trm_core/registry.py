"""Plugin loading and lookups.

Plugins arrive through the ``trm`` entry-point group (first-party ones too) and
are loaded once, lazily, the first time anything is looked up. The environment
variable ``TRM_LOAD_PLUGINS`` restricts loading: unset loads every installed
plugin; a comma list loads only the entry points or distributions it names; an
empty value loads none (only what a test registers itself).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .config import suggest
from .interfaces import KINDS

ENTRY_POINT_GROUP = "trm"
LOAD_ENV = "TRM_LOAD_PLUGINS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PluginError(RuntimeError):
    """A plugin could not be used: bad registration, duplicate, failed import."""


class UnknownPluginError(PluginError, LookupError):
    """A name that no loaded plugin registered for that kind."""


class PluginLoadWarning(UserWarning):
    """An installed plugin failed to import; the others still load."""


@attrs.frozen
class PluginEntry:
    """One registered implementation: ``kind/name`` from ``plugin`` in ``distribution``."""

    kind: str
    name: str
    obj: type
    plugin: str
    distribution: str
    version: str

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "plugin": self.plugin,
            "object": f"{self.obj.__module__}.{self.obj.__qualname__}",
        }


@attrs.frozen
class PluginFailure:
    """An entry point that failed to import or to register."""

    plugin: str
    distribution: str
    version: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return attrs.asdict(self)

    def describe(self) -> str:
        return f"plugin {self.plugin!r} from {self.distribution} {self.version}: {self.error}"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def selected_plugins() -> set[str] | None:
    """The names ``TRM_LOAD_PLUGINS`` selects, or None when it is unset (load all)."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {_normalise(part) for part in value.split(",") if part.strip()}


class Registry:
    """A pluggy plugin manager plus the table of what each plugin registered."""

    def __init__(self, load_entry_points: bool = True, select: set[str] | None = None) -> None:
        """
        Args:
            load_entry_points: whether ``load()`` reads the ``trm`` entry points.
            select: entry-point or distribution names to load; None = all.
        """
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._select = select
        self._origin: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._entries: dict[tuple[str, str], PluginEntry] = {}
        self.failures: list[PluginFailure] = []
        self._loaded = False

    @classmethod
    def from_environment(cls) -> Registry:
        """A registry honouring ``TRM_LOAD_PLUGINS``."""
        return cls(select=selected_plugins())

    # -- loading -------------------------------------------------------------

    def load(self) -> Registry:
        """Import the selected entry points and collect their contributions (once)."""
        if self._loaded:
            return self
        self._loaded = True
        if self._load_entry_points:
            self._load_from_entry_points()
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as error:
            origin = self._origin.get(getattr(error, "plugin_name", ""), ("?", "?"))
            raise PluginError(f"{error} (distribution {origin[0]} {origin[1]})") from error
        for name in list(self._origin):
            self._collect(name)
        return self

    def _load_from_entry_points(self) -> None:
        points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        if self._select is not None:
            known = {_normalise(p.name) for p in points}
            known |= {_normalise(p.dist.name) for p in points if p.dist is not None}
            missing = sorted(self._select - known)
            if missing:
                raise PluginError(
                    f"{LOAD_ENV} names {', '.join(missing)}, which no installed plugin is "
                    f"called; installed: {', '.join(sorted(known)) or '(none)'}"
                )
        for point in points:
            distribution = point.dist.name if point.dist is not None else "(unknown)"
            version = point.dist.version if point.dist is not None else ""
            if self._select is not None and not (
                {_normalise(point.name), _normalise(distribution)} & self._select
            ):
                continue
            try:
                plugin = point.load()
            except Exception as error:  # a broken plugin must not hide the others
                self._fail(point.name, distribution, version, f"{type(error).__name__}: {error}")
                continue
            self._register_plugin(plugin, point.name, distribution, version)

    def _fail(self, plugin: str, distribution: str, version: str, message: str) -> None:
        failure = PluginFailure(plugin, distribution, version, message)
        self.failures.append(failure)
        warnings.warn(f"trm: {failure.describe()}", PluginLoadWarning, stacklevel=3)

    def _register_plugin(self, plugin: Any, name: str, distribution: str, version: str) -> str:
        if self.pm.has_plugin(name) or name in self._origin:
            name = f"{distribution}:{name}"
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as error:
            self._fail(name, distribution, version, str(error))
            return name
        self._origin[name] = (distribution, version)
        return name

    def add_plugin(
        self,
        plugin: Any,
        name: str | None = None,
        distribution: str = "(in-process)",
        version: str = "",
    ) -> str:
        """Register a plugin object or module by hand (tests, notebooks).

        Its contributions are collected at once if loading already happened.
        Returns the plugin's name in the plugin manager.
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        self.pm.register(plugin, name=name)
        self._origin[name] = (distribution, version)
        if self._loaded:
            self.pm.check_pending()
            self._collect(name)
        return name

    def add(self, kind: str, name: str, obj: type, distribution: str = "(in-process)") -> None:
        """Register one implementation directly, as if a plugin's hook had."""
        self._check_kind(kind)
        plugin_name = f"{distribution}:{kind}:{name}"
        self._origin[plugin_name] = (distribution, "")
        self._record(kind, name, obj, plugin_name)

    def _collect(self, plugin_name: str) -> None:
        plugin = self.pm.get_plugin(plugin_name)
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin is not plugin:
                    continue

                def register(name: str, obj: type, _kind: str = kind) -> None:
                    self._record(_kind, name, obj, plugin_name)

                impl.function(**{arg: register for arg in impl.argnames})

    def _record(self, kind: str, name: str, obj: type, plugin_name: str) -> None:
        distribution, version = self._origin[plugin_name]
        where = f"plugin {plugin_name!r} ({distribution})"
        interface = KINDS[kind]
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"{where} registered a {kind} with an invalid name {name!r}")
        if not (isinstance(obj, type) and issubclass(obj, interface)):
            raise PluginError(
                f"{where} registered {kind} {name!r} as {obj!r}, which is not a subclass "
                f"of trm_core.{interface.__name__}"
            )
        previous = self._entries.get((kind, name))
        if previous is not None:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {previous.distribution} "
                f"{previous.version} (plugin {previous.plugin!r}) and by {distribution} "
                f"{version} (plugin {plugin_name!r}). Uninstall one of them, or pick "
                f"which distributions load with {LOAD_ENV}."
            )
        self._entries[(kind, name)] = PluginEntry(
            kind, name, obj, plugin_name, distribution, version
        )

    # -- lookups -------------------------------------------------------------

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise UnknownPluginError(
                f"unknown plugin kind {kind!r}{suggest(kind, KINDS)}; kinds: {', '.join(KINDS)}"
            )

    def entries(self, kind: str | None = None) -> list[PluginEntry]:
        """Every registered implementation (of one kind), in listing order."""
        self.load()
        if kind is not None:
            self._check_kind(kind)
        order = list(KINDS)
        found = [e for e in self._entries.values() if kind is None or e.kind == kind]
        return sorted(found, key=lambda e: (order.index(e.kind), e.name))

    def names(self, kind: str) -> list[str]:
        """The registered names of one kind, sorted."""
        return [entry.name for entry in self.entries(kind)]

    def entry(self, kind: str, name: str) -> PluginEntry:
        """The entry for ``kind/name``; an unknown name lists the valid ones."""
        self.load()
        self._check_kind(kind)
        found = self._entries.get((kind, name))
        if found is not None:
            return found
        names = self.names(kind)
        message = f"unknown {kind} {name!r}{suggest(name, names)}. "
        message += f"Available: {', '.join(names)}." if names else f"No {kind} is installed."
        if self.failures:
            message += " Plugins that failed to load: " + "; ".join(
                f.describe() for f in self.failures
            )
        raise UnknownPluginError(message)

    def get(self, kind: str, name: str) -> type:
        """The class registered as ``kind/name``."""
        return self.entry(kind, name).obj


_current: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, created and loaded on first use."""
    global _current
    if _current is None:
        _current = Registry.from_environment()
    return _current.load()


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the process-wide one inside a ``with`` block."""
    global _current
    previous, _current = _current, registry
    try:
        yield registry.load()
    finally:
        _current = previous


def plugin_table(registry: Registry | None = None) -> list[dict[str, str]]:
    """Kind, name, distribution and version of everything loaded (for runs and checkpoints)."""
    registry = registry or get_registry()
    return [entry.as_dict() for entry in registry.entries()]
