"""Everything a training run does after preparation, without Spark: the shards' fingerprint,
training, the test-split evaluation and the model package. `sparkface.train.run` calls it after
its Spark preparation; `jobs/fit.py` calls it on shards prepared earlier, on a machine without
Spark (a GPU node with only JAX or PyTorch, say)."""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from sparkface.core.config import LabelConfig, TrainConfig
from sparkface.core.contract import GENDERS, RACES
from sparkface.core.package import new_version, save_package
from sparkface.evaluate.metrics import describe, headline
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.split import evaluate_split
from sparkface.spark.logs import timed
from sparkface.train.fit import train

log = logging.getLogger("sparkface")

# Recorded in every descriptor, word for word: ensembles check that their members agree on it.
PREPROCESSING = (
    "sparkface.images.decode_face: Pillow decode (JPEG draft to >= size), EXIF orientation, "
    "any mode to 8-bit RGB (alpha on white), centre crop to a square, bilinear resize; uint8 in, "
    "the model rescales to [0, 1] itself"
)

# The columns the fingerprint hashes, in order, and the seed Spark's xxhash64 starts from.
FINGERPRINT_COLUMNS = ("file_name", "age", "gender", "race", "split")
XXHASH_SEED = 42


def shards_fingerprint(shards_dir: str | Path) -> str:
    """Rows and an order-free hash of (file name, labels, split) of the prepared shards: the same
    figure as Spark's sum of `xxhash64(file_name, age, gender, race, split)`
    (`sparkface.train.run.data_fingerprint`), computed with pyarrow and xxhash alone. Each column
    hashes with the previous column's hash as its seed (integers as 4 little-endian bytes, strings
    as UTF-8, nulls skipped), and the signed 64-bit hashes are summed."""
    import xxhash

    table = pq.read_table(shards_dir, columns=list(FINGERPRINT_COLUMNS))
    columns = [table.column(name).to_pylist() for name in FINGERPRINT_COLUMNS]
    total = 0
    for row in zip(*columns, strict=True):
        value = XXHASH_SEED
        for cell in row:
            if cell is None:
                continue
            data = struct.pack("<i", cell) if isinstance(cell, int) else str(cell).encode()
            value = xxhash.xxh64_intdigest(data, seed=value)
        total += value - (1 << 64) if value >= 1 << 63 else value
    return f"rows={table.num_rows};xxhash64-sum={total}"


def fit_and_package(
    out: Path,
    config: TrainConfig,
    labels: LabelConfig,
    input_dir: str,
    counts: dict[str, Any],
    fingerprint: str,
    timings: dict[str, float],
    model_name: str = "sparkface-cnn",
) -> dict[str, Any]:
    """Train on OUT/shards, evaluate on their test split and package the model in OUT/model;
    write and return the run's summary (`counts`: the preparation's)."""
    write_config(out, config, labels)
    with timed("training", timings):
        model, run = train(out / "shards", config, labels.groups, out / "training")
    with timed("test evaluation", timings):
        metrics = evaluate_split(
            model, out / "shards", "test", config.image_size, config.training.flip_test_time,
            labels.groups.names,
        )  # fmt: skip
    descriptor = describe_package(model_name, config, labels.groups.names, metrics, run)
    descriptor["training_data"] = {"input": input_dir, "fingerprint": fingerprint, **counts["rows"]}
    # The package first: a report that cannot be drawn (a GPU machine without matplotlib, say)
    # must not cost the trained network.
    save_package(model, descriptor, out / "model")
    title = f"Test split of {input_dir} ({metrics['faces']} faces)"
    write_evaluation(metrics, labels.groups.names, out / "evaluation", title)
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
    settings = {**config.to_dict(), "labels": labels.model_dump()}
    (out / "config.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(settings)), sort_keys=False)
    )


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
        "training_faces": config.faces.model_dump(),
    }


def reusable_preparation(out: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The counts of an earlier preparation in `out` if it matches `config`'s data settings."""
    previous = out / "preparation.json"
    if not previous.is_file() or not (out / "config.yaml").is_file():
        return None
    old = yaml.safe_load((out / "config.yaml").read_text())
    same = (
        all(
            old.get(key) == json.loads(json.dumps(config.to_dict()[key]))
            for key in ("image_size", "min_age", "sample_fractions", "split", "shards", "faces")
        )
        and (old.get("sources") or {}) == config.sources
    )
    return json.loads(previous.read_text()) if same else None
