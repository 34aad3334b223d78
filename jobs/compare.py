"""spark-submit jobs/compare.py --before EVAL_A --after EVAL_B --output OUT: two models'
evaluations on the same labelled faces (`jobs/evaluate.py --per-face`, same source, split and
face mode), compared face by face: each head's difference of accuracy with its 95% interval and
McNemar's p-value, and the difference of the age's mean absolute error."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sparkface.core.config import load_ingest
from sparkface.core.errors import InputError
from sparkface.evaluate.compare import compare_faces, write_comparison
from sparkface.spark.paths import local_folder, written_path
from sparkface.spark.runner import add_common_arguments, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compare", description=__doc__)
    parser.add_argument("--before", required=True, help="an evaluation folder (holds faces/)")
    parser.add_argument("--after", required=True, help="the other evaluation folder")
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for comparison.json and .md"
    )
    add_common_arguments(parser, labels=False)
    return parser.parse_args(argv)


def per_face_table(evaluation: str) -> str:
    table = Path(evaluation) / "faces"
    if not table.is_dir():
        raise InputError(
            f"{evaluation} has no per-face table (faces/): evaluate with --per-face first"
        )
    return str(table)


def compare(args: argparse.Namespace) -> None:
    before, after = per_face_table(args.before), per_face_table(args.after)
    comparison = in_session(
        "sparkface-compare",
        load_ingest(args.ingest_config),
        lambda spark: compare_faces(
            spark.read.parquet(written_path(before)), spark.read.parquet(written_path(after))
        ),
        log_level=args.spark_log_level,
    )
    write_comparison(comparison, args.output, f"{args.after} against {args.before}")
    for head, row in comparison["heads"].items():
        low, high = row["interval"]
        log.info(
            "%s: %+.1f points (%+.1f to %+.1f), McNemar p %.3f",
            head,
            100 * row["difference"],
            100 * low,
            100 * high,
            row["p_value"],
        )
    log.info("written to %s", args.output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("compare", lambda: compare(args))


if __name__ == "__main__":
    sys.exit(main())
