"""The plugin contract: every hook a trm plugin may implement.

Plugins are modules (or objects) found through the ``trm`` entry-point group.
Each contribution hook is called once, when plugins are first needed, with a
``register`` callback; the registry records which distribution registered what
and refuses duplicates. None of these hooks is ``firstresult`` or ``historic``:
every plugin's implementation is called and return values are ignored.

    from trm_core import hookimpl

    @hookimpl
    def register_mixers(register):
        register("my_mixer", MyMixer)
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .interfaces import KINDS

PROJECT = "trm"

#: The version of the plugin contract (these hooks, the interfaces in
#: ``trm_core.interfaces`` and the config keys they read) this trm-core implements.
#: It changes only with trm-core's minor version (0.x), and every change is listed
#: in CHANGELOG.md under "Plugin contract". A plugin states the contract it was
#: written for with a module attribute, ``TRM_PLUGIN_CONTRACT = 2``, and with its
#: ``trm-core`` requirement (``trm-core>=0.2,<0.3``); the registry refuses a plugin
#: whose either statement disagrees with this engine.
PLUGIN_CONTRACT = 2

#: The module attribute where a plugin states its contract version.
CONTRACT_ATTRIBUTE = "TRM_PLUGIN_CONTRACT"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``register(name, cls)``: the callback every contribution hook receives.
Register = Callable[[str, type], None]


@hookspec
def register_encoders(register: Register) -> None:
    """Contribute encoders.

    Args:
        register: call ``register(name, cls)`` once per encoder, ``cls`` a
            subclass of :class:`trm_core.Encoder`; ``name`` is what configs use
            (``model.encoder``).

    Returns:
        Nothing.
    """


@hookspec
def register_mixers(register: Register) -> None:
    """Contribute token mixers.

    Args:
        register: call ``register(name, cls)`` once per mixer, ``cls`` a
            subclass of :class:`trm_core.Mixer`; ``name`` is what
            ``model.mixer`` and ``trm-run --mixer`` use.

    Returns:
        Nothing.
    """


@hookspec
def register_cores(register: Register) -> None:
    """Contribute think/act cores.

    Args:
        register: call ``register(name, cls)`` once per core, ``cls`` a
            subclass of :class:`trm_core.ThinkActCore`; ``name`` is what
            ``model.core`` uses.

    Returns:
        Nothing.
    """


@hookspec
def register_halting_heads(register: Register) -> None:
    """Contribute halting heads.

    Args:
        register: call ``register(name, cls)`` once per head, ``cls`` a
            subclass of :class:`trm_core.HaltingHead`; ``name`` is what
            ``model.halting_head`` uses.

    Returns:
        Nothing.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Contribute tasks (puzzle types).

    Args:
        register: call ``register(name, cls)`` once per task, ``cls`` a
            subclass of :class:`trm_core.Task` constructible with no arguments;
            ``name`` is what ``trm-run --task`` uses.

    Returns:
        Nothing.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Contribute inference strategies (how a trained model answers puzzles).

    Args:
        register: call ``register(name, cls)`` once per strategy, ``cls`` a
            subclass of :class:`trm_core.Strategy`; ``name`` is what
            ``trm-eval --strategy``, ``trm-solve --strategy`` and the config's
            ``strategy.name`` use.

    Returns:
        Nothing.
    """


@hookspec
def register_loggers(register: Register) -> None:
    """Contribute loggers (where a run's metrics, images and hyper-parameters go).

    Args:
        register: call ``register(name, cls)`` once per logger, ``cls`` a subclass of
            :class:`trm_core.Logger`; ``name`` is its key in the config's ``loggers``
            section (``--set loggers.NAME.OPTION=VALUE``).

    Returns:
        Nothing.
    """


#: Each contribution hook and the plugin kind it contributes (from the table of kinds).
HOOK_KINDS: dict[str, str] = {kind.hook: name for name, kind in KINDS.items()}
