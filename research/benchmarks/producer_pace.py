"""How fast the training producer makes batches (reading, augmenting, weighing the faces) for a
recipe on its shards: what sets an epoch's pace on a GPU machine, where the network is small.

    PYTHONPATH=. .venv/bin/python research/benchmarks/producer_pace.py \
        --config research/conf/models/world-64-scratch.yaml --shards out/train-world-64c/shards

Per number of --workers (`training.augment_workers`): milliseconds a batch, faces a second, and
an epoch's seconds at that pace, timing --batches batches after 10 left to warm up.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from sparkface.core.config import load_labels, load_train
from sparkface.train.fit import streams


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--shards", required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    config = load_train(args.config)
    groups = len(load_labels().groups.names)
    for workers in args.workers:
        training = config.training.model_copy(update={"augment_workers": workers})
        train, _ = streams(args.shards, config.model_copy(update={"training": training}), groups)
        batches = iter(train)
        for _ in itertools.islice(batches, 10):
            pass
        start = time.perf_counter()
        for _ in itertools.islice(batches, args.batches):
            pass
        each = (time.perf_counter() - start) / args.batches
        print(
            f"workers {workers}: {1000 * each:.1f} ms a batch of {training.batch_size}, "
            f"{training.batch_size / each:,.0f} faces a second; an epoch of {len(train)} steps "
            f"{len(train) * each:.0f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
