"""Training speed: the real Parquet input pipeline against the same model fed from memory.

    python benchmarks/train_bench.py --shards OUT/shards [--config conf/train.yaml] [--steps 60]

Prints images per second for both, measured alternately in one run, and the pipeline's cost.
Shards come from `jobs/train.py` (OUT/shards). The pipeline is everything between the shards and
the training step: reading, shuffling, class weights and, when the config asks for it, the
augmentation; the in-memory reference gets batches that went through all of it beforehand.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from sparkface.core.config import load_labels, load_train  # noqa: E402
from sparkface.core.contract import GENDERS, RACES  # noqa: E402
from sparkface.train.model import compile_model, make_model  # noqa: E402
from sparkface.train.shards import ParquetFaces, class_weights, prefetch, shard_files  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--steps", type=int, default=60, help="steps per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = load_train(args.config)
    groups = load_labels().groups
    settings = config.training
    files = shard_files(args.shards, "train")
    sizes = {"age_group": len(groups.names), "gender": len(GENDERS), "race": len(RACES)}
    weights = class_weights(ParquetFaces(files, config.image_size, 64).labels(), sizes)
    stream = ParquetFaces(
        files,
        config.image_size,
        settings.batch_size,
        shuffle_buffer=settings.shuffle_buffer,
        repeat=True,
        seed=1,
        class_weights=weights,
        augment=config.model.augment,
    )
    iterator = prefetch(iter(stream))
    start = time.perf_counter()
    for _ in range(200):
        next(iterator)
    alone = 200 * settings.batch_size / (time.perf_counter() - start)
    # The in-memory reference: the same number of rows, already decoded into arrays.
    batches = []
    for _ in range(args.steps):
        batches.append(next(iterator))
    x = np.concatenate([b[0] for b in batches])
    y = {k: np.concatenate([b[1][k] for b in batches]) for k in batches[0][1]}
    w = {k: np.concatenate([b[2][k] for b in batches]) for k in batches[0][2]}

    model = make_model(config.model, config.image_size, len(groups.names))
    compile_model(
        model,
        settings.learning_rate,
        settings.weight_decay,
        settings.loss_weights,
        xla=settings.xla,
    )
    model.fit(
        x[:256],
        {k: v[:256] for k, v in y.items()},
        batch_size=settings.batch_size,
        epochs=1,
        verbose=0,
    )
    # Both ways compiled before timing: the stream's open batch dimension needs its own trace
    # (with XLA, a compilation of several seconds), which is a one-off, not a pipeline cost.
    model.fit(iterator, steps_per_epoch=2, epochs=1, verbose=0)
    images = args.steps * settings.batch_size
    results: dict[str, list[float]] = {"parquet stream": [], "arrays in memory": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        model.fit(iterator, steps_per_epoch=args.steps, epochs=1, verbose=0)
        results["parquet stream"].append(images / (time.perf_counter() - start))
        start = time.perf_counter()
        model.fit(
            x, y, sample_weight=w, batch_size=settings.batch_size, epochs=1, verbose=0, shuffle=True
        )
        results["arrays in memory"].append(images / (time.perf_counter() - start))
    print(
        f"model: {model.count_params():,} parameters, image size {config.image_size}, "
        f"batch {settings.batch_size}, {args.steps} steps x {args.rounds} rounds, "
        f"augmentation {'on' if config.model.augment else 'off'}, XLA {settings.xla}"
    )
    for name, values in results.items():
        print(f"{name:>18}: {np.median(values):7.1f} images/s (median; {np.round(values, 1)})")
    print(f"{'stream alone':>18}: {alone:7.1f} images/s (no model: what the pipeline can feed)")
    rounds = np.array(results["parquet stream"]) / np.array(results["arrays in memory"])
    print(f"round by round, stream / in-memory: {np.round(rounds, 3)}")
    ratio = np.median(results["parquet stream"]) / np.median(results["arrays in memory"])
    print(f"pipeline / in-memory: {ratio:.3f} (cost {100 * (1 - ratio):+.1f}%)")


if __name__ == "__main__":
    main()
