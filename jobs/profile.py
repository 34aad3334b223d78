"""spark-submit jobs/profile.py --input DIR --output OUT: the balance of a folder of faces."""

from __future__ import annotations

import sys
from pathlib import Path

# jobs/profile.py shares its name with the standard library's `profile`, which pyspark imports:
# keep this folder off the import path so that every job finds the standard module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import logging
import time

from sparkface.cli import add_common_arguments, run_in_session
from sparkface.config import ConfigError, load_ingest, load_labels
from sparkface.ingest import InputError
from sparkface.logs import configure_logging
from sparkface.profiling import run_profile

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="profile", description=__doc__)
    parser.add_argument("--input", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--output", required=True, help="folder for summary.json, tables, charts")
    parser.add_argument("--decode-check", action="store_true", help="decode every image too")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        labels = load_labels(args.labels_config)
        ingest = load_ingest(args.ingest_config)
    except ConfigError as error:
        log.error("bad configuration: %s", error)
        return 2
    start = time.perf_counter()
    code, result = run_in_session(
        "sparkface-profile",
        ingest,
        lambda spark: run_profile(
            spark, args.input, args.output, labels, ingest, args.decode_check
        ),
        {
            InputError: (2, "{error}"),
            OSError: (3, f"cannot write the output to {args.output}: {{error}}"),
        },
        log_level=args.spark_log_level,
    )
    if code:
        return code
    _, timings = result
    log.info(
        "done in %.1f s (%s)",
        time.perf_counter() - start,
        ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
