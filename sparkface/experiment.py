"""A whole training run: Spark preparation, Keras training, test-split evaluation, the package."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkface.config import IngestConfig, LabelConfig, TrainConfig
from sparkface.evaluation import evaluate_split, headline, write_evaluation
from sparkface.inference import new_version, save_package
from sparkface.ingest import read_images
from sparkface.labels import GENDERS, RACES, parse_labels
from sparkface.logs import timed
from sparkface.preparation import prepare
from sparkface.training import train

log = logging.getLogger("sparkface")

PREPROCESSING = (
    "sparkface.images.decode_face: Pillow decode (JPEG draft to >= size), EXIF orientation, "
    "any mode to 8-bit RGB (alpha on white), centre crop to a square, bilinear resize; uint8 in, "
    "the model rescales to [0, 1] itself"
)


def data_fingerprint(spark: SparkSession, shards_dir: Path) -> str:
    """Rows and an order-free hash of (file name, labels) of the prepared data."""
    row = (
        spark.read.parquet(str(shards_dir))
        .agg(
            F.count("*").alias("rows"),
            F.sum(
                F.xxhash64("file_name", "age", "gender", "race", "split").cast("decimal(38,0)")
            ).alias("hash"),
        )
        .first()
    )
    return f"rows={row['rows']};xxhash64-sum={row['hash']}"


def run_training(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    config: TrainConfig,
    labels: LabelConfig,
    ingest: IngestConfig,
    model_name: str = "sparkface-cnn",
    reuse_shards: bool = False,
) -> dict[str, Any]:
    """Prepare, train, evaluate on the test split and package the model in OUT/model.

    With `reuse_shards`, shards that an earlier run left in OUT are used when they were made with
    the same image size, split and sampling (to compare model settings on the same data)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    groups = labels.groups
    counts = _reusable_preparation(out, config) if reuse_shards else None
    if counts is None:
        with timed("preparation (Spark)", timings):
            images = parse_labels(read_images(spark, input_dir, ingest), labels.max_age)
            counts = prepare(images, config, groups, str(out))
    else:
        log.info("reusing the shards in %s", out / "shards")
    log.info("prepared: %s", {k: v for k, v in counts.items() if k != "unreadable_files"})
    shards = out / "shards"
    fingerprint = data_fingerprint(spark, shards)
    (out / "config.yaml").write_text(
        yaml.safe_dump(
            json.loads(json.dumps({**config.to_dict(), "labels": dataclasses.asdict(labels)})),
            sort_keys=False,
        )
    )
    with timed("training", timings):
        model, run = train(shards, config, groups, out / "training")
    with timed("test evaluation", timings):
        metrics = evaluate_split(
            model, shards, "test", config.image_size, config.training.flip_test_time, groups.names
        )
        write_evaluation(
            metrics,
            groups.names,
            out / "evaluation",
            f"Test split of {input_dir} ({metrics['faces']} faces)",
        )
    descriptor = {
        "name": model_name,
        "version": new_version(),
        "input_size": [config.image_size, config.image_size, 3],
        "input_dtype": "uint8",
        "preprocessing": PREPROCESSING,
        "flip_test_time": config.training.flip_test_time,
        "classes": {"age_group": list(groups.names), "gender": list(GENDERS), "race": list(RACES)},
        "age_bins": list(groups.names),
        "training_data": {"input": input_dir, "fingerprint": fingerprint, **counts["rows"]},
        "metrics": headline(metrics),
        "training": {k: v for k, v in run.items() if k != "history"},
        "config": config.to_dict(),
    }
    save_package(model, descriptor, out / "model")
    summary = {
        "counts": counts,
        "timings": timings,
        "metrics": descriptor["metrics"],
        "training": descriptor["training"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info(
        "model saved to %s; test metrics: %s",
        out / "model",
        {k: v for k, v in metrics.items() if isinstance(v, float)},
    )
    return summary


def _reusable_preparation(out: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The counts of an earlier preparation in `out` if it matches `config`'s data settings."""
    previous = out / "preparation.json"
    if not previous.is_file() or not (out / "config.yaml").is_file():
        return None
    old = yaml.safe_load((out / "config.yaml").read_text())
    same = all(
        old.get(key) == json.loads(json.dumps(config.to_dict()[key]))
        for key in ("image_size", "min_age", "sample_fractions", "split", "shards")
    )
    return json.loads(previous.read_text()) if same else None
