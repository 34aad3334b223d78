"""Who stood in front of each source, and when: audience tables and an HTML report from any
scored output.

spark-submit jobs/audience.py --predictions SCORED --output OUT [--model MODEL] [--config FILE]
    [--source-pattern REGEX | --source-segment N] [--window-minutes N] [--min-faces N]

SCORED is a scoring run's output (OUT of jobs/score.py --input, or its OUT/parquet), or a
campaign's output (its predictions/ folder, or one night's partition of it). Writes
OUT/audience, OUT/audience_shares (Parquet) and OUT/report/audience.html. A campaign night makes
the same by itself.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.audience.calibration import load_calibration, load_likeness
from sparkface.audience.run import read_predictions, write_audience
from sparkface.core.config import load_audience, load_ingest
from sparkface.core.package import default_model_dir, load_bundle
from sparkface.spark.runner import add_common_arguments, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="audience", description=__doc__)
    parser.add_argument("--predictions", required=True, help="scored rows (Parquet folder)")
    parser.add_argument("--output", required=True, help="folder for the tables and the report")
    parser.add_argument(
        "--model",
        default=str(default_model_dir()),
        help="the package that scored them: its classes and audience calibration (default: "
        "the shipped model)",
    )
    parser.add_argument("--config", default=None, help="default: conf/audience.yaml")
    parser.add_argument("--source-pattern", help="regex with a group (?P<source>...)")
    parser.add_argument("--source-segment", type=int, help="path segment (-2: the folder)")
    parser.add_argument("--window-minutes", type=int)
    parser.add_argument("--timezone", help="the clock windows are cut by, e.g. Europe/Paris")
    parser.add_argument("--min-faces", type=int)
    add_common_arguments(parser, labels=False)
    return parser.parse_args(argv)


def audience(args: argparse.Namespace) -> None:
    changes = {
        key: value
        for key, value in {
            "source_pattern": args.source_pattern,
            "source_segment": args.source_segment,
            "window_minutes": args.window_minutes,
            "timezone": args.timezone,
            "min_faces": args.min_faces,
        }.items()
        if value is not None
    }
    config = load_audience(args.config, changes)
    bundle = load_bundle(args.model)
    calibration = load_calibration(args.model)
    if calibration is None:
        log.warning("%s has no audience calibration: shares are uncorrected averages", args.model)

    def work(spark):
        predictions = read_predictions(spark, args.predictions)
        versions = [row[0] for row in predictions.select("model_version").distinct().collect()]
        about = {"model_version": ", ".join(sorted(v for v in versions if v))}
        if versions and str(bundle.descriptor.get("version")) not in versions:
            log.warning(
                "the predictions were made by %s, the calibration is of %s",
                about["model_version"],
                bundle.descriptor.get("version"),
            )
        likeness = load_likeness(args.model)
        return write_audience(
            predictions, args.output, bundle.classes, calibration, config, about, likeness
        )

    in_session("sparkface-audience", load_ingest(args.ingest_config), work, args.spark_log_level)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("audience", lambda: audience(args))


if __name__ == "__main__":
    sys.exit(main())
