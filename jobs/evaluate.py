"""spark-submit jobs/evaluate.py --input DIR | --source NAME --output OUT [--split test]:
metrics.json, confusion matrices and report.md for a model on labelled faces, one source at a time
(labels in the file names, or a source's labels table)."""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.core.config import (
    FACE_MODES,
    load_ingest,
    load_labels,
    load_source,
    load_train,
)
from sparkface.core.package import default_model_dir, load_bundle
from sparkface.evaluate.metrics import describe
from sparkface.evaluate.tally import evaluate_folder
from sparkface.spark.paths import local_folder
from sparkface.spark.runner import add_common_arguments, arrow_batch, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()), help="model folder")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--input", help="folder of faces with UTKFace-style names")
    where.add_argument("--source", help="a labelled source of conf/sources/")
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for metrics.json and charts"
    )
    parser.add_argument(
        "--split",
        choices=("test", "validation", "train", "all"),
        default="all",
        help="only this split's faces, by the hash of the file name training uses (default: all)",
    )
    parser.add_argument(
        "--recipe", default=None, help="whose split fractions (default: conf/models/sparkface-cnn)"
    )
    parser.add_argument(
        "--faces",
        choices=FACE_MODES,
        default=None,
        help="aligned: each file one face crop; detect: find the face in each photo (default: "
        "the source's `faces`; aligned for --input)",
    )
    parser.add_argument(
        "--per-face",
        action="store_true",
        help="also write each file's labels and predictions (Parquet, OUTPUT/faces) to look into "
        "errors; it holds file paths",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    add_common_arguments(parser)
    return parser.parse_args(argv)


def evaluate_model(args: argparse.Namespace) -> None:
    labels = load_labels(args.labels_config)
    ingest = load_ingest(args.ingest_config)
    bundle = load_bundle(args.model)
    source = load_source(args.source) if args.source else None
    split = None if args.split == "all" else (args.split, load_train(args.recipe).split)
    faces = args.faces or (source.faces if source else "aligned")
    metrics = in_session(
        "sparkface-evaluate",
        ingest,
        lambda spark: evaluate_folder(
            spark,
            args.input,
            args.output,
            bundle,
            ingest,
            labels,
            args.batch_size,
            source=source,
            split=split,
            faces=faces,
            per_face=args.per_face,
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
