"""What else was tried for age-group shares, and did not help (docs/audience.md):

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_age.py [--years FILE.npz]

1. Recalibrating with a full matrix on the log probabilities (matrix scaling, L2 towards the
   identity) instead of a scale and a bias per class: share error on windows of the test split's
   UTKFace faces (calibration fitted on the validation split), per head.
2. The age-in-years output added to the age-group recalibration (a multinomial logistic
   regression on the log probabilities, years and years^2): accuracy and log loss on the test
   split's UTKFace faces, and share error. Needs the faces' years: --years (made once with Spark
   from the package's scores when missing).
3. James-Stein shrinkage of the age-group shares towards the calibration's mix, against 100
   pseudo-faces, on the validation halves of research/benchmarks/audience_choice.py.
4. Shrinkage or none on windows of the test split's UTKFace faces mixed by age alone.

Windows of 200-400 faces; mixes from a Dirichlet of concentration 1 (strong) and 5 (mild).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.audience_accuracy import draw_window
from sparkface.audience.shares import (
    HeadCalibration,
    _sampling_covariance,
    maximum_likelihood_shares,
    total_variation,
)


def fit_softmax(features, truth, classes, penalty=1e-3, steps=4000, rate=0.05, identity=False):
    """A multinomial logistic regression on standardised features (with `identity`, on the
    features as they are, its weights pulled towards the identity: matrix scaling)."""
    mean = np.zeros(features.shape[1]) if identity else features.mean(axis=0)
    scale = np.ones(features.shape[1]) if identity else features.std(axis=0) + 1e-6
    standard = (features - mean) / scale
    anchor = (
        np.eye(features.shape[1], classes) if identity else np.zeros((features.shape[1], classes))
    )
    weights, bias = anchor.copy(), np.zeros(classes)
    onehot = np.eye(classes)[truth]
    velocity_weights, velocity_bias = np.zeros_like(weights), np.zeros(classes)
    for _ in range(steps):
        logits = standard @ weights + bias
        odds = np.exp(logits - logits.max(axis=1, keepdims=True))
        error = odds / odds.sum(axis=1, keepdims=True) - onehot
        gradient = standard.T @ error / len(truth) + penalty * (weights - anchor)
        velocity_weights = 0.9 * velocity_weights - rate * gradient
        velocity_bias = 0.9 * velocity_bias - rate * error.mean(axis=0)
        weights, bias = weights + velocity_weights, bias + velocity_bias
    prior = np.bincount(truth, minlength=classes) + 0.5

    def apply(other):
        logits = ((other - mean) / scale) @ weights + bias
        odds = np.exp(logits - logits.max(axis=1, keepdims=True))
        return odds / odds.sum(axis=1, keepdims=True)

    return apply, prior / prior.sum()


def logs(probabilities):
    return np.log(np.clip(probabilities, 1e-6, 1.0))


def age_windows(truth, rng, concentration, count):
    """Windows of 200-400 faces mixed by age alone."""
    classes = truth.max() + 1
    for _ in range(count):
        weights = rng.dirichlet(np.full(classes, concentration))[truth]
        size = int(rng.integers(200, 401))
        yield rng.choice(len(truth), size, replace=False, p=weights / weights.sum())


def james_stein(calibration, probabilities):
    """The calibration's mix plus a positive-part James-Stein share of the way to the
    maximum-likelihood shares, in the metric of their (realised) covariance."""
    fitted = calibration.fitted
    calibrated = fitted.apply(probabilities)
    unshrunk = maximum_likelihood_shares(calibrated, fitted.prior)
    covariance = _sampling_covariance(calibrated / fitted.prior, unshrunk)
    covariance -= (np.diag(unshrunk) - np.outer(unshrunk, unshrunk)) / len(probabilities)
    classes = len(unshrunk)
    basis = np.linalg.qr(np.eye(classes) - 1 / classes)[0][:, : classes - 1]
    gap = basis.T @ (unshrunk - fitted.prior)
    distance = gap @ np.linalg.pinv(basis.T @ covariance @ basis) @ gap
    factor = max(0.0, 1 - (classes - 3) / max(distance, 1e-12))
    return fitted.prior + factor * (unshrunk - fitted.prior)


def years_cache(path: Path) -> dict[str, np.ndarray]:
    """UTKFace's validation and test faces: true age group, age in years, age-group
    probabilities, scored by the package as campaigns score (detect mode)."""
    if path.is_file():
        return dict(np.load(path))
    from pyspark.sql import functions as F

    from sparkface.core.config import load_ingest, load_labels, load_source, load_train
    from sparkface.core.package import default_model_dir, load_bundle
    from sparkface.evaluate.tally import labelled_scores, truth
    from sparkface.spark.runner import arrow_batch, in_session

    bundle = load_bundle(str(default_model_dir()))
    labels, ingest, fractions = load_labels(), load_ingest(), load_train().split
    names = bundle.classes["age_group"]

    def work(spark):
        found = {}
        for split in ("validation", "test"):
            _, usable, scored = labelled_scores(
                spark, load_source("utkface"), bundle, ingest, labels, 128, (split, fractions),
                "detect",
            )  # fmt: skip
            vector = F.array(*[F.col("probabilities")["age_group"][n] for n in names]).alias("p")
            # in the order of their paths: the windows drawn from them repeat from run to run
            frame = scored.join(truth(usable, bundle.classes, labels.groups), "path")
            frame = frame.orderBy("path").select("true_age_group", "age_years", vector).toPandas()
            found[f"{split}_truth"] = frame["true_age_group"].to_numpy("int64")
            found[f"{split}_years"] = frame["age_years"].to_numpy("float64")
            found[f"{split}_p"] = np.stack(frame["p"].to_numpy())
        return found

    cache = in_session("audience-age", ingest, work, extra=arrow_batch(128))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **cache)
    return cache


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--validation", default="out/audience-faces-validation.npz")
    parser.add_argument("--test", default="out/audience-faces.npz")
    parser.add_argument("--years", default="out/audience-years.npz")
    parser.add_argument("--windows", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ages = years_cache(Path(args.years))
    truth, probabilities = ages["test_truth"], ages["test_p"]
    classes = probabilities.shape[1]
    fit_truth, fit_p, fit_years = (
        ages["validation_truth"],
        ages["validation_p"],
        ages["validation_years"],
    )

    def with_years(p, years):
        return np.c_[logs(p), years / 30, (years / 30) ** 2, np.log1p(years)]

    scaled = HeadCalibration(tuple(map(str, range(classes))), fit_truth, fit_p).fit(variants=0)
    matrix, matrix_prior = fit_softmax(logs(fit_p), fit_truth, classes, identity=True, rate=0.02)
    years, years_prior = fit_softmax(with_years(fit_p, fit_years), fit_truth, classes)
    test_years = with_years(probabilities, ages["test_years"])
    for name, calibrated in (
        ("scale and biases", scaled.fitted.apply(probabilities)),
        ("matrix", matrix(logs(probabilities))),
        ("with years", years(test_years)),
    ):
        right = (calibrated.argmax(axis=1) == truth).mean()
        loss = -np.log(calibrated[np.arange(len(truth)), truth]).mean()
        print(f"{name}: accuracy {100 * right:.1f}%, log loss {loss:.3f}")
    rows = []
    for concentration in (1.0, 5.0):
        for chosen in age_windows(truth, rng, concentration, args.windows):
            true = np.bincount(truth[chosen], minlength=classes) / len(chosen)
            row = {"concentration": concentration}
            for pseudo in (0.0, 100.0):
                for name, calibrated, prior in (
                    ("scaled", scaled.fitted.apply(probabilities[chosen]), scaled.fitted.prior),
                    ("matrix", matrix(logs(probabilities[chosen])), matrix_prior),
                    ("years", years(test_years[chosen]), years_prior),
                ):
                    shares = maximum_likelihood_shares(calibrated, prior, pseudo_faces=pseudo)
                    row[f"{name}_{int(pseudo)}"] = total_variation(shares, true)
            row["averaged"] = total_variation(probabilities[chosen].mean(axis=0), true)
            rows.append(row)
    print("test split, windows mixed by age alone (pseudo-faces after the name):")
    print((pd.DataFrame(rows).groupby("concentration").mean() * 100).round(1).to_string())

    faces = dict(np.load(args.validation))
    halves = rng.random(len(faces["source"])) < 0.5
    rows = []
    known = faces["true_age_group"] >= 0
    for fold in (halves, ~halves):
        calibration = HeadCalibration(
            tuple(map(str, range(classes))),
            faces["true_age_group"][fold & known],
            faces["age_group"][fold & known],
        ).fit(variants=0)
        pool = np.flatnonzero(~fold & (faces["source"] == "utkface"))
        for concentration in (1.0, 5.0):
            for _ in range(100):
                chosen = draw_window(faces, pool, rng, concentration)
                true = np.bincount(faces["true_age_group"][chosen], minlength=classes)
                true = true / len(chosen)
                window = faces["age_group"][chosen]
                fitted = calibration.fitted
                shrunk = maximum_likelihood_shares(
                    fitted.apply(window), fitted.prior, pseudo_faces=100
                )
                rows.append(
                    {
                        "concentration": concentration,
                        "unshrunk": total_variation(
                            maximum_likelihood_shares(fitted.apply(window), fitted.prior), true
                        ),
                        "james_stein": total_variation(james_stein(calibration, window), true),
                        "pseudo_100": total_variation(shrunk, true),
                        "averaged": total_variation(window.mean(axis=0), true),
                    }
                )
    print("validation halves, windows as in audience_choice.py:")
    print((pd.DataFrame(rows).groupby("concentration").mean() * 100).round(1).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
