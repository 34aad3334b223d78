"""A night's audience written out: the counts and shares tables (Parquet) and the HTML report,
from any scored rows (a campaign's staged night, or a one-off run's output)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from sparkface.audience.likeness import SourceClassifier
from sparkface.audience.report import now_text, render_report, report_data
from sparkface.audience.shares import HeadCalibration
from sparkface.audience.tables import audience_tables
from sparkface.core.config import AudienceConfig
from sparkface.core.errors import InputError
from sparkface.spark.paths import (
    input_path,
    is_folder,
    join,
    reason_of,
    spark_path,
    writable_folder,
    write_text,
    written_path,
)

log = logging.getLogger("sparkface")

# Folders under the output: the counts, the shares, the report.
COUNTS_DIR, SHARES_DIR, REPORT_DIR = "audience", "audience_shares", "report"
REPORT_FILE = "audience.html"


def read_predictions(spark: SparkSession, path: str) -> DataFrame:
    """The scored rows under `path`: a Parquet folder of predictions, or the folder a scoring
    run wrote (its `parquet/`) or a campaign's output (its `predictions/`), as users pass them.
    A path that holds none is an InputError (exit 2), where Spark's was a trace (exit 1)."""
    for inside in ("parquet", "predictions"):
        if is_folder(spark, join(path, inside)):  # no Parquet folder holds one so named
            log.info("reading the scored rows in %s", join(path, inside))
            path = join(path, inside)
            break
    try:
        rows = spark.read.parquet(input_path(path))
    except (PySparkException, Py4JJavaError) as error:  # missing, not Parquet, not one table
        raise InputError(
            f"--predictions {path}: no scored rows there ({reason_of(error)}); give a scoring "
            "run's output folder, its parquet/, or a campaign's output"
        ) from None
    return latest_scoring(rows) if "run_date" in rows.columns else rows


def latest_scoring(rows: DataFrame) -> DataFrame:
    """A campaign's rows with each file (path and modification time) as its latest night scored
    it: a `--full` night, or a campaign that scored the same cameras, scores a file again, and
    its faces stood in front of the screen once. A file changed under the same name (a camera
    that overwrites `snapshot.jpg`) is another photo, kept."""
    scoring = F.struct("run_date", "scored_at", "run_id")
    latest = F.max(scoring).over(Window.partitionBy("path", "modified_at"))
    return rows.withColumn("_latest", latest).where(scoring == F.col("_latest")).drop("_latest")


def write_audience(
    predictions: DataFrame,
    output: str | Path,
    classes: dict[str, list[str]],
    calibration: dict[str, HeadCalibration] | None,
    config: AudienceConfig,
    about: dict[str, Any],
    likeness: SourceClassifier | None = None,
) -> dict[str, Any]:
    """Write OUTPUT/audience, OUTPUT/audience_shares (Parquet) and OUTPUT/report/audience.html
    from `predictions`; return what was written (sources, windows, faces, seconds)."""
    writable_folder(predictions.sparkSession, output, (COUNTS_DIR, SHARES_DIR))
    started = time.perf_counter()
    counts, shares = audience_tables(predictions, classes, calibration, config, likeness)
    # A night's tables are small (sources x windows): one file each.
    counts.coalesce(1).write.mode("overwrite").parquet(spark_path(join(output, COUNTS_DIR)))
    shares.coalesce(1).write.mode("overwrite").parquet(spark_path(join(output, SHARES_DIR)))
    spark = predictions.sparkSession
    counts_frame = spark.read.parquet(written_path(join(output, COUNTS_DIR))).toPandas()
    shares_frame = spark.read.parquet(written_path(join(output, SHARES_DIR))).toPandas()
    about = {
        **about,
        "window_minutes": config.window_minutes,
        "timezone": config.timezone,
        "min_faces": config.min_faces,
        "corrected": calibration is not None,
        "generated_at": now_text(),
    }
    # Beside the tables, wherever they went: an `hdfs://` output once put it in a local `hdfs:/`.
    report = write_text(
        spark,
        join(output, REPORT_DIR, REPORT_FILE),
        render_report(report_data(counts_frame, shares_frame, about)),
    )
    summary = {
        "sources": int(counts_frame["source"].nunique()),
        "windows": len(counts_frame),
        "windows_with_shares": int(counts_frame["shares_reported"].sum()),
        "faces": int(counts_frame["faces"].sum()),
        "corrected": calibration is not None,
        "report": str(report),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info(
        "audience: %d sources, %d windows (%d with shares), %d faces, %s shares; report %s",
        summary["sources"],
        summary["windows"],
        summary["windows_with_shares"],
        summary["faces"],
        "corrected" if summary["corrected"] else "uncorrected",
        report,
    )
    return summary
