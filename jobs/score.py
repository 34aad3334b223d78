"""Age group, gender and race of every image.

spark-submit jobs/score.py --input DIR --output OUT [--model MODEL] [--format parquet,json]
spark-submit jobs/score.py --campaign NAME --run-date YYYY-MM-DD [--full]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date

from sparkface.core.config import load_faces, load_ingest
from sparkface.core.package import default_model_dir, load_bundle
from sparkface.score.campaigns import load_campaign, run_campaign
from sparkface.score.run import run_scoring
from sparkface.spark.outputs import parse_formats
from sparkface.spark.runner import add_common_arguments, arrow_batch, in_session, run_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score", description=__doc__)
    parser.add_argument("--input", help="folder of images (searched recursively)")
    parser.add_argument("--output", help="folder for parquet/, json/, summary.json")
    parser.add_argument("--campaign", help="run conf/campaigns/NAME.yaml instead of --input")
    parser.add_argument("--run-date", help="the campaign night, YYYY-MM-DD")
    parser.add_argument("--full", action="store_true", help="campaign: rescore every file")
    parser.add_argument("--campaigns-dir", default=None, help="default: conf/campaigns")
    parser.add_argument(
        "--model",
        default=None,
        help="model package folder: model.json and the file its runtime scores with, model.keras "
        "or model.tflite (default: the shipped model)",
    )
    parser.add_argument(
        "--faces",
        choices=["detect", "aligned"],
        help="detect: find every face in each image (a row per face); aligned: each file is one "
        "face crop (default: mode in conf/faces.yaml, or the campaign's faces:)",
    )
    parser.add_argument("--faces-config", default=None, help="default: conf/faces.yaml")
    parser.add_argument(
        "--format", help="parquet, json or both (default: both); Parquet is always written"
    )
    parser.add_argument("--batch-size", type=int, help="images per model call (default: 128)")
    add_common_arguments(parser, labels=False)
    args = parser.parse_args(argv)
    if args.campaign:
        if not args.run_date:
            parser.error("--campaign needs --run-date YYYY-MM-DD")
        try:
            date.fromisoformat(args.run_date)
        except ValueError:
            parser.error(f"--run-date {args.run_date!r} is not a date YYYY-MM-DD")
        ignored = {"--input": args.input, "--output": args.output, "--format": args.format}
        ignored["--faces"] = args.faces
        ignored["--batch-size"] = args.batch_size
        if given := [name for name, value in ignored.items() if value is not None]:
            parser.error(
                f"{', '.join(given)}: not with --campaign (the campaign file sets inputs, "
                "output, formats, faces and batch_size)"
            )
    else:
        if not (args.input and args.output):
            parser.error("give --input and --output, or --campaign and --run-date")
        only = {"--run-date": args.run_date, "--full": args.full or None}
        only["--campaigns-dir"] = args.campaigns_dir
        if given := [name for name, value in only.items() if value is not None]:
            parser.error(f"{', '.join(given)}: only with --campaign")
    args.format = "parquet,json" if args.format is None else args.format
    args.batch_size = 128 if args.batch_size is None else args.batch_size
    if args.batch_size < 1:
        parser.error(f"--batch-size: must be a positive number of images, got {args.batch_size}")
    return args


def score_campaign(args: argparse.Namespace) -> None:
    campaign = load_campaign(args.campaign, args.campaigns_dir)
    if args.model:
        campaign = campaign.model_copy(update={"model": args.model})
    ingest = load_ingest(args.ingest_config)
    in_session(
        f"sparkface-{campaign.name}",
        ingest,
        lambda spark: run_campaign(spark, campaign, args.run_date, full=args.full, ingest=ingest),
        log_level=args.spark_log_level,
        extra=arrow_batch(campaign.batch_size),
    )


def score_folder(args: argparse.Namespace) -> None:
    ingest = load_ingest(args.ingest_config)
    formats = parse_formats(args.format)
    faces = load_faces(args.faces_config)
    mode = args.faces or faces.mode
    bundle = load_bundle(args.model or str(default_model_dir()))
    in_session(
        "sparkface-score",
        ingest,
        lambda spark: run_scoring(
            spark,
            args.input,
            args.output,
            bundle,
            ingest,
            formats,
            args.batch_size,
            run_id=uuid.uuid4().hex,
            faces=faces if mode == "detect" else "aligned",
        ),
        log_level=args.spark_log_level,
        extra=arrow_batch(args.batch_size),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("score", lambda: score_campaign(args) if args.campaign else score_folder(args))


if __name__ == "__main__":
    sys.exit(main())
