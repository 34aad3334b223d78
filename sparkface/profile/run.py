"""The profile job's work: list, parse, count, optionally decode, write."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from sparkface.core.config import IngestConfig, LabelConfig, SourceConfig, folder_source
from sparkface.core.errors import OutputError
from sparkface.core.images import ImageSpec, decode_each
from sparkface.core.labels import labelled_files, rows_without_image
from sparkface.profile.report import write_profile
from sparkface.profile.stats import UNLABELLED_IN_JSON, Profile, profile
from sparkface.spark.ingest import list_input, read_images
from sparkface.spark.logs import timed
from sparkface.spark.paths import writable_folder

log = logging.getLogger("sparkface")

DECODE_ERROR_SCHEMA = "path string, file_name string, error string"


def decode_errors(images: DataFrame, spec: ImageSpec) -> DataFrame:
    """One row per image that fails to decode, with the reason."""

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            errors = [error for _, error in decode_each(batch["content"], spec)]
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
    source: SourceConfig | None = None,
) -> tuple[Profile, dict[str, float]]:
    """Profile `input_dir` into `output_dir`; returns the profile and each step's seconds. Its
    labels come from the file names, or from `source`'s labels table (`source.images` is then
    `input_dir`)."""
    writable_folder(spark, output_dir)
    timings: dict[str, float] = {}
    with timed("listing", timings):
        files, walk = list_input(spark, input_dir, ingest)
        files = files.cache()
        found = files.count()
        hidden = walk.hidden
    log.info("found %d files under %s", found, input_dir)
    with timed("parsing and counting", timings):
        source = source or folder_source(input_dir)
        result = profile(labelled_files(spark, files, source, labels.max_age), labels.groups)
        result.hidden = hidden
        if not source.from_names:
            images = files.where("is_image")
            missing = rows_without_image(spark, images, source).orderBy("file").cache()
            result.without_image = missing.count()
            examples = missing.limit(UNLABELLED_IN_JSON).collect()
            result.without_image_examples = [row.file for row in examples]
            missing.unpersist()
    log.info(
        "%d image files: %d labelled, %d unlabelled; %d other files ignored",
        result.files,
        result.labelled,
        result.unlabelled,
        result.ignored_files,
    )
    if result.without_image:
        log.warning(
            "the labels table %s names %d files that are no image under %s (%s%s): their "
            "labels teach nothing",
            source.labels,
            result.without_image,
            input_dir,
            ", ".join(result.without_image_examples[:3]),
            ", ..." if result.without_image > 3 else "",
        )
    if hidden:
        log.warning(
            "%d hidden files or folders under %s are left out: names starting with '.'",
            hidden,
            input_dir,
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
        try:
            write_profile(result, Path(output_dir), input_dir)
        except OSError as error:
            raise OutputError(f"cannot write the output to {output_dir}: {error}") from error
    files.unpersist()
    log.info("profile written to %s", output_dir)
    return result, timings
