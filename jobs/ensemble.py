"""python jobs/ensemble.py --members MODEL MODEL ... --shards SHARDS --output OUT: one model
package that averages trained model packages, evaluated on the validation and test splits of the
shards they were trained on (the teacher is made this way; see models/README.md). With
--average weights, one network whose weights are the members' mean (a "model soup" of networks
fine-tuned from one network)."""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.core.errors import UserError
from sparkface.core.runtime import require_keras
from sparkface.evaluate.metrics import describe
from sparkface.spark.paths import local_folder
from sparkface.spark.runner import run_main
from sparkface.train.ensemble import build_ensemble, build_weight_average

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ensemble", description=__doc__)
    parser.add_argument("--members", nargs="+", required=True, help="model package folders")
    parser.add_argument("--shards", required=True, help="the members' training shards (OUT/shards)")
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for the averaged model package"
    )
    parser.add_argument("--name", default="sparkface-cnn", help="model name in the descriptor")
    parser.add_argument(
        "--undo-class-weights",
        nargs="+",
        default=[],
        metavar="HEAD",
        help="class heads (age_group, gender, race) whose training class weights are taken back "
        "out of every member's probabilities: more faces right, rare classes recalled less",
    )
    parser.add_argument(
        "--average",
        choices=("outputs", "weights"),
        default="outputs",
        help="outputs: every member runs, their answers averaged (default); weights: one network "
        "with the members' mean weights (members of one architecture, fine-tuned from one network)",
    )
    return parser.parse_args(argv)


def average_members(args: argparse.Namespace) -> None:
    require_keras("averaging Keras networks")
    if args.average == "weights":
        if args.undo_class_weights:
            raise UserError("--undo-class-weights works on outputs, not with --average weights")
        descriptor = build_weight_average(args.members, args.shards, args.output, args.name)
    else:
        descriptor = build_ensemble(
            args.members, args.shards, args.output, args.name, tuple(args.undo_class_weights)
        )
    for split, metrics in (("validation", "validation_metrics"), ("test", "metrics")):
        log.info("%s split: %s", split, describe(descriptor[metrics]))
    log.info("model package written to %s (version %s)", args.output, descriptor["version"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("ensemble", lambda: average_members(args))


if __name__ == "__main__":
    sys.exit(main())
