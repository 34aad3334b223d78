"""Would the mean of two packages' answers beat the first alone? From the faces `jobs/evaluate.py
--per-face` wrote for each on the same split (docs/experiments.md, thirteenth session):

    PYTHONPATH=. .venv/bin/python research/benchmarks/mean_of_two.py \
        out/eval/FIRST out/eval/SECOND [--weights 0.5 0.7]

For each weight w of the first: each head's probabilities and the age in years as w × the first's
+ (1 - w) × the second's, scored as the evaluation scores them (the age in years placed in the
source's bins, the nearest end outside them), with the paired difference from the first alone
(points, Newcombe's 95% interval, faces only the first / only the mean gets right, McNemar's p).
A probe of what a two-network package could give, before building one: both packages' answers
already hold each one's mirror image.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from research.benchmarks.per_face import in_labelled_bin, scored_faces
from sparkface.evaluate.uncertainty import paired_difference

CLASS_HEADS = ("gender", "race", "age_group")


def probabilities(faces: pd.DataFrame, head: str) -> tuple[list[str], np.ndarray]:
    """A head's class names and each face's probabilities, in that order."""
    names = [name for name, _ in faces["probabilities"].iloc[0][head]]
    return names, np.array([[p for _, p in row[head]] for row in faces["probabilities"]])


def right_answers(first: pd.DataFrame, second: pd.DataFrame, weight: float) -> dict:
    """Per head, whether the weighted mean's answer is right, over the faces labelled for it
    ("age_bin" for faces labelled with a bin only); and the mean's age error where exact."""
    right = {}
    for head in CLASS_HEADS:
        truth = first[f"true_{head}"]
        labelled = truth.notna().to_numpy()
        if labelled.any():
            names, ours = probabilities(first, head)
            mean = weight * ours + (1 - weight) * probabilities(second, head)[1]
            answer = np.asarray(names)[mean.argmax(axis=1)]
            right[head] = (answer == truth.to_numpy())[labelled]
    age = weight * first["age_years"].to_numpy() + (1 - weight) * second["age_years"].to_numpy()
    exact = first["true_age"].notna().to_numpy()
    if (~exact).any():
        right["age_bin"] = in_labelled_bin(age[~exact], first["true_age_low"].to_numpy()[~exact])
    errors = np.abs(age - first["true_age"].to_numpy())[exact] if exact.any() else None
    return {"right": right, "age_error": errors}


def paired_faces(first: str, second: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The faces both evaluations scored, in the same order."""
    one, two = scored_faces(first).set_index("path"), scored_faces(second).set_index("path")
    common = one.index.intersection(two.index)
    return one.loc[common].reset_index(), two.loc[common].reset_index()


def comparison_lines(first: pd.DataFrame, second: pd.DataFrame, weights: list[float]) -> list[str]:
    alone = right_answers(first, second, 1.0)
    lines = [f"{len(first)} faces both scored"]
    for weight in [1.0, 0.0, *weights]:
        mean = right_answers(first, second, weight)
        cells = [f"{head} {100 * right.mean():.1f}" for head, right in mean["right"].items()]
        if mean["age_error"] is not None:
            cells.append(f"MAE {mean['age_error'].mean():.2f}")
        lines.append(f"w = {weight:g}: " + ", ".join(cells))
        if weight in (0.0, 1.0):
            continue
        for head, right in mean["right"].items():
            base = alone["right"][head]
            paired = paired_difference(
                int((base & right).sum()),
                int((base & ~right).sum()),
                int((~base & right).sum()),
                int((~base & ~right).sum()),
            )
            low, high = paired["interval"]
            lines.append(
                f"  {head}: {100 * paired['difference']:+.1f} ({100 * low:+.1f} to "
                f"{100 * high:+.1f}); {paired['before_only']} / {paired['after_only']}; "
                f"p {paired['p_value']:.2f}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="an evaluation folder (holds faces/)")
    parser.add_argument("second", help="the other package's, on the same split")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.7])
    args = parser.parse_args(argv)
    print("\n".join(comparison_lines(*paired_faces(args.first, args.second), args.weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
