"""spark-submit jobs/profile_faces.py --input DIR | --source NAME --output OUT: the balance of a
folder of labelled faces (labels in the file names, or a source's labels table)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from sparkface.core.config import load_ingest, load_labels, load_source
from sparkface.profile.run import run_profile
from sparkface.spark.paths import local_folder
from sparkface.spark.runner import add_common_arguments, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="profile_faces", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--input", help="folder of images labelled by their names (recursive)")
    where.add_argument("--source", help="a labelled source of conf/sources/ (its table's labels)")
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for summary.json, tables, charts"
    )
    parser.add_argument("--decode-check", action="store_true", help="decode every image too")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def profile_folder(args: argparse.Namespace) -> None:
    labels = load_labels(args.labels_config)
    ingest = load_ingest(args.ingest_config)
    source = load_source(args.source) if args.source else None
    folder = source.images if source else args.input
    start = time.perf_counter()
    _, timings = in_session(
        "sparkface-profile",
        ingest,
        lambda spark: run_profile(
            spark, folder, args.output, labels, ingest, args.decode_check, source
        ),
        log_level=args.spark_log_level,
    )
    log.info(
        "done in %.1f s (%s)",
        time.perf_counter() - start,
        ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("profile", lambda: profile_folder(args))


if __name__ == "__main__":
    sys.exit(main())
