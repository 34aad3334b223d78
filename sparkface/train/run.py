"""A whole training run: Spark preparation, Keras training, test-split evaluation, the package."""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.core.config import (
    ConfigError,
    IngestConfig,
    LabelConfig,
    TrainConfig,
    folder_source,
    load_source,
)
from sparkface.core.labels import labelled_files
from sparkface.spark.ingest import read_images
from sparkface.spark.logs import timed
from sparkface.spark.paths import writable_folder, written_path
from sparkface.train.packaging import fit_and_package, reusable_preparation, write_config
from sparkface.train.preparation import prepare
from sparkface.train.resume import RESUME_FOLDER

log = logging.getLogger("sparkface")


def data_fingerprint(spark: SparkSession, shards_dir: Path) -> str:
    """Rows and an order-free hash of (file name, labels) of the prepared data, computed by Spark
    (`sparkface.train.packaging.shards_fingerprint` gives the same figure without it)."""
    row = (
        spark.read.parquet(written_path(shards_dir))
        .agg(
            F.count("*").alias("rows"),
            F.sum(
                F.xxhash64("file_name", "age", "gender", "race", "split").cast("decimal(38,0)")
            ).alias("hash"),
        )
        .first()
    )
    return f"rows={row['rows']};xxhash64-sum={row['hash']}"


def training_images(
    spark: SparkSession,
    input_dir: str | None,
    config: TrainConfig,
    labels: LabelConfig,
    ingest: IngestConfig,
) -> DataFrame:
    """Every labelled image of the recipe's sources (conf/sources/), or of `input_dir` labelled
    by its file names when the recipe names none."""
    if config.sources:
        sources = [load_source(name) for name in config.sources]
    elif input_dir:
        sources = [folder_source(input_dir)]
    else:
        raise ConfigError("training: give --input, or name sources in the recipe")
    parts = [
        labelled_files(spark, read_images(spark, source.images, ingest), source, labels.max_age)
        for source in sources
    ]
    return functools.reduce(DataFrame.unionByName, parts)


def run_training(
    spark: SparkSession,
    input_dir: str | None,
    output_dir: str,
    config: TrainConfig,
    labels: LabelConfig,
    ingest: IngestConfig,
    model_name: str = "sparkface-cnn",
    reuse_shards: bool = False,
    prepare_only: bool = False,
) -> dict[str, Any]:
    """Prepare, train, evaluate on the test split and package the model in OUT/model.

    With `reuse_shards`, shards that an earlier run left in OUT are used when they were made with
    the same image size, split and sampling (to compare model settings on the same data). With
    `prepare_only`, stop after the shards, their counts and the config: `jobs/fit.py` (any Keras
    backend, no Spark) or `--reuse-shards` train on them later."""
    writable_folder(spark, output_dir, ("shards",), input_dir)
    out = Path(output_dir)
    timings: dict[str, float] = {}
    counts = reusable_preparation(out, config) if reuse_shards else None
    if counts is None:
        stale = out / "training" / RESUME_FOLDER
        if stale.is_dir():  # its shards are about to be replaced, so it can never go on
            log.warning("new shards in %s: the stopped run's state in %s is removed", out, stale)
            shutil.rmtree(stale)
        with timed("preparation (Spark)", timings):
            images = training_images(spark, input_dir, config, labels, ingest)
            counts = prepare(images, config, labels.groups, str(out))
    else:
        log.info("reusing the shards in %s", out / "shards")
    log.info("prepared: %s", {k: v for k, v in counts.items() if k != "unreadable_files"})
    fingerprint = data_fingerprint(spark, out / "shards")
    if prepare_only:
        write_config(out, config, labels)
        log.info("shards prepared in %s (%s); training left to jobs/fit.py", out, fingerprint)
        return {"counts": counts, "fingerprint": fingerprint, "timings": timings}
    described = input_dir or "sources " + ", ".join(config.sources)
    return fit_and_package(out, config, labels, described, counts, fingerprint, timings, model_name)
