"""Plugin loading and lookups.

trm-core's own plugins (the encoder, mixers, core, halting head, strategies and
TensorBoard logger of :data:`BUILTINS`) are registered directly, through the same
hooks as any other, as pytest registers its own: an uninstalled checkout has them, and no selection
drops them. Installed plugins arrive through the ``trm`` entry-point group. All
are loaded once, lazily, the first time anything is looked up. The environment
variable ``TRM_LOAD_PLUGINS`` selects among the installed ones: unset loads every
installed plugin; a comma list loads only the entry points or distributions it
names; an empty value loads none of them (the built-ins stay).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pluggy
from packaging.requirements import InvalidRequirement, Requirement

from . import hookspecs
from .config import ModelConfig, suggest
from .errors import PluginError, PluginLoadWarning, UnknownPluginError
from .interfaces import COMPONENT_KINDS, KINDS

#: trm-core's own plugins: the name each registers under, and its module (a package
#: in the repository's ``plugins/`` folder, installed with trm-core).
BUILTINS: dict[str, str] = {
    "grid": "trm_plugin_grid_encoder",
    "attention": "trm_plugin_attention",
    "mlp": "trm_plugin_mlp",
    "trm": "trm_plugin_recursion",
    "first_token": "trm_plugin_halting",
    "strategies": "trm_plugin_strategies",
    "tensorboard": "trm_plugin_tensorboard",
}
CORE_DISTRIBUTION = "trm-core"
ENTRY_POINT_GROUP = "trm"
LOAD_ENV = "TRM_LOAD_PLUGINS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    """An entry point that failed to import or to register, or was written for
    another plugin contract (``incompatible``)."""

    plugin: str
    distribution: str
    version: str
    error: str
    incompatible: bool = False

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in attrs.asdict(self).items() if key != "incompatible"}

    def describe(self) -> str:
        origin = " ".join(filter(None, (self.distribution, self.version)))
        separator = " " if self.incompatible else ": "
        return f"plugin {self.plugin!r} from {origin}{separator}{self.error}"


def admission_problem(cls: type) -> str | None:
    """What keeps an implementation class from being admitted, or None.

    A class must implement every abstract member of its interface; a network
    component's ``Options`` must be an attrs class whose fields all have defaults,
    and its ``requires`` must map ``"<kind>.<option>"`` or a ModelConfig field to
    allowed values.
    """
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        interface = next(k.interface for k in KINDS.values() if issubclass(cls, k.interface))
        return (
            f"does not implement {', '.join(missing)} (required by trm_core.{interface.__name__})"
        )
    options = getattr(cls, "Options", None)
    if options is not None:
        if not attrs.has(options):
            return f"has Options = {options!r}, which is not an attrs class"
        bare = [f.name for f in attrs.fields(options) if f.default is attrs.NOTHING]
        if bare:
            return f"has options without a default: {', '.join(bare)}"
    requires = getattr(cls, "requires", None) or {}
    model_fields = {f.name for f in attrs.fields(ModelConfig)}
    for key in requires:
        kind, dot, _ = str(key).partition(".")
        if not (dot and kind in COMPONENT_KINDS) and key not in model_fields:
            return (
                f"requires {key!r}, which is neither '<kind>.<option>' (kinds: "
                f"{', '.join(COMPONENT_KINDS)}) nor a ModelConfig field"
            )
    return None


def engine_version() -> str | None:
    """The installed trm-core's version, or None when it runs from a bare source tree."""
    try:
        return metadata.version("trm-core")
    except metadata.PackageNotFoundError:
        return None


def requirement_problem(dist: metadata.Distribution | None) -> str | None:
    """Why ``dist``'s own ``trm-core`` requirement excludes this engine, or None.

    Read from the distribution's metadata, before its plugin is imported: a plugin
    written for another contract may not even import.
    """
    installed = engine_version()
    if dist is None or installed is None or _normalise(dist.name) == "trm-core":
        return None
    for text in dist.requires or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if _normalise(requirement.name) != "trm-core":
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            return (
                f"requires trm-core{requirement.specifier}, but trm-core {installed} "
                f"(plugin contract {hookspecs.PLUGIN_CONTRACT}) is installed; install a "
                f"release of {dist.name} for it, or a trm-core that {dist.name} supports"
            )
    return None


def contract_problem(plugin: Any, distribution: str, required: bool = True) -> str | None:
    """Why the contract version ``plugin`` declares is not this engine's, or None.

    A plugin declares it as the attribute ``TRM_PLUGIN_CONTRACT`` of its module
    (or of the object its entry point names, or that object's module). The
    attribute arrived with contract 2, so an installed plugin without it
    (``required``) was written for contract 1; a plugin added by hand
    (tests, notebooks) may leave it out.
    """
    name = hookspecs.CONTRACT_ATTRIBUTE
    declared = getattr(plugin, name, None)
    if declared is None:
        module = sys.modules.get(getattr(plugin, "__module__", None) or "")
        declared = getattr(module, name, None)
    current = hookspecs.PLUGIN_CONTRACT
    engine = f"trm-core {engine_version() or '(from source)'}"
    if declared is None:
        if not required:
            return None
        return (
            f"declares no {name}, so it was written for plugin contract 1 (trm-core 0.1), "
            f"but {engine} implements contract {current}; install a release of "
            f"{distribution} written for contract {current} (its author adds "
            f"{name} = {current} once it is)"
        )
    if isinstance(declared, bool) or not isinstance(declared, int):
        return (
            f"declares {name} = {declared!r}, which is not a contract version "
            f"(an integer; {engine} implements {current})"
        )
    if declared == current:
        return None
    remedy = (
        "upgrade trm-core"
        if declared > current
        else f"install a release of {distribution} written for contract {current}"
    )
    return (
        f"was written for plugin contract {declared}, but {engine} implements "
        f"contract {current}; {remedy}"
    )


def _import_builtin(module: str) -> Any:
    """One of trm-core's own plugin modules: installed with trm-core, else (a checkout
    used without installing it) from the repository's ``plugins/`` folder."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
    folder = Path(__file__).resolve().parents[1] / "plugins"
    if not (folder / module / "__init__.py").is_file():
        raise PluginError(
            f"trm-core's own plugin {module} is missing: reinstall trm-core"
        ) from None
    sys.path.append(str(folder))
    return importlib.import_module(module)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def selected_plugins() -> set[str] | None:
    """The names ``TRM_LOAD_PLUGINS`` selects, or None when it is unset (load all)."""
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {_normalise(part) for part in value.split(",") if part.strip()}


class Registry:
    """A pluggy plugin manager plus the table of what each plugin registered.

    Each plugin is admitted as a whole or not at all: a plugin that fails to
    import, implements a hook that does not exist, raises in a hook or
    registers something invalid is recorded in ``failures`` (and warned about)
    while every other plugin still loads. Two plugins registering the same
    kind and name are both kept in ``conflicts``; looking that name up raises
    an error naming both distributions.
    """

    def __init__(
        self,
        load_entry_points: bool = True,
        select: set[str] | None = None,
        builtins: bool | None = None,
    ) -> None:
        """
        Args:
            load_entry_points: whether ``load()`` reads the ``trm`` entry points.
            select: entry-point or distribution names to load; None = all.
            builtins: whether ``load()`` registers trm-core's own plugins (default: as
                ``load_entry_points``; a bare registry for tests has neither).
        """
        self._builtins = load_entry_points if builtins is None else builtins
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._select = None if select is None else {_normalise(name) for name in select}
        self._origin: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self._entries: dict[tuple[str, str], PluginEntry] = {}
        self.conflicts: dict[tuple[str, str], list[PluginEntry]] = {}
        self.failures: list[PluginFailure] = []
        self._loaded = False

    @classmethod
    def from_environment(cls) -> Registry:
        """A registry honouring ``TRM_LOAD_PLUGINS``."""
        return cls(select=selected_plugins())

    # -- loading -------------------------------------------------------------

    def load(self) -> Registry:
        """Import the selected entry points and collect their contributions (once).

        Raises PluginError only for a ``TRM_LOAD_PLUGINS`` value naming nothing
        installed; problems of single plugins end up in ``failures``.
        """
        if self._loaded:
            return self
        points = self._selected_entry_points() if self._load_entry_points else []
        self._loaded = True
        if self._builtins:
            from . import __version__

            for name, module in BUILTINS.items():
                self._admit(_import_builtin(module), name, CORE_DISTRIBUTION, __version__, True)
        for point in points:
            distribution = point.dist.name if point.dist is not None else "(unknown)"
            version = point.dist.version if point.dist is not None else ""
            problem = requirement_problem(point.dist)
            if problem:
                self._fail(point.name, distribution, version, problem, incompatible=True)
                continue
            try:
                plugin = point.load()
            except Exception as error:  # a broken plugin must not hide the others
                self._fail(point.name, distribution, version, f"{type(error).__name__}: {error}")
                continue
            problem = contract_problem(plugin, distribution)
            if problem:
                self._fail(point.name, distribution, version, problem, incompatible=True)
                continue
            self._admit(plugin, point.name, distribution, version, strict=False)
        self.pm.check_pending()  # every admitted plugin was checked already; a safety net
        return self

    def _selected_entry_points(self) -> list[metadata.EntryPoint]:
        points = [  # trm-core's own are registered directly (an older install declares them)
            p
            for p in metadata.entry_points(group=ENTRY_POINT_GROUP)
            if p.value.split(":")[0] not in BUILTINS.values()
        ]
        if self._select is None:
            return points
        known = {_normalise(p.name) for p in points} | {_normalise(name) for name in BUILTINS}
        known |= {_normalise(p.dist.name) for p in points if p.dist is not None}
        known.add(_normalise(CORE_DISTRIBUTION))
        missing = sorted(self._select - known)
        if missing:
            raise PluginError(
                f"{LOAD_ENV} names {', '.join(missing)}, which no installed plugin is "
                f"called; installed: {', '.join(sorted(known)) or '(none)'}"
            )
        return [
            p
            for p in points
            if {_normalise(p.name), _normalise(p.dist.name if p.dist else "")} & self._select
        ]

    def _fail(
        self, plugin: str, distribution: str, version: str, message: str, incompatible=False
    ) -> None:
        failure = PluginFailure(plugin, distribution, version, message, incompatible)
        self.failures.append(failure)
        warnings.warn(f"trm: {failure.describe()}", PluginLoadWarning, stacklevel=4)

    def _admit(self, plugin: Any, name: str, distribution: str, version: str, strict: bool) -> str:
        """Register ``plugin`` and collect its contributions, all or nothing.

        ``strict`` raises PluginError on a problem; otherwise it is recorded.
        """
        if self.pm.is_registered(plugin):
            owner = self.pm.get_name(plugin)
            origin = " ".join(filter(None, self._origin.get(owner, ("?",))))
            raise PluginError(
                f"{name!r} is already loaded as plugin {owner!r} from {origin}; to register "
                f"it by hand, keep it from loading with {LOAD_ENV}"
            )
        if self.pm.has_plugin(name):
            name = f"{distribution}:{name}"
        try:
            self.pm.register(plugin, name=name)
            unknown = [
                caller.name
                for caller in self.pm.get_hookcallers(plugin) or []
                if not caller.spec
                and not any(i.optionalhook for i in caller.get_hookimpls() if i.plugin is plugin)
            ]
            if unknown:
                raise PluginError(
                    f"implements unknown hook(s) {', '.join(unknown)}"
                    + "".join(suggest(hook, hookspecs.HOOK_KINDS) for hook in unknown)
                    + f"; the hooks are: {', '.join(hookspecs.HOOK_KINDS)}"
                )
        except (ValueError, pluggy.PluginValidationError, PluginError) as error:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            return self._problem(name, distribution, version, str(error), strict)
        self._origin[name] = (distribution, version)
        self._collect(name, strict)
        return name

    def _problem(self, name: str, distribution: str, version: str, message: str, strict: bool):
        if strict:
            raise PluginError(f"plugin {name!r} ({distribution} {version}): {message}".strip())
        self._fail(name, distribution, version, message)
        return name

    def add_plugin(
        self,
        plugin: Any,
        name: str | None = None,
        distribution: str = "(in-process)",
        version: str = "",
    ) -> str:
        """Register a plugin object or module by hand (tests, notebooks).

        Installed plugins are loaded first (if they were not yet), then this
        one's contributions are collected at once. A problem raises PluginError
        and leaves nothing behind. Returns the plugin's name in the plugin manager.
        """
        self.load()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        problem = contract_problem(plugin, distribution, required=False)
        if problem:
            origin = " ".join(filter(None, (distribution, version)))
            raise PluginError(f"plugin {name!r} ({origin}) {problem}")
        return self._admit(plugin, name, distribution, version, strict=True)

    def add(self, kind: str, name: str, obj: type, distribution: str = "(in-process)") -> None:
        """Register one implementation directly, as if a plugin's hook had."""
        self.load()
        self._check_kind(kind)
        plugin_name = f"{distribution}:{kind}:{name}"
        self._origin[plugin_name] = (distribution, "")
        self._commit([self._entry(kind, name, obj, plugin_name)])

    def _collect(self, plugin_name: str, strict: bool) -> None:
        """Call the plugin's contribution hooks; record all its entries or none."""
        plugin = self.pm.get_plugin(plugin_name)
        distribution, version = self._origin[plugin_name]
        found: list[PluginEntry] = []
        try:
            for hook_name, kind in hookspecs.HOOK_KINDS.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is not plugin:
                        continue

                    def register(name: str, obj: type, _kind: str = kind) -> None:
                        found.append(self._entry(_kind, name, obj, plugin_name))

                    impl.function(**{arg: register for arg in impl.argnames})
        except Exception as error:  # a plugin's bug must not take the others down
            self.pm.unregister(plugin)
            del self._origin[plugin_name]
            message = (
                str(error)
                if isinstance(error, PluginError)
                else (f"{type(error).__name__} in its hook: {error}")
            )
            self._problem(plugin_name, distribution, version, message, strict)
            return
        self._commit(found)

    def _entry(self, kind: str, name: str, obj: type, plugin_name: str) -> PluginEntry:
        """Validate one registration (raises PluginError) and make its entry."""
        interface = KINDS[kind].interface
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"registered a {kind} with an invalid name {name!r}")
        if not (isinstance(obj, type) and issubclass(obj, interface)):
            raise PluginError(
                f"registered {kind} {name!r} as {obj!r}, which is not a subclass "
                f"of trm_core.{interface.__name__}"
            )
        problem = admission_problem(obj)
        if problem:
            raise PluginError(f"registered {kind} {name!r} as {obj.__qualname__}, which {problem}")
        distribution, version = self._origin[plugin_name]
        return PluginEntry(kind, name, obj, plugin_name, distribution, version)

    def _commit(self, entries: list[PluginEntry]) -> None:
        for entry in entries:
            key = (entry.kind, entry.name)
            if key in self.conflicts:
                self.conflicts[key].append(entry)
            elif key in self._entries:
                self.conflicts[key] = [self._entries.pop(key), entry]
            else:
                self._entries[key] = entry

    def conflict_message(self, kind: str, name: str) -> str:
        """Why ``kind/name`` cannot be used: every plugin that registered it."""
        owners = " and by ".join(
            f"{' '.join(filter(None, (e.distribution, e.version)))} (plugin {e.plugin!r})"
            for e in self.conflicts[(kind, name)]
        )
        return (
            f"{kind} {name!r} is registered twice: by {owners}. Uninstall one of them, "
            f"or pick which distributions load with {LOAD_ENV}."
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
        every = [*self._entries.values(), *(e for group in self.conflicts.values() for e in group)]
        found = [e for e in every if kind is None or e.kind == kind]
        return sorted(found, key=lambda e: (order.index(e.kind), e.name))

    def names(self, kind: str) -> list[str]:
        """The registered names of one kind, sorted."""
        return sorted({entry.name for entry in self.entries(kind)})

    def entry(self, kind: str, name: str) -> PluginEntry:
        """The entry for ``kind/name``; an unknown name lists the valid ones."""
        self.load()
        self._check_kind(kind)
        if (kind, name) in self.conflicts:
            raise PluginError(self.conflict_message(kind, name))
        found = self._entries.get((kind, name))
        if found is not None:
            return found
        names = self.names(kind)
        message = f"unknown {kind} {name!r}{suggest(name, names)}. "
        message += (
            f"Available: {', '.join(names)}."
            if names
            else f"No {kind} plugin is installed (each is its own distribution, "
            f"e.g. trm-plugin-<name>; trm-plugins lists what is installed)."
        )
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
        _current = Registry.from_environment().load()  # kept only once loaded
    return _current


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the process-wide one inside a ``with`` block."""
    global _current
    previous, _current = _current, registry
    try:
        yield registry.load()
    finally:
        _current = previous
