"""The project's own exceptions.

Every error a user can cause is one of these, so the command line can catch them in one
place and print a single readable line. They never come from bare ``assert``.
"""


class ScratchnetError(Exception):
    """Base class of every error scratchnet raises on purpose."""


class ConfigError(ScratchnetError, ValueError):
    """A bad experiment file, option or constructor argument. ``key`` optionally names
    the config key (a tuple of path parts, relative to whoever catches it) at fault."""

    def __init__(self, message: str = "", *, key: tuple = ()):
        super().__init__(message)
        self.key = tuple(key)


class ConfigErrors(ConfigError):
    """Several mistakes found at once (``validate`` reports them all); the message is the
    first, so a command that shows one line shows that one."""

    def __init__(self, messages: list[str]):
        super().__init__(messages[0])
        self.messages = list(messages)


class NeedsDataFile(ConfigError):
    """A config that leaves ``data.path`` for its user to give (``path: null`` written in
    a shipped example for a CSV file of theirs): ``validate`` says so as a note, ``train``
    refuses it."""


class DataError(ScratchnetError):
    """Missing, corrupt or unsuitable data."""


class WriteError(ScratchnetError):
    """A file or folder that could not be written: a full disk, a read-only file system,
    a name too long. ``full`` says the disk (or quota, or file size limit) ran out, so
    whatever was written before is all there is."""

    def __init__(self, message: str = "", *, full: bool = False):
        super().__init__(message)
        self.full = full


class CheckpointError(DataError):
    """A checkpoint whose contents cannot be resumed: a key missing, a value of the wrong
    type or out of range (a negative epoch, a permutation that is not one)."""


class ShapeError(ScratchnetError, ValueError):
    """An array whose shape does not match what an operation expects."""


class DropoutRateWarning(UserWarning):
    """A dropout rate of 0.5 or more given from Python: perhaps the book's keep
    probability, where scratchnet (like PyTorch and Keras) takes the drop rate."""


class DivergenceError(ScratchnetError):
    """Training produced a NaN or infinite loss or weight."""


class ScratchnetWarning(UserWarning):
    """Something went wrong beside the work, which carried on: an experiment tracker that
    could not log, say. The command line shows it as one ``warning:`` line."""
