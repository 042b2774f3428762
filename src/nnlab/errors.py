"""Errors that mean "bad input": the CLI prints their message, exits with status 2, no traceback.

Raise them at the boundary (config, flags, files) with what was received and what is allowed.
They subclass ``ValueError``/``RuntimeError`` so library users can catch the usual types too.
"""

from __future__ import annotations


class NnlabError(Exception):
    """Base of every error that the CLI reports as a one-line message with exit status 2."""


class ConfigError(NnlabError, ValueError):
    """A flag or a config value is out of range or unknown."""


class DataError(NnlabError, ValueError):
    """A data file or folder is missing, malformed or unsafe."""


class UnsafePickleError(DataError):
    """A pickle asked for a global outside the allow-list; nothing was executed."""


class CheckpointError(NnlabError, ValueError):
    """A checkpoint is missing, unreadable, unsafe or belongs to another model/config."""


class TrainingDiverged(NnlabError, RuntimeError):
    """The loss or a gradient became NaN/inf; the last good checkpoint stays resumable."""


class RunLockedError(NnlabError, RuntimeError):
    """Another process holds the lock of this run folder."""


def check(problems: list[str], what: str = "config", cls: type[NnlabError] = ConfigError) -> None:
    """Raise one error that lists every collected problem (scikit-learn style), if any."""
    if problems:
        if len(problems) == 1:
            raise cls(f"invalid {what}: {problems[0]}")
        raise cls(f"invalid {what}:\n  - " + "\n  - ".join(problems))
