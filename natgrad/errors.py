"""The user-facing error of the command line (its own module so that ``python -m
natgrad.cli``, which runs ``cli.py`` as ``__main__``, and the subcommand modules, which
import ``natgrad.cli``, share one class)."""


class UsageError(Exception):
    """A user-facing error: printed as one line, exit status 2."""
