"""spark-submit jobs/evaluate.py --model MODEL --input LABELLED_DIR --output OUT: metrics.json,
confusion matrices and report.md for a model on a folder of labelled faces."""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.core.config import load_ingest, load_labels
from sparkface.core.package import default_model_dir, load_bundle
from sparkface.evaluate.metrics import describe
from sparkface.evaluate.tally import evaluate_folder
from sparkface.spark.runner import add_common_arguments, arrow_batch, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()), help="model folder")
    parser.add_argument("--input", required=True, help="folder of faces with UTKFace-style names")
    parser.add_argument("--output", required=True, help="folder for metrics.json and charts")
    parser.add_argument("--batch-size", type=int, default=128)
    add_common_arguments(parser)
    return parser.parse_args(argv)


def evaluate_model(args: argparse.Namespace) -> None:
    labels = load_labels(args.labels_config)
    ingest = load_ingest(args.ingest_config)
    bundle = load_bundle(args.model)
    metrics = in_session(
        "sparkface-evaluate",
        ingest,
        lambda spark: evaluate_folder(
            spark, args.input, args.output, bundle, ingest, labels, args.batch_size
        ),
        log_level=args.spark_log_level,
        extra=arrow_batch(args.batch_size),
    )
    log.info("evaluated %s; written to %s", describe(metrics), args.output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("evaluate", lambda: evaluate_model(args))


if __name__ == "__main__":
    sys.exit(main())
