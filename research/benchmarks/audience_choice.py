"""Which correction, fitted on which faces: chosen on the validation split, never the test split.

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_choice.py \
        --cache out/audience-faces-validation.npz

The validation faces (benchmarks/audience_accuracy.py --split validation writes the cache) are
cut in two halves by a random draw; a correction is fitted on one half and scored on windows
drawn from the other (then the halves swap). Windows as in benchmarks/audience_accuracy.py:
three cameras (FairFace's photos, UTKFace's faces, both), 200-400 faces, class weights per head
from a Dirichlet of the given concentration. Prints the mean share error (half the sum of
absolute differences, points) per head and camera for: averaging, counting, inverting the soft
confusion matrix, and maximum likelihood (EM) on recalibrated probabilities fitted on all the
sources' faces or on FairFace's only (for gender and race: the photos cameras see).

With --intervals: the share error of `estimate`, how often its 95% intervals hold the true
share, per head and camera, and their mean half width, for the interval of the mix the faces
were drawn from, of the window's own faces (`realised`), of those widened by the spread of the
corrections fitted per source (`domains`), and with each face corrected by the sources it is
like (`likeness`, sparkface.audience.likeness, fitted on the same half); each with the
package's settings (race fitted on FairFace's faces, conf/audience.yaml's pseudo_faces).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import pandas as pd

from benchmarks.audience_accuracy import CAMERAS, PSEUDO_FACES, draw_window
from sparkface.audience.likeness import fit_source_classifier
from sparkface.audience.shares import (
    HeadCalibration,
    estimate,
    maximum_likelihood_shares,
    total_variation,
)
from sparkface.core.contract import CLASS_HEADS


def correct(mean_probabilities: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Matrix inversion, for comparison: the shares pi >= 0, sum 1, that best explain
    `mean_probabilities` as pi @ matrix (least squares, on a shrinking support: the
    equality-constrained solution, then the most negative share dropped, until none is)."""
    classes = len(mean_probabilities)
    support = list(range(classes))
    while True:
        shares = _constrained_least_squares(matrix[support].T, mean_probabilities)
        if shares.min() >= 0 or len(support) == 1:
            result = np.zeros(classes)
            result[support] = np.clip(shares, 0, None)
            return result / result.sum()
        support.pop(int(shares.argmin()))


def _constrained_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """argmin ||design @ x - target|| subject to sum(x) = 1 (the KKT system, least-squares solved
    so that a singular design still answers)."""
    size = design.shape[1]
    system = np.zeros((size + 1, size + 1))
    system[:size, :size] = design.T @ design
    system[:size, size] = 1.0
    system[size, :size] = 1.0
    right = np.concatenate([design.T @ target, [1.0]])
    return np.linalg.lstsq(system, right, rcond=None)[0][:size]


def calibrated(
    faces: dict[str, np.ndarray],
    chosen: np.ndarray,
    photos: tuple[str, ...] = ("fairface",),
    like: np.ndarray | None = None,
):
    """Per head, the package's kind of calibration fitted on the chosen faces (race on the
    `photos` sources' faces only), and the source classifier fitted on them (or on the faces
    `like` chooses)."""
    like = chosen if like is None else like
    likeness = fit_source_classifier(
        {head: faces[head][like] for head in CLASS_HEADS}, faces["source"][like]
    )
    fits = {}
    for head in CLASS_HEADS:
        known = chosen & (faces[f"true_{head}"] >= 0)
        whole = HeadCalibration(
            tuple(str(i) for i in range(faces[head].shape[1])),
            faces[f"true_{head}"][known],
            faces[head][known],
            faces["source"][known],
            others={o: faces[f"true_{o}"][known] for o in CLASS_HEADS if o != head},
        )
        fits[head] = whole.fit(on=photos if head == "race" else ())
    return fits, likeness


def intervals(faces, halves, rng, args) -> pd.DataFrame:
    """Per concentration, head and camera: the share of true shares the intervals hold, and
    their mean half width (points), for each kind of interval."""
    rows = []
    for fold in (halves, ~halves):
        fits, likeness = calibrated(faces, fold)
        for concentration in args.concentration:
            for camera, sources in CAMERAS.items():
                pool = np.flatnonzero(~fold & np.isin(faces["source"], sources))
                for _ in range(args.windows):
                    chosen = draw_window(faces, pool, rng, concentration)
                    like = likeness.window({head: faces[head][chosen] for head in CLASS_HEADS})
                    for head in CLASS_HEADS:
                        truth = faces[f"true_{head}"][chosen]
                        if (truth < 0).any():
                            continue
                        probabilities = faces[head][chosen]
                        true = np.bincount(truth, minlength=probabilities.shape[1]) / len(truth)
                        kinds = {
                            "mix": (dataclasses.replace(fits[head], domains={}), False, None),
                            "realised": (dataclasses.replace(fits[head], domains={}), True, None),
                            "domains": (fits[head], True, None),
                            "likeness": (fits[head], True, like),
                        }
                        row = {"concentration": concentration, "camera": camera, "head": head}
                        for kind, (calibration, realised, odds) in kinds.items():
                            shares = estimate(
                                probabilities,
                                calibration,
                                pseudo_faces=PSEUDO_FACES.get(head, 0.0),
                                realised=realised,
                                likeness=odds,
                            )
                            held = (shares.low <= true) & (true <= shares.high)
                            row[f"error_{kind}"] = total_variation(shares.share, true)
                            row[f"held_{kind}"] = held.mean()
                            row[f"width_{kind}"] = ((shares.high - shares.low) / 2).mean()
                        rows.append(row)
    return pd.DataFrame(rows).groupby(["concentration", "head", "camera"]).mean() * 100


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--concentration", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intervals", action="store_true")
    args = parser.parse_args()
    faces = dict(np.load(args.cache))
    rng = np.random.default_rng(args.seed)
    halves = rng.random(len(faces["source"])) < 0.5
    if args.intervals:
        print(intervals(faces, halves, rng, args).round(1).to_string())
        return 0
    rows = []
    for fold in (halves, ~halves):
        fits = {}
        for head in CLASS_HEADS:
            truth = faces[f"true_{head}"]
            known = fold & (truth >= 0)
            whole = HeadCalibration(
                tuple(str(i) for i in range(faces[head].shape[1])),
                truth[known],
                faces[head][known],
                faces["source"][known],
            )
            fits[head, "all"] = whole.fit(variants=0)
            if head != "age_group":
                fits[head, "fairface"] = whole.only(["fairface"]).fit(variants=0)
        for concentration in args.concentration:
            for camera, sources in CAMERAS.items():
                pool = np.flatnonzero(~fold & np.isin(faces["source"], sources))
                for _ in range(args.windows):
                    chosen = draw_window(faces, pool, rng, concentration)
                    size = len(chosen)
                    for head in CLASS_HEADS:
                        truth = faces[f"true_{head}"][chosen]
                        if (truth < 0).any():
                            continue
                        probabilities = faces[head][chosen]
                        true = np.bincount(truth, minlength=probabilities.shape[1]) / size
                        row = {"concentration": concentration, "camera": camera, "head": head}
                        row["averaged"] = total_variation(probabilities.mean(axis=0), true)
                        counted = np.bincount(
                            probabilities.argmax(axis=1), minlength=probabilities.shape[1]
                        )
                        row["counted"] = total_variation(counted / size, true)
                        matrix = fits[head, "all"].matrix()
                        row["matrix"] = total_variation(
                            correct(probabilities.mean(0), matrix), true
                        )
                        for name in ("all", "fairface"):
                            if (head, name) not in fits:
                                continue
                            fitted = fits[head, name].fitted
                            shares = maximum_likelihood_shares(
                                fitted.apply(probabilities), fitted.prior
                            )
                            row[f"em_{name}"] = total_variation(shares, true)
                            if name == "all" or head == "race":
                                for pseudo in (100, 300):
                                    shrunk = maximum_likelihood_shares(
                                        fitted.apply(probabilities), fitted.prior, None, pseudo
                                    )
                                    row[f"em_{name}_{pseudo}"] = total_variation(shrunk, true)
                        rows.append(row)
    table = pd.DataFrame(rows).groupby(["concentration", "head", "camera"]).mean() * 100
    print(table.round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
