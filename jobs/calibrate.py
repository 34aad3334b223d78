"""spark-submit jobs/calibrate.py --source fairface --source utkface [--split validation]:
measure how the model errs on labelled faces (each source's split, found as campaigns find them)
and ship it in the package as audience.json, which audience shares are corrected with."""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.audience.calibration import write_calibration
from sparkface.core.config import FACE_MODES, load_ingest, load_labels, load_source, load_train
from sparkface.core.errors import UserError
from sparkface.core.package import default_model_dir, load_bundle
from sparkface.evaluate.calibrate import measure_calibration
from sparkface.spark.runner import add_common_arguments, arrow_batch, in_session, run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="calibrate", description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()), help="model folder")
    parser.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="SOURCE[:AS]",
        help="a labelled source of conf/sources/; with :AS, counted as the source AS (more faces "
        "of the same kind, one correction: fairface-more:fairface)",
    )
    parser.add_argument(
        "--split",
        choices=("validation", "test", "train", "all"),
        default="validation",
        help="each source's split, by the hash of the file name training uses",
    )
    parser.add_argument(
        "--fit-on",
        action="append",
        default=[],
        metavar="HEAD=SOURCE[,SOURCE]",
        help="fit a head's correction on these sources' faces only (default: all of them; "
        "every source's faces are kept, and one correction per source widens the intervals by "
        "how much they disagree), "
        "e.g. race=fairface: the faces cameras see",
    )
    parser.add_argument("--recipe", default=None, help="whose split fractions")
    parser.add_argument("--faces", choices=FACE_MODES, default="detect")
    parser.add_argument("--batch-size", type=int, default=128)
    add_common_arguments(parser)
    return parser.parse_args(argv)


def calibrate(args: argparse.Namespace) -> None:
    labels = load_labels(args.labels_config)
    ingest = load_ingest(args.ingest_config)
    bundle = load_bundle(args.model)
    counted_as = counted_sources(args.source)
    sources = [load_source(name) for name in counted_as]
    split = None if args.split == "all" else (args.split, load_train(args.recipe).split)
    heads, measured_on, likeness = in_session(
        "sparkface-calibrate",
        ingest,
        lambda spark: measure_calibration(
            spark, sources, bundle, ingest, labels, split, args.faces, args.batch_size, counted_as
        ),
        log_level=args.spark_log_level,
        extra=arrow_batch(args.batch_size),
    )
    chosen = fit_sources(args.fit_on, heads)
    heads = {head: part.fit(on=chosen.get(head, ())) for head, part in heads.items()}
    for entry in measured_on:
        entry["fitted_heads"] = fitted_heads(entry, heads, chosen)
    path = write_calibration(args.model, heads, measured_on, likeness)
    log.info(
        "calibration of %s: %s; written to %s",
        bundle.descriptor.get("version"),
        ", ".join(f"{head} {len(part.truth)} faces" for head, part in heads.items()),
        path,
    )


def counted_sources(settings: list[str]) -> dict[str, str]:
    """--source SOURCE[:AS] settings: each source and the source it counts as (itself, or AS,
    which must be one of the sources measured and count as itself)."""
    counted = {}
    for setting in settings:
        name, _, kind = setting.partition(":")
        if not name or name in counted:
            raise UserError(f"--source {setting!r}: expected SOURCE or SOURCE:AS, once each")
        counted[name] = kind or name
    for name, kind in counted.items():
        if counted.get(kind) != kind:
            raise UserError(
                f"--source {name}:{kind}: {kind} must be measured too, as itself "
                f"(sources: {', '.join(counted)})"
            )
    return counted


def fit_sources(settings: list[str], heads: dict) -> dict[str, list[str]]:
    """--fit-on HEAD=SOURCE[,SOURCE] settings, checked against the heads measured."""
    chosen = {}
    for setting in settings:
        head, _, sources = setting.partition("=")
        if head not in heads or not sources:
            raise UserError(
                f"--fit-on {setting!r}: expected HEAD=SOURCE with a head of {list(heads)}"
            )
        chosen[head] = sources.split(",")
    return chosen


def fitted_heads(entry: dict, heads: dict, chosen: dict[str, list[str]]) -> list[str]:
    """The heads whose correction a measured source's faces went into: those it gave faces of
    (FairFace's age bins give no age group), where --fit-on names it or names no source."""
    kind = entry.get("counted_as", entry["source"])
    given = entry["faces_by_head"]
    return [head for head in heads if given.get(head) and kind in chosen.get(head, [kind])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("calibrate", lambda: calibrate(args))


if __name__ == "__main__":
    sys.exit(main())
