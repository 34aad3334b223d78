"""python jobs/compare_models.py NAME=OUT [NAME=OUT ...]: a Markdown table of the test-split
metrics of training runs (each OUT of `jobs/train.py`)."""

from __future__ import annotations

import argparse
import sys

from research.selection import runs_table
from sparkface.spark.runner import run_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compare_models", description=__doc__)
    parser.add_argument("runs", nargs="+", metavar="NAME=OUT")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs = dict(run.partition("=")[::2] for run in args.runs)
    return run_main("compare_models", lambda: print(runs_table(runs)))


if __name__ == "__main__":
    sys.exit(main())
