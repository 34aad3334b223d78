"""What the jobs share: common arguments, the session around a job's work, and the one place
where exceptions become exit codes."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sparkface.core.config import IngestConfig
from sparkface.core.errors import EXIT_FAILED, UserError
from sparkface.spark.logs import configure_logging

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("sparkface")
T = TypeVar("T")


def add_common_arguments(parser: argparse.ArgumentParser, labels: bool = True) -> None:
    """--labels-config, --ingest-config and --spark-log-level."""
    if labels:
        parser.add_argument("--labels-config", default=None, help="default: conf/labels.yaml")
    parser.add_argument("--ingest-config", default=None, help="default: conf/ingest.yaml")
    parser.add_argument(
        "--spark-log-level",
        default="WARN",
        help="Spark's own log level (the jobs' log stays at INFO)",
    )


def arrow_batch(batch_size: int) -> dict[str, str]:
    """Arrow batches no larger than a model batch: a worker never holds thousands of images."""
    return {"spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_size)}


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


def in_session(
    app_name: str,
    ingest: IngestConfig,
    work: Callable[[SparkSession], T],
    log_level: str = "WARN",
    extra: dict[str, str] | None = None,
) -> T:
    """Build the session, run `work` in it, always stop the session."""
    # Imported here: a job without Spark (jobs/fit.py) shares this module's run_main.
    from sparkface.spark.session import build_session

    spark = build_session(app_name, ingest, extra, log_level=log_level)
    try:
        return work(spark)
    finally:
        spark.stop()
