"""Writing predictions: Parquet (snappy) and JSON lines through Spark's committer."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkface.core.config import ConfigError
from sparkface.spark.paths import join, spark_path, written_path

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
    parquet_path = join(output, "parquet")
    writer = scored.write.mode("overwrite").option("compression", "snappy")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(spark_path(parquet_path))
    # Read back as named: `night[1]/parquet` is not a pattern for another night's `night1`.
    written = scored.sparkSession.read.parquet(written_path(parquet_path))
    if "json" in formats:
        json_writer = written.write.mode("overwrite").option("ignoreNullFields", "false")
        if partition_by:
            json_writer = json_writer.partitionBy(*partition_by)
        json_writer.option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").json(
            spark_path(join(output, "json"))
        )
    return written


def summarise(written: DataFrame) -> dict[str, Any]:
    """Files, scored faces and errors (with counts per reason) from the written rows, in one pass.
    A file gives one row, or in detect mode one row per face (or one 'no_face' row)."""
    reason = F.when(F.col("status") == "error", F.regexp_replace("error", r":.*$", ""))
    counts = (
        written.groupBy("status", reason.alias("reason"))
        .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("path").alias("files"))
        .collect()
    )
    errors = {row["reason"]: int(row["rows"]) for row in counts if row["status"] == "error"}
    scored = sum(int(row["rows"]) for row in counts if row["status"] == "ok")
    with_faces = sum(int(row["files"]) for row in counts if row["status"] == "ok")
    no_face = sum(int(row["files"]) for row in counts if row["status"] == "no_face")
    return {
        "files": with_faces + no_face + sum(errors.values()),
        "scored": scored,
        "no_face": no_face,
        "errors": sum(errors.values()),
        "errors_by_reason": errors,
    }
