"""The exceptions lstm-inspect raises for problems with its input.

The CLI shows any of these as one line on stderr and exits non-zero; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class LstmInspectError(Exception):
    """Base class: a problem with the user's input, with a message fit to show as is."""


class FileNotFound(LstmInspectError):
    """A path (checkpoint, shard, state file) does not exist or cannot be opened."""


class UnsupportedFormat(LstmInspectError):
    """The file is not one of the formats lstm-inspect reads."""


class CorruptFile(LstmInspectError):
    """The file is of a known format but truncated, inconsistent or fails its checksum."""


class NoLSTMLayers(LstmInspectError):
    """The file holds no LSTM layer, and the command needs one."""


class UnknownName(LstmInspectError):
    """A layer, gate or part name given by the user does not exist; the message lists valid ones."""


class UsageError(LstmInspectError):
    """The arguments do not fit together (a flag of another layout); the CLI exits 2 for it, as for
    click's own usage errors."""


class OutputError(LstmInspectError):
    """The output file cannot be written."""


class RemoteError(LstmInspectError):
    """A remote file (a URL) cannot be read: the network, the server or the credentials failed."""


class LstmInspectWarning(UserWarning):
    """Something the user should know about the input that does not stop the command (a data shard
    shorter than its index says, weights no trained LSTM holds); the CLI prints one line per warning."""


def warn(message: str) -> None:
    """Report `message` as a warning: library code never prints, the CLI shows it on stderr."""
    import warnings

    warnings.warn(message, LstmInspectWarning, stacklevel=2)
