"""The user-facing error of the command line (its own module so that ``python -m
natgrad.cli``, which runs ``cli.py`` as ``__main__``, and the subcommand modules, which
import ``natgrad.cli``, share one class)."""


class UsageError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class InputError(UsageError, ValueError):
    """Bad input found below the command line (e.g. an empty shard cache): a ``ValueError``
    for callers of the Python API, a one-line error with exit status 2 on the command line."""
