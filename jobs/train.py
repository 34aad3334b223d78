"""spark-submit jobs/train.py --input DIR --output OUT: prepare, train, evaluate, package."""

from __future__ import annotations

import sys
from pathlib import Path

# jobs/profile.py shares its name with the standard library's `profile`, which pyspark imports:
# keep this folder off the import path so that every job finds the standard module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import logging

from sparkface.cli import add_common_arguments, run_in_session
from sparkface.config import ConfigError, load_ingest, load_labels, load_train
from sparkface.experiment import run_training
from sparkface.ingest import InputError
from sparkface.logs import configure_logging

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__)
    parser.add_argument("--input", required=True, help="folder of labelled faces")
    parser.add_argument("--output", required=True, help="folder for shards, model and metrics")
    parser.add_argument("--config", default=None, help="default: conf/train.yaml")
    parser.add_argument(
        "--reuse-shards",
        action="store_true",
        help="use the shards an earlier run left in OUT if its data settings match",
    )
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        config = load_train(args.config)
        labels = load_labels(args.labels_config)
        ingest = load_ingest(args.ingest_config)
    except ConfigError as error:
        log.error("bad configuration: %s", error)
        return 2
    code, _ = run_in_session(
        "sparkface-train",
        ingest,
        lambda spark: run_training(
            spark, args.input, args.output, config, labels, ingest, reuse_shards=args.reuse_shards
        ),
        {InputError: (2, "{error}")},
        log_level=args.spark_log_level,
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
