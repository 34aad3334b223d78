"""python jobs/split_metrics.py --split validation MODEL=SHARDS [MODEL=SHARDS ...]: metrics of
model packages on one split of their training shards, and of their average, as a Markdown table.

For choosing between models on the validation split without touching the test split.
"""

from __future__ import annotations

import argparse
import os
import sys

from sparkface.core.config import load_labels
from sparkface.evaluate.selection import split_table
from sparkface.spark.runner import run_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="split_metrics", description=__doc__)
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--labels-config", default=None, help="default: conf/labels.yaml")
    parser.add_argument("models", nargs="+", metavar="MODEL=SHARDS")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models = [tuple(model.partition("=")[::2]) for model in args.models]

    def table() -> None:
        print(split_table(models, args.split, load_labels(args.labels_config).groups.names))

    return run_main("split_metrics", table)


if __name__ == "__main__":
    sys.exit(main())
