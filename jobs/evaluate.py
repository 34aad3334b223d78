"""spark-submit jobs/evaluate.py --model MODEL --input LABELLED_DIR --output OUT: metrics.json,
confusion matrices and report.md for a model on a folder of labelled faces."""

from __future__ import annotations

import sys
from pathlib import Path

# jobs/profile.py shares its name with the standard library's `profile`, which pyspark imports:
# keep this folder off the import path so that every job finds the standard module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import logging

from sparkface.cli import add_common_arguments, arrow_batch, run_in_session
from sparkface.config import ConfigError, load_ingest, load_labels
from sparkface.evaluation import evaluate_folder
from sparkface.inference import default_model_dir
from sparkface.ingest import InputError
from sparkface.logs import configure_logging
from sparkface.scoring import load_bundle

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()), help="model folder")
    parser.add_argument("--input", required=True, help="folder of faces with UTKFace-style names")
    parser.add_argument("--output", required=True, help="folder for metrics.json and charts")
    parser.add_argument("--batch-size", type=int, default=128)
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        labels = load_labels(args.labels_config)
        ingest = load_ingest(args.ingest_config)
        bundle = load_bundle(args.model)
    except (ConfigError, FileNotFoundError) as error:
        log.error("%s", error)
        return 2
    code, metrics = run_in_session(
        "sparkface-evaluate",
        ingest,
        lambda spark: evaluate_folder(
            spark, args.input, args.output, bundle, ingest, labels, args.batch_size
        ),
        {InputError: (2, "{error}"), ValueError: (2, "{error}")},
        log_level=args.spark_log_level,
        extra=arrow_batch(args.batch_size),
    )
    if code:
        return code
    log.info(
        "evaluated %d faces: gender %.1f%%, race %.1f%%, age group %.1f%% (within one "
        "%.1f%%), age MAE %.2f years; written to %s",
        metrics["faces"],
        100 * metrics["gender_accuracy"],
        100 * metrics["race_accuracy"],
        100 * metrics["age_group_accuracy"],
        100 * metrics["age_group_within_one"],
        metrics["age_mae_years"],
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
