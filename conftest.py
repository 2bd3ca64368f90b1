"""Test-suite settings shared by the engine's and the task plugins' tests.

- ``pytest --device cuda`` (or ``TRM_TEST_DEVICE=cuda``) runs the tests marked
  ``@pytest.mark.device`` (model parity, training steps, checkpoints and resume,
  evaluation, trm-bench) on that device, through the ``device`` fixture; every
  other test, and these without the option, run on the CPU.
- No test may leave its device or forward dtype to the machine it runs on: while
  the suite runs, trm's two machine-dependent choices (``auto`` device and
  ``auto`` dtype, in ``trm_core.devices``) fail the test that reaches them. A
  test of those choices themselves takes the ``machine`` fixture and mocks what
  the machine reports. A third, whether a C++ compiler is there for ``torch.compile``
  (``auto`` compile on a CPU in bfloat16), is answered "none" for the whole session:
  a test compiles only where it sets ``train.compile``.
- No test reads the network: a connection to anything but this machine fails the
  test, and subprocesses get ``HF_HUB_OFFLINE=1``.
- Hypothesis draws the same examples on every run (``derandomize``), so a CI run
  passes or fails on the code alone; ``TRM_HYPOTHESIS=explore`` draws new ones
  each run, to look for the cases no fixed seed reaches.
"""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import settings

import trm_core.devices

settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("TRM_HYPOTHESIS") == "explore" else "fixed")


class LeftToTheMachine(AssertionError):
    """A test reached a choice that depends on the machine it runs on."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get("TRM_TEST_DEVICE", "cpu"),
        help="device for the tests marked 'device' (cpu, cuda, cuda:N; default cpu, or "
        "$TRM_TEST_DEVICE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "device: runs on pytest's --device (default cpu) through the device fixture"
    )
    name = config.getoption("--device")
    if name == "auto":
        raise pytest.UsageError("--device auto would test the machine; name the device")
    try:  # a device this machine lacks stops the run at once, naming the ones it has
        trm_core.devices.resolve_device(name, key="--device")
    except trm_core.devices.DeviceError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"trm test device: {config.getoption('--device')} (tests marked 'device')"


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The device named by ``--device`` (checked at start-up to exist), e.g. ``"cpu"``."""
    return request.config.getoption("--device")


_REAL = {
    "auto_device": trm_core.devices.auto_device,
    "auto_dtype": trm_core.devices.auto_dtype,
}


@pytest.fixture(scope="session", autouse=True)
def _choices_are_pinned():
    """Make the machine-dependent choices fail for the whole session (module-scoped
    fixtures that train included)."""

    def no_auto_device():
        raise LeftToTheMachine(
            "this test left the device to the machine (device 'auto'): pass --device / "
            "device=..., or the device fixture"
        )

    def no_auto_dtype(device):
        raise LeftToTheMachine(
            f"this test left the forward dtype to the machine (dtype 'auto' on {device}): "
            "set model.dtype"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trm_core.devices, "auto_device", no_auto_device)
        patch.setattr(trm_core.devices, "auto_dtype", no_auto_dtype)
        patch.setattr(trm_core.devices, "cpu_compiler", lambda: None)
        yield


def _is_local(sock: socket.socket, address) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    return host in ("localhost", "::1", "") or str(host).startswith("127.")


@pytest.fixture(scope="session", autouse=True)
def _no_network():
    """Connections leave this machine only in a failing test."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(original):
        def wrapper(sock, address):
            if not _is_local(sock, address):
                raise LeftToTheMachine(f"this test reached for the network ({address!r})")
            return original(sock, address)

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", guard(connect))
        patch.setattr(socket.socket, "connect_ex", guard(connect_ex))
        yield


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """For tests of the ``auto`` choices: the real ones, with ``monkeypatch`` returned
    so the test can mock what the machine reports (CUDA, native bfloat16)."""
    for name, function in _REAL.items():
        monkeypatch.setattr(trm_core.devices, name, function)
    return monkeypatch
