"""A model's metrics on one split of its training shards, read on the driver."""

from __future__ import annotations

from typing import Any

import numpy as np

from sparkface.core.contract import AGE_SCALE
from sparkface.core.package import Flip, predict
from sparkface.evaluate.metrics import compute_metrics
from sparkface.train.shards import ParquetFaces, shard_files


def predict_stream(model, stream: ParquetFaces, flip: Flip) -> tuple[dict, dict]:
    """Predictions and labels for every row of a (non-repeating) stream."""
    predictions: dict[str, list] = {}
    labels: dict[str, list] = {}
    for faces, targets, *_ in stream:
        for name, value in predict(model, faces, flip).items():
            predictions.setdefault(name, []).append(value)
        for name, value in targets.items():
            labels.setdefault(name, []).append(np.asarray(value).reshape(len(faces), -1)[:, 0])
    merged_predictions = {k: np.concatenate(v) for k, v in predictions.items()}
    merged_labels = {k: np.concatenate(v) for k, v in labels.items()}
    merged_labels["age"] = np.rint(merged_labels["age"] * AGE_SCALE).astype(int)
    return merged_predictions, merged_labels


def evaluate_split(
    model, shards_dir, split: str, image_size: int, flip: Flip, age_groups: tuple[str, ...]
) -> dict[str, Any]:
    """Metrics of `model` on one split of training shards."""
    stream = ParquetFaces(shard_files(shards_dir, split), image_size, 256)
    predictions, truth = predict_stream(model, stream, flip)
    return compute_metrics(predictions, truth, age_groups)
