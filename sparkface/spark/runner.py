"""What the jobs share: common arguments, the session around a job's work, and (from
`sparkface.spark.exits`) the one place where exceptions become exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import SparkSession

from sparkface.core.config import IngestConfig
from sparkface.spark.exits import run_main
from sparkface.spark.session import build_session

__all__ = ["add_common_arguments", "arrow_batch", "in_session", "run_main"]

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


def in_session(
    app_name: str,
    ingest: IngestConfig,
    work: Callable[[SparkSession], T],
    log_level: str = "WARN",
    extra: dict[str, str] | None = None,
) -> T:
    """Build the session, run `work` in it, always stop the session."""
    spark = build_session(app_name, ingest, extra, log_level=log_level)
    try:
        return work(spark)
    finally:
        spark.stop()
