"""python jobs/convert.py --model MODEL --shards SHARDS --output OUT [--weights int8|float32]: the
model package converted for TensorFlow Lite, checked against the Keras model on the validation
and test splits of the shards it was trained on (sparkface.evaluate.convert)."""

from __future__ import annotations

import argparse
import logging
import sys

from sparkface.core.runtime import WEIGHTS
from sparkface.evaluate.convert import convert_package
from sparkface.evaluate.metrics import describe
from sparkface.spark.runner import run_main

log = logging.getLogger("sparkface")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="convert", description=__doc__)
    parser.add_argument("--model", required=True, help="a Keras model package folder")
    parser.add_argument("--shards", required=True, help="the model's training shards (OUT/shards)")
    parser.add_argument("--output", required=True, help="folder for the converted package")
    parser.add_argument("--weights", choices=WEIGHTS, default="int8")
    parser.add_argument(
        "--max-changed",
        type=float,
        default=0.02,
        help="refuse the conversion if a head's predicted class changes for more than this "
        "share of a split's faces",
    )
    return parser.parse_args(argv)


def convert(args: argparse.Namespace) -> None:
    descriptor = convert_package(
        args.model, args.shards, args.output, args.weights, args.max_changed
    )
    for split, metrics in (("validation", "validation_metrics"), ("test", "metrics")):
        log.info("%s split: %s", split, describe(descriptor[metrics]))
    for split, check in descriptor["conversion"]["agreement_with_keras"].items():
        changed = ", ".join(
            f"{head} {values['class_changed']:.2%}"
            for head, values in check.items()
            if "class_changed" in values
        )
        log.info("%s split: classes changed from Keras's: %s", split, changed)
    log.info("converted package written to %s (version %s)", args.output, descriptor["version"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("convert", lambda: convert(args))


if __name__ == "__main__":
    sys.exit(main())
