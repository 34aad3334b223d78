"""Which part of the age-group intervals' variance makes them too wide with mild mixes (issue 35)?

On the validation split's UTKFace faces (the cache `benchmarks/audience_accuracy.py --split
validation` writes), cut in two random halves: the age-group calibration fitted on one half as
the package fits it (20 bootstrap refits), windows of 200-400 faces drawn from the other as
`benchmarks/audience_accuracy.py` draws them (strong mixes, concentration 1; mild, 5), then the
halves swap. For each window the shares are estimated as `sparkface.audience.shares.estimate`
does (100 pseudo-faces), and the interval's variance is built from some of its parts:

- the product's: w² × the sampling variance + (1 - w)² × the estimated squared pull towards
  the prior + the calibration's spread (w = faces / (faces + pseudo-faces));
- without the calibration's spread; without the pull; the sampling part alone;
- the pull as it truly is (the window's true shares known: what no estimate can do better);
- matrix shrinkage: the estimate linearised as A × the unshrunk one, A = (observed information +
  the prior's)⁻¹ × observed information, its variance A Σ Aᵀ, its bias (I - A)(prior - unshrunk)
  estimated as the pull is (and with the true bias).

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_age_intervals.py \\
        --cache out/audience-faces-validation.npz

Prints, per mix, the share of true shares each interval holds (percent), the mean share error
(points) and the mean standard deviation of the product's parts (points).
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.audience_accuracy import PSEUDO_FACES, draw_window
from sparkface.audience.shares import (
    HeadCalibration,
    _sampling_covariance,
    _variance_under,
    maximum_likelihood_shares,
    tangent_basis,
    total_variation,
)

Z = 1.959964  # the normal's 97.5% quantile


def window_variances(calibration: HeadCalibration, probabilities, true, pseudo_faces) -> dict:
    """The shares of one window and the variance of each kind of interval about them."""
    fitted = calibration.fitted
    faces, classes = probabilities.shape
    ratio = fitted.apply(probabilities) / fitted.prior
    recalibrated = ratio * fitted.prior
    share = maximum_likelihood_shares(recalibrated, fitted.prior, pseudo_faces=pseudo_faces)
    unshrunk = maximum_likelihood_shares(recalibrated, fitted.prior)
    multinomial = (np.diag(unshrunk) - np.outer(unshrunk, unshrunk)) / faces
    covariance = _sampling_covariance(ratio, unshrunk) - multinomial
    weight = faces / (faces + pseudo_faces)
    sampling = np.clip(np.diag(covariance), 0, None)
    pull = np.clip((fitted.prior - unshrunk) ** 2 - sampling, 0, None)
    spread = _variance_under(calibration.variants, probabilities, pseudo_faces)
    # matrix shrinkage, on the simplex's tangent space, at the shrunk shares
    basis = tangent_basis(classes)
    gradients = ratio / (ratio @ share)[:, None]
    observed = basis.T @ (gradients.T @ gradients) @ basis
    from_prior = basis.T @ np.diag(pseudo_faces * fitted.prior / share**2) @ basis
    linear = basis @ np.linalg.solve(observed + from_prior, observed) @ basis.T
    rest = basis @ basis.T - linear
    matrix = np.clip(np.diag(linear @ covariance @ linear.T), 0, None)
    bias = np.clip(
        (rest @ (fitted.prior - unshrunk)) ** 2 - np.diag(rest @ covariance @ rest.T), 0, None
    )
    return (
        share,
        {
            "the product's": weight**2 * sampling + (1 - weight) ** 2 * pull + spread,
            "without the calibration's spread": weight**2 * sampling + (1 - weight) ** 2 * pull,
            "without the pull": weight**2 * sampling + spread,
            "the sampling part alone": weight**2 * sampling,
            "the true pull": weight**2 * sampling
            + (1 - weight) ** 2 * (fitted.prior - true) ** 2
            + spread,
            "matrix shrinkage": matrix + bias + spread,
            "matrix shrinkage, the true bias": matrix
            + (rest @ (fitted.prior - true)) ** 2
            + spread,
        },
        np.sqrt([weight**2 * sampling, (1 - weight) ** 2 * pull, spread]).mean(axis=1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--windows", type=int, default=150, help="per half and mix")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    faces = dict(np.load(args.cache, allow_pickle=False))
    rng = np.random.default_rng(args.seed)
    utkface = faces["source"] == "utkface"
    halves = rng.random(len(utkface)) < 0.5
    pseudo_faces = PSEUDO_FACES["age_group"]
    held: dict = {}
    errors: dict = {}
    parts: dict = {}
    for fold in (halves, ~halves):
        known = fold & utkface & (faces["true_age_group"] >= 0)
        classes = tuple(str(i) for i in range(faces["age_group"].shape[1]))
        calibration = HeadCalibration(
            classes,
            faces["true_age_group"][known],
            faces["age_group"][known],
            faces["source"][known],
        ).fit()
        pool = np.flatnonzero(~fold & utkface)
        for concentration in (1.0, 5.0):
            for _ in range(args.windows):
                chosen = draw_window(faces, pool, rng, concentration)
                truth = faces["true_age_group"][chosen]
                true = np.bincount(truth, minlength=len(classes)) / len(truth)
                share, variances, sds = window_variances(
                    calibration, faces["age_group"][chosen], true, pseudo_faces
                )
                for kind, variance in variances.items():
                    inside = np.abs(share - true) <= Z * np.sqrt(variance)
                    held.setdefault((concentration, kind), []).append(inside.mean())
                errors.setdefault(concentration, []).append(total_variation(share, true))
                parts.setdefault(concentration, []).append(sds)
    for concentration, mixes in ((1.0, "strong"), (5.0, "mild")):
        sampling, pull, spread = 100 * np.mean(parts[concentration], axis=0)
        print(
            f"{mixes} mixes: share error {100 * np.mean(errors[concentration]):.1f} points; "
            f"standard deviations: sampling {sampling:.2f}, pull {pull:.2f}, "
            f"calibration {spread:.2f} points"
        )
        print("| interval's variance | true shares held |\n|---|---|")
        for (mix, kind), inside in held.items():
            if mix == concentration:
                print(f"| {kind} | {100 * np.mean(inside):.1f}% |")


if __name__ == "__main__":
    main()
