"""Training-step speed of a config's network at several input sizes, with and without XLA.

    python benchmarks/step_speed.py [--config conf/models/sparkface-cnn.yaml] [--sizes 48,64]

Random uint8 faces and labels in memory (no input pipeline), batches of the config's size; each
setting is warmed up (compiled) with one epoch, then timed over two. Prints images per second.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from sparkface.core.config import load_labels, load_train
from sparkface.train.model import compile_model, make_model


def images_per_second(config, size: int, xla: bool, batches: int) -> float:
    n_groups = len(load_labels().groups.names)
    model = make_model(config.model, size, n_groups)
    compile_model(model, 1e-3, 1e-4, {}, steps=1000, xla=xla)
    batch = config.training.batch_size
    rng = np.random.default_rng(0)
    n = batch * batches
    faces = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    targets = {
        "age_group": rng.integers(0, n_groups, n),
        "gender": rng.integers(0, 2, n),
        "race": rng.integers(0, 5, n),
        "age": rng.random((n, 1)).astype("float32"),
    }
    model.fit(faces, targets, batch_size=batch, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(faces, targets, batch_size=batch, epochs=2, verbose=0)
    return 2 * n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="conf/models/sparkface-cnn.yaml")
    parser.add_argument("--sizes", default="48,64")
    parser.add_argument("--batches", type=int, default=12, help="batches per timed epoch")
    args = parser.parse_args()
    config = load_train(args.config)
    for size in (int(s) for s in args.sizes.split(",")):
        for xla in (True, False):
            speed = images_per_second(config, size, xla, args.batches)
            print(f"{size}x{size} XLA {'on ' if xla else 'off'}: {speed:7.1f} images/s")


if __name__ == "__main__":
    main()
