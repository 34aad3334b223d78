"""Reading folders of images into Spark with the binaryFile source."""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.config import IngestConfig

log = logging.getLogger("sparkface")

FILE_COLUMNS = ("path", "file_name", "file_size", "modified_at")


class InputError(ValueError):
    """The input location cannot be read at all (missing, not a folder)."""


def extension_pattern(extensions: tuple[str, ...]) -> str:
    """A case-insensitive regex matching file names that end in one of `extensions`."""
    alternatives = "|".join(extension.lstrip(".").lower() for extension in extensions)
    return rf"(?i)\.({alternatives})$"


def file_name(path: Column) -> Column:
    """The last component of a path (binaryFile keeps spaces and non-ASCII letters as they are)."""
    return F.regexp_extract(path, r"([^/]+)$", 1)


def _binary_files(spark: SparkSession, input_dir: str) -> DataFrame:
    if "://" not in input_dir:
        local = Path(input_dir)
        if not local.exists():
            raise InputError(f"input folder does not exist: {input_dir}")
        if not local.is_dir():
            raise InputError(f"input is not a folder: {input_dir}")
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("ignoreMissingFiles", "true")
        .load(input_dir)
    )
    return files.select(
        F.col("path"),
        file_name(F.col("path")).alias("file_name"),
        F.col("length").alias("file_size"),
        F.col("modificationTime").alias("modified_at"),
        F.col("content"),
    )


def list_files(spark: SparkSession, input_dir: str, ingest: IngestConfig) -> DataFrame:
    """Every file under `input_dir` (recursively), with `is_image` by extension.

    The bytes are not selected, so Spark lists the files without reading them.
    """
    files = _binary_files(spark, input_dir).drop("content")
    return files.withColumn("is_image", F.col("path").rlike(extension_pattern(ingest.extensions)))


def read_images(spark: SparkSession, input_dir: str, ingest: IngestConfig) -> DataFrame:
    """Image files under `input_dir` with their bytes: path, file_name, file_size, modified_at,
    content. Files whose names are not images are left out (`list_files` counts them)."""
    files = _binary_files(spark, input_dir)
    return files.where(F.col("path").rlike(extension_pattern(ingest.extensions)))


def require_columns(df: DataFrame, columns: tuple[str, ...] | list[str], stage: str) -> None:
    """Check the schema at a stage's door; name every missing column."""
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ValueError(f"{stage}: input is missing column(s) {missing}; it has {df.columns}")
