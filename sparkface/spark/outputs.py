"""Writing predictions: Parquet (snappy) and JSON lines through Spark's committer."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkface.core.config import ConfigError

log = logging.getLogger("sparkface")

FORMATS = ("parquet", "json")


def parse_formats(text: str) -> tuple[str, ...]:
    """'parquet,json' -> ('parquet', 'json'); an unknown format names itself in the error."""
    formats = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format: unknown {unknown or text!r}; choose from {list(FORMATS)}")
    return formats


def write_predictions(
    scored: DataFrame, output: str, formats: tuple[str, ...], partition_by: tuple[str, ...] = ()
) -> DataFrame:
    """Write `scored` once (Parquet), derive the other formats from what was written, and return
    the written rows for the summary. Spark's committer publishes a folder only when its job
    succeeded, so a failed run leaves no half-written files behind."""
    parquet_path = f"{output}/parquet"
    writer = scored.write.mode("overwrite").option("compression", "snappy")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(parquet_path)
    written = scored.sparkSession.read.parquet(parquet_path)
    if "json" in formats:
        json_writer = written.write.mode("overwrite").option("ignoreNullFields", "false")
        if partition_by:
            json_writer = json_writer.partitionBy(*partition_by)
        json_writer.option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").json(f"{output}/json")
    return written


def summarise(written: DataFrame) -> dict[str, int]:
    """Files, scored and errors (with counts per reason) from the written rows, in one pass."""
    reason = F.when(F.col("status") == "error", F.regexp_replace("error", r":.*$", ""))
    counts = written.groupBy("status", reason.alias("reason")).count().collect()
    errors = {row["reason"]: int(row["count"]) for row in counts if row["status"] == "error"}
    scored = sum(int(row["count"]) for row in counts if row["status"] == "ok")
    return {
        "files": scored + sum(errors.values()),
        "scored": scored,
        "errors": sum(errors.values()),
        "errors_by_reason": errors,
    }
