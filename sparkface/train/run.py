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

from sparkface.core.config import IngestConfig, LabelConfig, TrainConfig
from sparkface.core.contract import GENDERS, RACES
from sparkface.core.labels import parse_labels
from sparkface.core.package import new_version, save_package
from sparkface.evaluate.metrics import describe, headline
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.split import evaluate_split
from sparkface.spark.ingest import read_images
from sparkface.spark.logs import timed
from sparkface.train.fit import train
from sparkface.train.preparation import prepare

log = logging.getLogger("sparkface")

# Recorded in every descriptor, word for word: ensembles check that their members agree on it.
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
    counts = _reusable_preparation(out, config) if reuse_shards else None
    if counts is None:
        with timed("preparation (Spark)", timings):
            images = parse_labels(read_images(spark, input_dir, ingest), labels.max_age)
            counts = prepare(images, config, labels.groups, str(out))
    else:
        log.info("reusing the shards in %s", out / "shards")
    log.info("prepared: %s", {k: v for k, v in counts.items() if k != "unreadable_files"})
    fingerprint = data_fingerprint(spark, out / "shards")
    write_config(out, config, labels)
    with timed("training", timings):
        model, run = train(out / "shards", config, labels.groups, out / "training")
    with timed("test evaluation", timings):
        metrics = evaluate_test_split(model, out, config, labels.groups.names, input_dir)
    descriptor = describe_package(model_name, config, labels.groups.names, metrics, run)
    descriptor["training_data"] = {"input": input_dir, "fingerprint": fingerprint, **counts["rows"]}
    save_package(model, descriptor, out / "model")
    summary = {
        "counts": counts,
        "timings": timings,
        "metrics": descriptor["metrics"],
        "training": descriptor["training"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("model saved to %s; test split: %s", out / "model", describe(metrics))
    return summary


def write_config(out: Path, config: TrainConfig, labels: LabelConfig) -> None:
    """The run's whole configuration, as plain YAML, beside its outputs."""
    settings = {**config.to_dict(), "labels": dataclasses.asdict(labels)}
    (out / "config.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(settings)), sort_keys=False)
    )


def evaluate_test_split(
    model, out: Path, config: TrainConfig, age_groups: tuple[str, ...], input_dir: str
) -> dict[str, Any]:
    """The model's metrics on the shards' test split, written to OUT/evaluation."""
    metrics = evaluate_split(
        model, out / "shards", "test", config.image_size, config.training.flip_test_time, age_groups
    )
    title = f"Test split of {input_dir} ({metrics['faces']} faces)"
    write_evaluation(metrics, age_groups, out / "evaluation", title)
    return metrics


def describe_package(
    name: str,
    config: TrainConfig,
    age_groups: tuple[str, ...],
    metrics: dict[str, Any],
    run: dict[str, Any],
) -> dict[str, Any]:
    """The model descriptor: what the model takes and predicts, how it was made and how it did."""
    return {
        "name": name,
        "version": new_version(),
        "input_size": [config.image_size, config.image_size, 3],
        "input_dtype": "uint8",
        "preprocessing": PREPROCESSING,
        "flip_test_time": config.training.flip_test_time,
        "classes": {"age_group": list(age_groups), "gender": list(GENDERS), "race": list(RACES)},
        "metrics": headline(metrics),
        "training": {k: v for k, v in run.items() if k != "history"},
        "config": config.to_dict(),
        # How its training faces were made (sparkface.train.faces): aligned crops or detected.
        "training_faces": dataclasses.asdict(config.faces),
    }


def _reusable_preparation(out: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The counts of an earlier preparation in `out` if it matches `config`'s data settings."""
    previous = out / "preparation.json"
    if not previous.is_file() or not (out / "config.yaml").is_file():
        return None
    old = yaml.safe_load((out / "config.yaml").read_text())
    same = all(
        old.get(key) == json.loads(json.dumps(config.to_dict()[key]))
        for key in ("image_size", "min_age", "sample_fractions", "split", "shards", "faces")
    )
    return json.loads(previous.read_text()) if same else None
