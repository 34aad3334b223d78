"""Choosing between models: Markdown tables of the headline metrics of training runs (from their
summaries) or of model packages on a split of their shards, with the average of their predictions.

Choose on the validation split; the test split is for reporting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sparkface.core.errors import InputError
from sparkface.core.package import flip_for, load_package_model, read_descriptor
from sparkface.evaluate.metrics import compute_metrics
from sparkface.evaluate.split import predict_stream
from sparkface.train.shards import ParquetFaces, shard_files

# (header, metrics key, format) of each figure of a table row.
COLUMNS = (
    ("gender", "gender_accuracy", "{:.1%}"),
    ("race", "race_accuracy", "{:.1%}"),
    ("age group", "age_group_accuracy", "{:.1%}"),
    ("within one group", "age_group_within_one", "{:.1%}"),
    ("age MAE (years)", "age_mae_years", "{:.2f}"),
)


def _row(name: str, metrics: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    cells = [pattern.format(metrics[key]) for _, key, pattern in COLUMNS]
    return "| " + " | ".join([name, str(metrics["faces"]), *cells, *extra]) + " |"


def _header(first: str, extra: tuple[str, ...] = ()) -> list[str]:
    names = [first, *(c[0] for c in COLUMNS), *extra]
    return ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]


def runs_table(runs: dict[str, str | Path]) -> str:
    """Test-split metrics, epochs and seconds an epoch of training runs (each the OUT folder of
    `jobs/train.py`), by name."""
    lines = _header("test faces", ("epochs", "s/epoch"))
    for name, folder in runs.items():
        path = Path(folder) / "summary.json"
        if not path.is_file():
            raise InputError(f"{name}: no training summary {path}")
        summary = json.loads(path.read_text())
        training = summary["training"]
        extra = (str(training["epochs_run"]), f"{training['seconds_per_epoch']:.0f}")
        lines.append(_row(name, summary["metrics"], extra))
    return "\n".join(lines)


def split_metrics(
    models: list[tuple[str, str]], split: str, age_groups: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Metrics of model packages on one split of their shards (model folder, shards folder), by
    name, each scored in its own runtime and with mirror averaging as its descriptor says, and,
    for two or more, of their averaged predictions. Every shards folder must hold the same faces
    in the same order (the same data settings but the image size), which is checked."""
    named: dict[str, dict[str, Any]] = {}
    all_predictions, truth = [], None
    for model_dir, shards in models:
        descriptor = read_descriptor(model_dir)
        size = descriptor["input_size"][0]
        stream = ParquetFaces(shard_files(shards, split), size, 256)
        model = load_package_model(model_dir)
        flip = flip_for(descriptor)
        predictions, labels = predict_stream(model, stream, flip)
        if truth is not None and any(not np.array_equal(truth[k], labels[k]) for k in truth):
            raise InputError(f"{shards}: not the same faces in the same order as the first shards")
        truth = labels
        all_predictions.append(predictions)
        name = f"{model_dir} ({size}px)"
        while name in named:  # the same package twice: a row each
            name += "'"
        named[name] = compute_metrics(predictions, labels, age_groups)
    if len(all_predictions) > 1:
        average = {
            key: np.mean([p[key] for p in all_predictions], axis=0) for key in all_predictions[0]
        }
        named["average of the models"] = compute_metrics(average, truth, age_groups)
    return named


def split_table(named: dict[str, dict[str, Any]]) -> str:
    """The headline metrics of `split_metrics`'s models as a Markdown table."""
    lines = _header("faces")
    lines.extend(_row(name, metrics) for name, metrics in named.items())
    return "\n".join(lines)
