"""python jobs/split_metrics.py --split validation MODEL=SHARDS [MODEL=SHARDS ...]: metrics of
model packages on one split of their training shards, and of their average, as a Markdown table;
with --fairness, their gender accuracy by race x gender too, and the gap between races with 95%
bootstrap intervals (paired against the first model's); with --gaps, how far each falls short
of the first, per head, with a 95% paired-bootstrap interval; with --fresh N, how likely a fresh
set of N faces like these finds each within the goals of a distilled network: half a point of the
first on each class head, 0.1 years of age error, and a gap of at most 3 points between its best
and worst race's gender accuracy; and, to read that last chance against, a model's with no gap
at all.

For choosing between models on the validation split without touching the test split.
"""

from __future__ import annotations

import argparse
import os
import sys

from research.bootstrap import races_gap_table
from research.selection import (
    chance_table,
    fair_model_note,
    gaps_table,
    split_predictions,
    split_table,
)
from sparkface.core.config import load_labels
from sparkface.evaluate.fairness import fairness_table
from sparkface.evaluate.metrics import compute_metrics
from sparkface.spark.runner import run_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="split_metrics", description=__doc__)
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--labels-config", default=None, help="default: conf/labels.yaml")
    parser.add_argument(
        "--fairness",
        action="store_true",
        help="also each model's gender accuracy by race x gender, and the gaps between them",
    )
    parser.add_argument(
        "--gaps",
        action="store_true",
        help="also each model's shortfall from the first model, with 95%% intervals",
    )
    parser.add_argument(
        "--fresh",
        type=int,
        default=0,
        metavar="N",
        help="also how likely a fresh set of N faces finds each model within half a point of "
        "accuracy (age: 0.1 years of error) of the first, with a races gap of at most 3 points",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL=SHARDS")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models = [tuple(model.partition("=")[::2]) for model in args.models]

    def table() -> None:
        predictions, truth = split_predictions(models, args.split)
        groups = load_labels(args.labels_config).groups.names
        named = {name: compute_metrics(p, truth, groups) for name, p in predictions.items()}
        print(split_table(named))
        if args.gaps:
            print()
            print(f"Shortfall from the first model (points; age: years), {args.split} split:")
            print(gaps_table(predictions, truth))
        if args.fresh:
            print()
            print(f"Chance that {args.fresh} fresh faces find each within the goals of the first:")
            print(chance_table(predictions, truth, args.fresh))
            print()
            print(fair_model_note(predictions, truth, args.fresh))
        if args.fairness:
            print()
            print(f"Gender accuracy (%) by race x gender, {args.split} split:")
            print(fairness_table(named))
            print()
            print(f"Gap between races in gender accuracy (points), {args.split} split:")
            print(races_gap_table(predictions, truth))

    return run_main("split_metrics", table)


if __name__ == "__main__":
    sys.exit(main())
