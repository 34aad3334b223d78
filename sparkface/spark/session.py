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
        # Executors started by a cluster (YARN, standalone workers) read file names in their
        # locale's character set: ASCII without one, and `café.jpg` could not be opened.
        "spark.executorEnv.LC_ALL": "C.UTF-8",
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
    if not names_in_utf8(spark):
        log.warning(
            "Java reads file names here as %s, not UTF-8: a file whose name is not ASCII gets an "
            "'unreadable file name' row. Run the job with LANG=C.UTF-8 (conf/spark/spark-env.sh "
            "sets it where SPARK_CONF_DIR is conf/spark)",
            jvm_name_encoding(spark),
        )
    log.info(
        "Spark %s session %s on %s",
        spark.version,
        spark.sparkContext.applicationId,
        spark.sparkContext.master,
    )
    return spark


def jvm_name_encoding(spark: SparkSession) -> str:
    """The character set the driver's Java reads file names in (its locale's)."""
    return str(spark.sparkContext._jvm.java.lang.System.getProperty("sun.jnu.encoding"))


def names_in_utf8(spark: SparkSession | None) -> bool:
    """Whether Spark can open every file whose name is UTF-8 (no session: assumed so)."""
    if spark is None:
        return True
    return jvm_name_encoding(spark).replace("-", "").upper() == "UTF8"
