"""Every error trm raises on purpose, in one place.

The user's mistakes (a bad config, data file, checkpoint or plugin) and the
machine's limits are reported by every command as one ``error:`` line with exit
code 2 (``trm_core.command.guarded``); :data:`USER_ERRORS` lists the classes it
reports that way. Each class is importable from ``trm_core`` and from the module
that raises it.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


class FieldError(ConfigError):
    """A bad value of one field, raised by a validator; ``structure`` puts the place in
    front: ``model.options.grid.positions 'rotary' is not one of rope, learned, none``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


class DeviceError(ConfigError):
    """A device that is not a device, or that this machine does not have."""


class FolderBusyError(ConfigError):
    """A run folder another process is writing."""


class DataError(ValueError):
    """A data set on disk that is missing, malformed or does not fit the task."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


class ModelFolderError(CheckpointError):
    """A model folder that cannot be read, does not fit, or cannot be written."""


class PluginError(RuntimeError):
    """A plugin could not be used: bad registration, duplicate, failed import."""


class UnknownPluginError(PluginError, LookupError):
    """A name that no loaded plugin registered for that kind."""


class PluginLoadWarning(UserWarning):
    """An installed plugin failed to import; the others still load."""


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a checkpoint that does not fit, a full
    disk, memory run out); the message says what was kept."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt (a
    BaseException: no ``except Exception`` on the way swallows it)."""


#: What the commands report as one line and exit code 2: the user's input.
USER_ERRORS: tuple[type[Exception], ...] = (
    CheckpointError,
    ConfigError,
    DataError,
    PluginError,
    TrainingError,
)
