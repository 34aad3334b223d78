"""Metrics of model packages on one split of their training shards, and of their average.

    python benchmarks/split_metrics.py --split validation MODEL=SHARDS [MODEL=SHARDS ...]

Each model is scored (with mirror averaging, as shipped) on the split of the shards made at its
own input size; with two or more models, the average of their predictions is scored too. Every
shard folder must hold the same faces in the same order (the same data settings but the image
size), which is checked. For choosing between models on the validation split without touching
the test split.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

# The same columns as the test-split table of compare_models.py (this folder is on sys.path when
# a script in it runs).
from compare_models import COLUMNS
from sparkface.evaluation import compute_metrics, predict_stream
from sparkface.inference import MODEL_FILE, load_model_file, read_descriptor

from sparkface.core.config import load_labels
from sparkface.train.shards import ParquetFaces, shard_files


def row(name: str, metrics: dict) -> str:
    cells = [pattern.format(metrics[key]) for _, key, pattern in COLUMNS]
    return f"| {name} | {metrics['faces']} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("models", nargs="+", metavar="MODEL=SHARDS")
    args = parser.parse_args()
    names = load_labels().groups.names
    print("| model | faces | " + " | ".join(f[0] for f in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    all_predictions, truth = [], None
    for argument in args.models:
        model_dir, _, shards = argument.partition("=")
        size = read_descriptor(model_dir)["input_size"][0]
        stream = ParquetFaces(shard_files(shards, args.split), size, 256)
        predictions, labels = predict_stream(
            load_model_file(f"{model_dir}/{MODEL_FILE}"), stream, True
        )
        if truth is not None and any(not np.array_equal(truth[k], labels[k]) for k in truth):
            raise SystemExit(f"{shards}: not the same faces in the same order as the first shards")
        truth = labels
        all_predictions.append(predictions)
        print(row(f"{model_dir} ({size}px)", compute_metrics(predictions, labels, names)))
    if len(all_predictions) > 1:
        average = {
            key: np.mean([p[key] for p in all_predictions], axis=0) for key in all_predictions[0]
        }
        print(row("average of the models", compute_metrics(average, truth, names)))


if __name__ == "__main__":
    main()
