"""The plugin author kit for pytest (loaded automatically as the ``trm`` pytest plugin).

Fixture ``trm_registry``: a fresh registry for one test, made the process-wide
one while the test runs. It loads the installed plugins that
``TRM_LOAD_PLUGINS`` selects (all when unset); register your own with
``trm_registry.add_plugin(module_or_object)`` or ``trm_registry.add(kind, name, cls)``::

    def test_my_mixer(trm_registry):
        trm_registry.add_plugin(my_plugin_module)
        model = trm_core.build_model({"mixer": "mine", "vocab_size": 11, "seq_len": 81})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .registry import Registry, use_registry


@pytest.fixture
def trm_registry() -> Iterator[Registry]:
    """A fresh plugin registry, process-wide for the duration of one test."""
    registry = Registry.from_environment()
    with use_registry(registry):
        yield registry
