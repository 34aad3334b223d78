"""The profile job's work: list, parse, count, optionally decode, write."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from sparkface.config import IngestConfig, LabelConfig
from sparkface.images import ImageError, ImageSpec, decode_face
from sparkface.ingest import list_files, read_images
from sparkface.labels import parse_labels
from sparkface.logs import timed
from sparkface.report import write_profile
from sparkface.stats import UNLABELLED_IN_JSON, Profile, profile

log = logging.getLogger("sparkface")

DECODE_ERROR_SCHEMA = "path string, file_name string, error string"


def decode_errors(images: DataFrame, spec: ImageSpec) -> DataFrame:
    """One row per image that fails to decode, with the reason."""

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            errors = []
            for content in batch["content"]:
                try:
                    decode_face(content, spec)
                    errors.append(None)
                except ImageError as error:
                    errors.append(str(error))
            result = batch[["path", "file_name"]].assign(error=errors)
            yield result[result["error"].notna()]

    return images.select("path", "file_name", "content").mapInPandas(check, DECODE_ERROR_SCHEMA)


def run_profile(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    labels: LabelConfig,
    ingest: IngestConfig,
    decode_check: bool = False,
) -> tuple[Profile, dict[str, float]]:
    """Profile `input_dir` into `output_dir`; returns the profile and each step's seconds."""
    timings: dict[str, float] = {}
    with timed("listing", timings):
        files = list_files(spark, input_dir, ingest).cache()
        found = files.count()
    log.info("found %d files under %s", found, input_dir)
    with timed("parsing and counting", timings):
        result = profile(parse_labels(files, labels.max_age), labels.groups)
    log.info(
        "%d image files: %d labelled, %d unlabelled; %d other files ignored",
        result.files,
        result.labelled,
        result.unlabelled,
        result.ignored_files,
    )
    if result.files == 0:
        log.warning("no image files under %s (extensions %s)", input_dir, list(ingest.extensions))
    if decode_check:
        with timed("decoding", timings):
            errors = decode_errors(read_images(spark, input_dir, ingest), ImageSpec())
            errors = errors.orderBy("file_name").cache()
            result.unreadable = errors.count()
            result.unreadable_examples = errors.limit(UNLABELLED_IN_JSON).toPandas()
        log.info("%d files could not be decoded", result.unreadable)
    with timed("writing", timings):
        write_profile(result, Path(output_dir), input_dir)
    files.unpersist()
    log.info("profile written to %s", output_dir)
    return result, timings
