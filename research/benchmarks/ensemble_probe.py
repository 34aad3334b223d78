"""Would a teacher made of the networks already trained be worth distilling? Their mean, face by
face, from the evaluations' per-face tables.

    PYTHONPATH=. .venv/bin/python research/benchmarks/ensemble_probe.py \
        shipped=out/eval/ci-fairface-validation w64h=out/eval/p-w64h-fairface-validation \
        w64i=out/eval/p-w64i-fairface-validation --mean shipped,w64i --mean shipped,w64h,w64i

Each NAME=DIR is one package's `jobs/evaluate.py --per-face` output on the same split of the same
source. On the faces every one of them scored, prints each package's gender and race accuracy and
that of the mean of the probabilities of each --mean group: a student distilled from that mean
(one network, no extra cost when scoring) could reach about the mean's figure, not more.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

HEADS = ("gender", "race")


def per_face(directory: str) -> pd.DataFrame:
    """A per-face table's scored faces, indexed by path."""
    table = pd.read_parquet(f"{directory}/faces")
    return table[table["scored"]].set_index("path")


def probabilities(table: pd.DataFrame, head: str) -> tuple[list[str], np.ndarray]:
    """A head's classes, in the table's order, and each face's probabilities of them."""
    classes = [name for name, _ in table["probabilities"].iloc[0][head]]
    values = np.array([[value for _, value in row[head]] for row in table["probabilities"]])
    return classes, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--mean", action="append", default=[], metavar="NAME,NAME")
    args = parser.parse_args()
    tables = dict(item.split("=", 1) for item in args.packages)
    tables = {name: per_face(directory) for name, directory in tables.items()}
    common = sorted(set.intersection(*(set(table.index) for table in tables.values())))
    tables = {name: table.loc[common] for name, table in tables.items()}
    print(f"{len(common)} faces scored by every package")
    groups = [(name,) for name in tables] + [tuple(group.split(",")) for group in args.mean]
    for head in HEADS:
        first = next(iter(tables.values()))
        if first[f"true_{head}"].isna().all():
            continue
        classes, _ = probabilities(first, head)
        truth = np.array([classes.index(x) if x in classes else -1 for x in first[f"true_{head}"]])
        known = truth >= 0
        values = {name: probabilities(table, head)[1] for name, table in tables.items()}
        cells = []
        for group in groups:
            mean = sum(values[name] for name in group) / len(group)
            right = mean[known].argmax(axis=1) == truth[known]
            cells.append(f"{' + '.join(group)} {100 * right.mean():.1f}")
        print(f"{head}: " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
