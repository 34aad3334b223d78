"""Errors a user can act on, each with the exit code its job ends with.

Jobs map these, and only these, to a one-line message and their exit code; any other exception is
a bug and is logged with its traceback (`sparkface.spark.runner`).
"""

from __future__ import annotations

EXIT_FAILED = 1  # the run failed for a reason it states (a missing input folder, say)
EXIT_USAGE = 2  # bad arguments, configuration, input or model: fix them and rerun
EXIT_OUTPUT = 3  # the output cannot be written
EXIT_TRY_LATER = 75  # EX_TEMPFAIL: another run holds the lock; the scheduler should retry


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
