"""Errors a user can act on, each with the exit code its job ends with.

Every job, one-off or campaign, exits with one of these codes (the README's table is this one):

    0   done
    1   an unexpected error: a bug, logged with its traceback (report it)
    2   bad arguments, configuration, input (a missing folder) or model package: fix, rerun
    3   the output cannot be written (or its disk filled up while writing)
    75  another run holds the campaign's lock (EX_TEMPFAIL): the scheduler should retry

Jobs map these errors, and only these, to a one-line message and their exit code; any other
exception is a bug (`sparkface.spark.exits`).
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
EXIT_TRY_LATER = 75


class UserError(Exception):
    """A failure the user caused and can fix; `exit_code` is what the job exits with."""

    exit_code = EXIT_USAGE


class InputError(UserError):
    """The input location cannot be read at all (missing, not a folder, no shards)."""


class PackageError(UserError):
    """A model package that cannot be read or does not fit the job."""


class OutputError(UserError):
    """The output cannot be written."""

    exit_code = EXIT_OUTPUT


class MissingFramework(UserError):
    """The work needs a framework this install left out (Keras: pip install 'sparkface[keras]')."""
