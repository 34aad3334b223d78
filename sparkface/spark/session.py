"""The one place that builds SparkSessions for the jobs."""

from __future__ import annotations

import logging
import os
import sys

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from sparkface.core.config import IngestConfig

log = logging.getLogger("sparkface")


def session_defaults(ingest: IngestConfig | None = None) -> dict[str, str]:
    """Spark settings the jobs want unless spark-submit --conf says otherwise."""
    ingest = ingest or IngestConfig()
    return {
        "spark.sql.files.maxPartitionBytes": str(ingest.max_partition_bytes),
        "spark.sql.files.openCostInBytes": str(ingest.open_cost_bytes),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
    }


def build_session(
    app_name: str,
    ingest: IngestConfig | None = None,
    extra: dict[str, str] | None = None,
    log_level: str = "WARN",
) -> SparkSession:
    """Build (or reuse) the SparkSession: local[*] unless a master is given, our defaults under
    anything spark-submit --master/--conf set, Python workers on the driver's interpreter."""
    if "PYSPARK_PYTHON" not in os.environ:
        # Workers must import the same packages as the driver: use its interpreter.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    SparkContext._ensure_initialized()  # joins spark-submit's JVM, so SparkConf sees its --conf
    conf = SparkConf()
    if not conf.contains("spark.master"):
        conf.setMaster("local[*]")
    conf.setAppName(conf.get("spark.app.name", app_name) or app_name)
    for key, value in {**session_defaults(ingest), **(extra or {})}.items():
        if not conf.contains(key):
            conf.set(key, value)
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    log.info(
        "Spark %s session %s on %s",
        spark.version,
        spark.sparkContext.applicationId,
        spark.sparkContext.master,
    )
    return spark
