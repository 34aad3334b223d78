"""python jobs/fit.py --output OUT --config C: train, evaluate and package on shards prepared
earlier in OUT, without Spark.

`spark-submit jobs/train.py` prepares the shards with Spark and then trains on the driver. This job
is that second half alone, for a machine that has Keras and a GPU but no Spark (a GPU node with
JAX or PyTorch, say): OUT must hold shards/, preparation.json and config.yaml from an earlier run
(as `make model-lineage` copies them from out/train-detect), made with the same data settings.
The package records the same training-data fingerprint Spark would."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparkface.core.config import load_labels, load_train, require_packages
from sparkface.core.errors import InputError
from sparkface.core.runtime import require_keras
from sparkface.spark.exits import run_main
from sparkface.spark.paths import local_folder
from sparkface.train.packaging import fit_and_package, reusable_preparation, shards_fingerprint


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fit", description=__doc__)
    parser.add_argument(
        "--output", required=True, type=local_folder, help="folder holding the prepared shards"
    )
    parser.add_argument(
        "--config", default=None, help="a recipe (default: conf/models/sparkface-cnn.yaml)"
    )
    parser.add_argument("--labels-config", default=None, help="default: conf/labels.yaml")
    parser.add_argument(
        "--input",
        required=True,
        help="the folder of faces the shards were prepared from, as the package records it",
    )
    return parser.parse_args(argv)


def fit(args: argparse.Namespace) -> None:
    require_keras("training")
    config = load_train(args.config)
    require_packages(config, args.config or "conf/models/sparkface-cnn.yaml")
    labels = load_labels(args.labels_config)
    out = Path(args.output)
    counts = reusable_preparation(out, config)
    if counts is None or not (out / "shards").is_dir():
        raise InputError(
            f"{out}: no shards prepared with this config's data settings (image_size, min_age, "
            "sample_fractions, split, shards, faces); prepare them with jobs/train.py"
        )
    fingerprint = shards_fingerprint(out / "shards")
    fit_and_package(out, config, labels, args.input, counts, fingerprint, {})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return run_main("fit", lambda: fit(args))


if __name__ == "__main__":
    sys.exit(main())
