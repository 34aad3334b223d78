"""python jobs/convert.py --model MODEL --shards SHARDS --output OUT [--weights int8|float32]
[--activations float32|int8] [--flip source|yes|no|detect-only] [--flip-below P]: the model
package converted for TensorFlow Lite, checked against the Keras model on the validation and test
splits of the shards it was trained on (sparkface.train.convert). int8 activations are calibrated
on the train split. A package already converted keeps its network and changes only its mirror
setting (--flip), measured again on the same splits."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sparkface.core.contract import DESCRIPTOR_FILE
from sparkface.core.errors import UserError
from sparkface.core.package import read_descriptor
from sparkface.core.runtime import ACTIVATIONS, WEIGHTS, require_keras, runtime_of
from sparkface.evaluate.metrics import describe
from sparkface.spark.paths import local_folder
from sparkface.spark.runner import run_main
from sparkface.train.convert import convert_package, remirror_package

log = logging.getLogger("sparkface")
FLIPS = {
    "source": None,
    "yes": True,
    "no": False,
    "detect-only": {"aligned": False, "detect": True},
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="convert", description=__doc__)
    parser.add_argument(
        "--model",
        required=True,
        help="a Keras model package folder (or a converted one: only its --flip changes)",
    )
    parser.add_argument("--shards", required=True, help="the model's training shards (OUT/shards)")
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder for the converted package"
    )
    parser.add_argument("--weights", choices=WEIGHTS, default="int8")
    parser.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default="float32",
        help="int8: every layer's activations quantized too (needs int8 weights), calibrated on "
        "--calibration-faces faces of the train split and their mirror images",
    )
    parser.add_argument("--calibration-faces", type=int, default=512)
    parser.add_argument(
        "--flip",
        choices=tuple(FLIPS),
        default="source",
        help="score each face with its mirror image too (yes), or not (no), or only faces "
        "found in images (detect-only: not face crops); source: as the Keras package does",
    )
    parser.add_argument(
        "--flip-below",
        type=float,
        default=None,
        metavar="P",
        help="with --flip yes: the mirror image only for faces whose most probable gender or "
        "race has less than this probability (0-1) from the face alone",
    )
    parser.add_argument(
        "--max-changed",
        type=float,
        default=None,
        help="refuse the conversion if a head's predicted class changes for more than this "
        "share of a split's faces (default 0.02; a converted package's new mirror setting: "
        "no limit unless given, since changing answers is what it is for)",
    )
    return parser.parse_args(argv)


def flip_setting(flip: str, below: float | None):
    """--flip and --flip-below as the descriptor's `flip_test_time`."""
    if below is None:
        return FLIPS[flip]
    if flip != "yes" or not 0 < below < 1:
        raise UserError(f"--flip-below {below}: a probability between 0 and 1, with --flip yes")
    return below


def convert(args: argparse.Namespace) -> None:
    # A converted package needs no Keras; anything else does, before any input is read.
    if (Path(args.model) / DESCRIPTOR_FILE).is_file() and runtime_of(
        read_descriptor(args.model)
    ) == "tflite":
        remirror(args)
        return
    require_keras("converting a Keras package")
    descriptor = convert_package(
        args.model,
        args.shards,
        args.output,
        args.weights,
        0.02 if args.max_changed is None else args.max_changed,
        activations=args.activations,
        flip=flip_setting(args.flip, args.flip_below),
        calibration_count=args.calibration_faces,
    )
    keras_metrics = descriptor["conversion"]["keras_metrics"]
    for split, metrics in (("validation", "validation_metrics"), ("test", "metrics")):
        log.info("%s split, converted: %s", split, describe(descriptor[metrics]))
        log.info("%s split, Keras:     %s", split, describe(keras_metrics[split]))
    for split, check in descriptor["conversion"]["agreement_with_keras"].items():
        changed = ", ".join(
            f"{head} {values['class_changed']:.2%}"
            for head, values in check.items()
            if "class_changed" in values
        )
        log.info("%s split: classes changed from Keras's: %s", split, changed)
    log.info("converted package written to %s (version %s)", args.output, descriptor["version"])


def remirror(args: argparse.Namespace) -> None:
    """A converted package with another mirror setting: the same network, measured again."""
    if (args.weights, args.activations) != ("int8", "float32"):
        raise UserError(f"{args.model} is already converted: only its --flip can change")
    flip = flip_setting(args.flip, args.flip_below)
    descriptor = remirror_package(args.model, args.shards, args.output, flip, args.max_changed)
    before = descriptor["mirror_changed"]
    for split, metrics in (("validation", "validation_metrics"), ("test", "metrics")):
        log.info("%s split, mirror %s: %s", split, flip, describe(descriptor[metrics]))
        log.info("%s split, before:  %s", split, describe(before["metrics_before"][split]))
    log.info(
        "package written to %s (version %s, the same network)", args.output, descriptor["version"]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("convert", lambda: convert(args))


if __name__ == "__main__":
    sys.exit(main())
