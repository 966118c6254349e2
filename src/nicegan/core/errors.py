"""User-facing errors.

Anything a user can cause (a bad path, a bad image, a bad config value, the wrong checkpoint) is raised as a
:class:`NiceganError`. The command line prints its message on one line and exits with status 2, so users never
see a traceback of internals for their own mistakes. Bugs stay ordinary exceptions.
"""

from __future__ import annotations


class NiceganError(Exception):
    """Base class of errors caused by user input; the message is one line that says what to fix."""


class ConfigError(NiceganError):
    """An unknown config key, a value of the wrong type or out of range."""


class DataError(NiceganError):
    """A missing or empty data folder, or images that cannot be used."""


class CheckpointError(NiceganError):
    """A checkpoint that is missing, unreadable, unsafe to load or does not fit."""


class TrainingDiverged(NiceganError):
    """A loss became NaN or infinite; the last good checkpoint on disk is kept."""
