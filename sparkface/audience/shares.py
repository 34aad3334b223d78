"""Audience shares a marketer can trust: class shares of a group of faces, corrected for the
model's known errors, with a bootstrap interval.

Counting each face's most probable class is biased (a model that calls some women men reports
too many men), and so is averaging the probabilities, less so. What is known is how the model
errs: on labelled faces, the mean probability it gives each class for faces of each true class
(the soft confusion matrix M, rows true classes). For faces of true shares pi, the expected mean
probability vector is pi @ M; so the shares are estimated by solving that for pi over the
simplex (least squares; "probabilistic adjusted classify and count", Bella et al., 2010).

The interval is a bootstrap over both samples it rests on: the window's faces, and the labelled
faces M was measured on (each true class resampled on its own).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class HeadCalibration:
    """One head's labelled faces: each face's true class and the probabilities the model gave
    it, in `classes` order."""

    classes: tuple[str, ...]
    truth: np.ndarray  # (faces,) int
    probabilities: np.ndarray  # (faces, classes) float

    def __post_init__(self) -> None:
        if self.probabilities.ndim != 2 or self.probabilities.shape[1] != len(self.classes):
            raise ValueError(
                f"calibration probabilities of shape {self.probabilities.shape} do not match "
                f"{len(self.classes)} classes"
            )
        if len(self.truth) != len(self.probabilities):
            raise ValueError("calibration truth and probabilities differ in length")

    def counts(self) -> np.ndarray:
        return np.bincount(self.truth, minlength=len(self.classes))

    def matrix(self) -> np.ndarray:
        """M: the mean probability of each class (columns) for faces of each true class (rows).
        A class no labelled face has keeps the identity row (nothing is known of its errors)."""
        return soft_confusion(self.truth, self.probabilities, len(self.classes))

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "truth": self.truth.astype(int).tolist(),
            "probabilities": np.round(self.probabilities, 4).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeadCalibration:
        classes = tuple(data["classes"])
        probabilities = np.asarray(data["probabilities"], "float64").reshape(-1, len(classes))
        return cls(classes, np.asarray(data["truth"], "int64"), probabilities)


def soft_confusion(truth: np.ndarray, probabilities: np.ndarray, classes: int) -> np.ndarray:
    sums = np.zeros((classes, classes))
    np.add.at(sums, truth, probabilities)
    counts = np.bincount(truth, minlength=classes)
    matrix = np.eye(classes)
    seen = counts > 0
    matrix[seen] = sums[seen] / counts[seen, None]
    return matrix


def correct(mean_probabilities: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The shares pi >= 0, sum 1, that best explain `mean_probabilities` as pi @ matrix (least
    squares). Solved on a shrinking support: the equality-constrained solution, then the most
    negative share dropped, until none is negative (exact for these small, near-diagonal M)."""
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


@dataclasses.dataclass(frozen=True)
class Shares:
    """One head's shares in one group of faces, in class order."""

    share: np.ndarray  # corrected (or averaged, without a calibration)
    low: np.ndarray
    high: np.ndarray
    averaged: np.ndarray  # the mean probability: uncorrected
    counted: np.ndarray  # the share of faces whose most probable class it is
    corrected: bool


def estimate(
    probabilities: np.ndarray,
    calibration: HeadCalibration | None,
    draws: int = 200,
    seed: int = 0,
    level: float = LEVEL,
) -> Shares:
    """The shares of a group of faces (rows of `probabilities`), corrected with `calibration`
    when given, with a `level` percentile-bootstrap interval over `draws` resamples of the faces
    (and of the calibration's faces)."""
    faces, classes = probabilities.shape
    if faces == 0:
        raise ValueError("no faces to estimate shares from")
    rng = np.random.default_rng(seed)
    averaged = probabilities.mean(axis=0)
    counted = np.bincount(probabilities.argmax(axis=1), minlength=classes) / faces
    # Resampled means of the window's faces: multinomial weights, one row per draw.
    weights = rng.multinomial(faces, np.full(faces, 1 / faces), size=draws) / faces
    resampled = weights @ probabilities
    if calibration is None:
        share, samples = averaged, resampled
    else:
        share = correct(averaged, calibration.matrix())
        matrices = _resampled_matrices(calibration, draws, rng)
        samples = np.stack([correct(resampled[d], matrices[d]) for d in range(draws)])
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail], axis=0)
    return Shares(
        share=share,
        low=np.minimum(low, share),
        high=np.maximum(high, share),
        averaged=averaged,
        counted=counted,
        corrected=calibration is not None,
    )


def _resampled_matrices(calibration: HeadCalibration, draws: int, rng) -> np.ndarray:
    """`draws` soft confusion matrices, each from the calibration's faces resampled within each
    true class."""
    classes = len(calibration.classes)
    matrices = np.broadcast_to(np.eye(classes), (draws, classes, classes)).copy()
    for label in range(classes):
        rows = calibration.probabilities[calibration.truth == label]
        if len(rows) == 0:
            continue
        weights = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=draws)
        matrices[:, label, :] = weights @ rows / len(rows)
    return matrices


def total_variation(estimated: np.ndarray, true: np.ndarray) -> float:
    """Half the sum of absolute differences between two share vectors: the share of the
    audience put in the wrong class."""
    return float(np.abs(np.asarray(estimated) - np.asarray(true)).sum() / 2)
