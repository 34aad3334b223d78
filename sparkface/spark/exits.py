"""The one place where a job's exceptions become exit codes. It imports nothing of Spark, so that
a job without Spark (jobs/fit.py, on a GPU node) exits as the Spark jobs do."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sparkface.core.errors import EXIT_FAILED, UserError
from sparkface.spark.logs import configure_logging

log = logging.getLogger("sparkface")


def run_main(name: str, body: Callable[[], object]) -> int:
    """Run a job's body and turn its outcome into an exit code: 0 when it returns; a UserError's
    own code with its one-line message; any other exception is a bug, logged with its traceback
    (exit 1)."""
    configure_logging()
    try:
        body()
    except UserError as error:
        log.error("%s", error)
        return error.exit_code
    except Exception:
        log.exception("%s failed with an unexpected error", name)
        return EXIT_FAILED
    return 0
