"""What the jobs' command lines share."""

from __future__ import annotations

import argparse


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
