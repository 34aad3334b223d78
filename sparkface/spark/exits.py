"""The one place where a job's exceptions become exit codes. It imports nothing of Spark, so that
a job without Spark (jobs/fit.py, on a GPU node) exits as the Spark jobs do."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable

from sparkface.core.errors import EXIT_FAILED, EXIT_OUTPUT, UserError
from sparkface.spark.logs import configure_logging

log = logging.getLogger("sparkface")

# What a file system says when it is full, in Python (OSError's strerror) and in Java (an
# IOException's message, deep in the trace that Spark's write failure carries through py4j).
STORAGE_FULL = ("No space left on device", "Disk quota exceeded")


def storage_full(error: BaseException) -> str | None:
    """A user's message when `error` is a write that met a full disk or quota, else None."""
    text = "".join(traceback.format_exception(error))
    reason = next((reason for reason in STORAGE_FULL if reason in text), None)
    if reason is None:
        return None
    written = re.search(r"writing rows to (\S+?)/_temporary/", text)
    where = f" while writing {written.group(1)}" if written else ""
    return (
        f"the output's storage is full ({reason}{where}); free space there or choose another "
        "output, then rerun (a rerun replaces what this run wrote)"
    )


def run_main(name: str, body: Callable[[], object]) -> int:
    """Run a job's body and turn its outcome into an exit code: 0 when it returns; a UserError's
    own code with its one-line message; a write that met a full disk, 3 (the check before any
    work cannot see a disk fill up); any other exception is a bug, logged with its traceback
    (exit 1)."""
    configure_logging()
    try:
        body()
    except UserError as error:
        log.error("%s", error)
        return error.exit_code
    except Exception as error:
        if message := storage_full(error):
            log.error("%s", message)
            return EXIT_OUTPUT
        log.exception("%s failed with an unexpected error", name)
        return EXIT_FAILED
    return 0
