"""spark-submit jobs/train.py --input DIR --output OUT: prepare, train, evaluate, package."""

from __future__ import annotations

import argparse
import sys

from sparkface.core.config import load_ingest, load_labels, load_train, require_packages
from sparkface.core.runtime import require_keras
from sparkface.spark.paths import local_folder
from sparkface.spark.runner import add_common_arguments, in_session, run_main
from sparkface.train.run import run_training


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__)
    parser.add_argument(
        "--input", help="folder of faces labelled by their names (or the recipe's `sources`)"
    )
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for shards, model and metrics"
    )
    parser.add_argument(
        "--config", default=None, help="a recipe (default: conf/models/sparkface-cnn.yaml)"
    )
    parser.add_argument(
        "--reuse-shards",
        action="store_true",
        help="use the shards an earlier run left in OUT if its data settings match",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="stop after preparing the shards (train later: jobs/fit.py or --reuse-shards)",
    )
    add_common_arguments(parser)
    return parser.parse_args(argv)


def train_model(args: argparse.Namespace) -> None:
    if not args.prepare_only:
        require_keras("training")  # before Spark prepares the shards, not after
    config = load_train(args.config)
    if not args.prepare_only:
        require_packages(config, args.config or "conf/models/sparkface-cnn.yaml")
    labels = load_labels(args.labels_config)
    ingest = load_ingest(args.ingest_config)
    in_session(
        "sparkface-train",
        ingest,
        lambda spark: run_training(
            spark,
            args.input,
            args.output,
            config,
            labels,
            ingest,
            reuse_shards=args.reuse_shards,
            prepare_only=args.prepare_only,
        ),
        log_level=args.spark_log_level,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("train", lambda: train_model(args))


if __name__ == "__main__":
    sys.exit(main())
