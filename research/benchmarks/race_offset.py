"""Where an offset on one race's log probability moves a package along the line between the two
labelled sources (docs/experiments.md, 2026-12-04, third session):

    PYTHONPATH=. .venv/bin/python research/benchmarks/race_offset.py \
        --package models/sparkface-cnn --package OLD [--offsets 0 -0.1 -0.2 -0.3] [--race others]

Reads the validation faces `jobs/calibrate.py` stored in each package's `audience.json` (true
class, probabilities and source per face; no image) and prints, per offset, race accuracy per
source, UTKFace's white faces called that race, and its recall on FairFace's faces.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def offset_table(race: dict, offsets: list[float], target: str) -> list[str]:
    """One line per offset added to `target`'s log probability before the argmax."""
    classes = race["classes"]
    column = classes.index(target)
    white = classes.index("white")
    logs = np.log(np.clip(np.array(race["probabilities"]), 1e-9, 1.0))
    truth = np.array(race["truth"])
    sources = np.array(race["sources"])
    lines = []
    for offset in offsets:
        shifted = logs.copy()
        shifted[:, column] += offset
        said = shifted.argmax(axis=1)
        right = said == truth
        accuracy = ", ".join(
            f"{name} {100 * right[sources == name].mean():.1f}" for name in sorted(set(sources))
        )
        utk_white = ((sources == "utkface") & (truth == white) & (said == column)).sum()
        fair = (sources == "fairface") & (truth == column)
        recall = 100 * (said[fair] == column).mean() if fair.any() else float("nan")
        lines.append(
            f"  {target} {offset:+.1f}: race {accuracy}; UTKFace white called {target} "
            f"{utk_white}; FairFace {target} recall {recall:.0f}%"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", action="append", required=True, help="a model package")
    parser.add_argument("--offsets", nargs="+", type=float, default=[0, -0.1, -0.2, -0.3, -0.5])
    parser.add_argument("--race", default="others")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for package in args.package:
        calibration = json.loads((Path(package) / "audience.json").read_text())
        race = calibration["heads"]["race"]
        print(f"{package} ({len(race['truth'])} validation faces)")
        print("\n".join(offset_table(race, args.offsets, args.race)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
