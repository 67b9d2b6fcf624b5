"""The project's own exceptions.

Every error a user can cause is one of these, so the command line can catch them in one
place and print a single readable line. They never come from bare ``assert``.
"""


class ScratchnetError(Exception):
    """Base class of every error scratchnet raises on purpose."""


class ConfigError(ScratchnetError, ValueError):
    """A bad experiment file, option or constructor argument."""


class DataError(ScratchnetError):
    """Missing, corrupt or unsuitable data."""


class ShapeError(ScratchnetError, ValueError):
    """An array whose shape does not match what an operation expects."""


class DivergenceError(ScratchnetError):
    """Training produced a NaN or infinite loss or weight."""


class ScratchnetWarning(UserWarning):
    """Something went wrong beside the work, which carried on: an experiment tracker that
    could not log, say. The command line shows it as one ``warning:`` line."""
