"""Age group, gender and race of every image.

spark-submit jobs/score.py --input DIR --output OUT [--model MODEL] [--format parquet,json]
spark-submit jobs/score.py --campaign NAME --run-date YYYY-MM-DD [--full]
"""

from __future__ import annotations

import sys
from pathlib import Path

# jobs/profile.py shares its name with the standard library's `profile`, which pyspark imports:
# keep this folder off the import path so that every job finds the standard module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import dataclasses
import logging
import uuid

from sparkface.campaigns import CampaignError, CampaignLocked, load_campaign, run_campaign
from sparkface.cli import add_common_arguments, arrow_batch, run_in_session
from sparkface.config import ConfigError, load_ingest
from sparkface.inference import default_model_dir
from sparkface.ingest import InputError
from sparkface.logs import configure_logging
from sparkface.outputs import parse_formats
from sparkface.scoring import load_bundle, run_scoring

log = logging.getLogger("sparkface")


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
        help="model folder with model.keras and model.json (default: the shipped model)",
    )
    parser.add_argument("--format", default="parquet,json", help="parquet, json or both")
    parser.add_argument("--batch-size", type=int, default=128, help="images per model call")
    add_common_arguments(parser, labels=False)
    args = parser.parse_args(argv)
    if args.campaign and not args.run_date:
        parser.error("--campaign needs --run-date YYYY-MM-DD")
    if not args.campaign and not (args.input and args.output):
        parser.error("give --input and --output, or --campaign and --run-date")
    return args


def run_campaign_job(args: argparse.Namespace) -> int:
    try:
        campaign = load_campaign(args.campaign, args.campaigns_dir)
        if args.model:
            campaign = dataclasses.replace(campaign, model=args.model)
        ingest = load_ingest(args.ingest_config)
    except ConfigError as error:
        log.error("bad campaign: %s", error)
        return 2
    code, _ = run_in_session(
        f"sparkface-{campaign.name}",
        ingest,
        lambda spark: run_campaign(spark, campaign, args.run_date, full=args.full, ingest=ingest),
        # 75 (EX_TEMPFAIL) for a refused start: the scheduler should try again later.
        {CampaignLocked: (75, "{error}"), CampaignError: (1, "{error}")},
        log_level=args.spark_log_level,
        extra=arrow_batch(campaign.batch_size),
    )
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    if args.campaign:
        return run_campaign_job(args)
    try:
        ingest = load_ingest(args.ingest_config)
        formats = parse_formats(args.format)
        bundle = load_bundle(args.model or str(default_model_dir()))
    except (ConfigError, ValueError, FileNotFoundError) as error:
        log.error("%s", error)
        return 2
    code, _ = run_in_session(
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
        ),
        {InputError: (2, "{error}")},
        log_level=args.spark_log_level,
        extra=arrow_batch(args.batch_size),
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
