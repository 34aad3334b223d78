"""python jobs/ensemble.py --members MODEL MODEL ... --shards SHARDS --output OUT: one model
package that averages trained model packages, evaluated on the validation and test splits of the
shards they were trained on (the shipped model is made this way; see models/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

# jobs/profile.py shares its name with the standard library's `profile`, which pyspark imports:
# keep this folder off the import path so that every job finds the standard module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import logging

from sparkface.ensemble import build_ensemble
from sparkface.logs import configure_logging

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ensemble", description=__doc__)
    parser.add_argument("--members", nargs="+", required=True, help="model package folders")
    parser.add_argument("--shards", required=True, help="the members' training shards (OUT/shards)")
    parser.add_argument("--output", required=True, help="folder for the averaged model package")
    parser.add_argument("--name", default="sparkface-cnn", help="model name in the descriptor")
    parser.add_argument(
        "--undo-class-weights",
        nargs="+",
        default=[],
        metavar="HEAD",
        help="class heads (age_group, gender, race) whose training class weights are taken back "
        "out of every member's probabilities: more faces right, rare classes recalled less",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        descriptor = build_ensemble(
            args.members, args.shards, args.output, args.name, tuple(args.undo_class_weights)
        )
    except (FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 2
    for split, metrics in (("validation", "validation_metrics"), ("test", "metrics")):
        values = descriptor[metrics]
        log.info(
            "%s split, %d faces: gender %.1f%%, race %.1f%%, age group %.1f%% (within one %.1f%%), "
            "age MAE %.2f years",
            split,
            values["faces"],
            100 * values["gender_accuracy"],
            100 * values["race_accuracy"],
            100 * values["age_group_accuracy"],
            100 * values["age_group_within_one"],
            values["age_mae_years"],
        )
    log.info("model package written to %s (version %s)", args.output, descriptor["version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
