"""User-facing errors.

Anything a user can cause (a bad path, a bad image, a bad config value, the wrong checkpoint) is raised as a
:class:`NiceganError`. The command line prints its message on one line and exits with status 2, so users never
see a traceback of internals for their own mistakes. Bugs stay ordinary exceptions.

Messages below the command line are neutral: they name a setting by its Python API keyword or config key, never by
a command-line flag, and pass that name as ``option`` (``NiceganError(..., option="tile")``; a log record takes
``extra={"option": "keep_size"}``). The command line writes the flag of the command the user typed in its place.
"""

from __future__ import annotations


class NiceganError(Exception):
    """Base class of errors caused by user input; the message is one line that says what to fix.

    ``option`` names the setting at fault (or the one to change) by its neutral name: the Python API keyword or
    config key, e.g. ``"tile"`` or ``"batch_size"``. The message names it the same way ("tile must be a positive
    multiple of 8, got 5") and never as a command-line flag: the command line turns the name into the flag of the
    command the user typed (``--tile``), so that Python API users do not read about flags they never passed.
    """

    def __init__(self, *args: object, option: str | None = None) -> None:
        super().__init__(*args)
        self.option = option  # in the instance dict, so it survives pickling (sweep executors) like the args do


class ConfigError(NiceganError):
    """An unknown config key, a value of the wrong type or out of range."""


class DataError(NiceganError):
    """A missing or empty data folder, or images that cannot be used."""


class CheckpointError(NiceganError):
    """A checkpoint that is missing, unreadable, unsafe to load or does not fit."""


class TrainingDiverged(NiceganError):
    """A loss became NaN or infinite; the last good checkpoint on disk is kept."""
