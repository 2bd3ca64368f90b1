"""The plugin author kit for pytest (loaded automatically as the ``trm`` pytest plugin).

Fixture ``trm_registry``: a fresh registry for one test, made the process-wide
one while the test runs. It loads the installed plugins that
``TRM_LOAD_PLUGINS`` selects (all when unset), or those a
``@pytest.mark.trm_plugins(...)`` marker names (entry-point or distribution
names; no names: none; trm-core's own always). Register your own with
``trm_registry.add_plugin(module_or_object)`` or ``trm_registry.add(kind, name, cls)``::

    @pytest.mark.trm_plugins("trm-core")
    def test_my_mixer(trm_registry):
        trm_registry.add_plugin(my_plugin_module)
        model = trm_core.build_model({"mixer": "mine", "vocab_size": 11, "seq_len": 81})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .registry import Registry, use_registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "trm_plugins(*names): the trm_registry fixture loads only these installed trm "
        "plugins (entry-point or distribution names; trm-core's own always load); no names "
        "loads none of the installed ones",
    )


@pytest.fixture
def trm_registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    """A fresh plugin registry, process-wide for the duration of one test."""
    marker = request.node.get_closest_marker("trm_plugins")
    registry = Registry.from_environment() if marker is None else Registry(select=set(marker.args))
    with use_registry(registry):
        yield registry
