"""What the jobs' command lines share."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import SparkSession

from sparkface.config import IngestConfig
from sparkface.session import build_session

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


def run_in_session(
    app_name: str,
    ingest: IngestConfig,
    work: Callable[[SparkSession], T],
    failures: dict[type[Exception], tuple[int, str]],
    log_level: str = "WARN",
    extra: dict[str, str] | None = None,
) -> tuple[int, T | None]:
    """Build the session, run `work`, always stop the session. An exception listed in `failures`
    is logged with its message template ("{error}" is replaced) and gives its exit code."""
    spark = build_session(app_name, ingest, extra, log_level=log_level)
    try:
        return 0, work(spark)
    except tuple(failures) as error:
        for kind, (code, template) in failures.items():
            if isinstance(error, kind):
                log.error(template.format(error=error))
                return code, None
        raise
    finally:
        spark.stop()
