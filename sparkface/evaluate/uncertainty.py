"""How sure an evaluation's figures are, from its counts: a 95% interval for each accuracy
(Wilson's score interval, right where accuracies are near 100% and counts small), and for the gender
gap between races, the gap that a model equally right on every race would show on the same faces.

The gap is the best race's gender accuracy minus the worst's: even a model with no gap at all shows
one on a finite test set, because five accuracies measured on a few hundred faces each spread by
chance. What chance alone gives is drawn (a parametric bootstrap: each race's right answers drawn
binomially from its own count of faces at the pooled accuracy), so that a measured gap can be read
against it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval
GAP_DRAWS = 20_000


def wilson(hits: int, faces: int, z: float = Z95) -> list[float] | None:
    """Wilson's score interval [low, high] of the share of hits among faces; None without faces."""
    if faces <= 0:
        return None
    return [round(bound, 4) for bound in _wilson_exact(hits, faces, z)]


def gap_by_chance(
    by_race: dict[str, tuple[int, float]], draws: int = GAP_DRAWS, seed: int = 0
) -> dict[str, Any] | None:
    """The best-minus-worst gap (points) in gender accuracy that a model right on every race as
    often as it is on all of them together would show on these races' counts of faces: its median
    and 95th percentile over `draws` draws, and how often chance alone reaches the measured gap
    (`by_race`: race -> (faces, gender accuracy), as `fairness.gender_accuracy_by_race` gives).
    None with fewer than two races."""
    counted = {race: value for race, value in by_race.items() if value[0] > 0}
    if len(counted) < 2:
        return None
    faces = np.array([value[0] for value in counted.values()], dtype=np.int64)
    accuracy = np.array([value[1] for value in counted.values()], dtype=np.float64)
    pooled = float((faces * accuracy).sum() / faces.sum())
    measured = 100 * (accuracy.max() - accuracy.min())
    rng = np.random.default_rng(seed)
    spread = accuracy_spread(rng.binomial(faces, pooled, size=(draws, len(faces))), faces)
    return {
        "pooled_accuracy": round(pooled, 4),
        "median": round(float(np.median(spread)), 1),
        "p95": round(float(np.percentile(spread, 95)), 1),
        # A drawn gap equal to the measured one counts (up to floating point).
        "chance_of_measured": round(float((spread >= measured - 1e-9).mean()), 4),
        "draws": draws,
    }


def accuracy_spread(correct: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per row (a draw: counts of faces right and of faces, one column per race), the best race's
    accuracy minus the worst's, in points; a race with no faces in the row counts for neither."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(faces > 0, correct / faces, np.nan)
    return 100.0 * (np.nanmax(accuracy, axis=1) - np.nanmin(accuracy, axis=1))


def paired_difference(
    both: int, before_only: int, after_only: int, neither: int, z: float = Z95
) -> dict[str, Any] | None:
    """Two models judged on the same faces: the accuracy of each, the difference (after minus
    before) with Newcombe's score interval for paired proportions (his method 10, built on
    Wilson's intervals of each), and McNemar's exact two-sided p-value (is one right more often
    where they disagree?). The faces both get right or both get wrong tell nothing of which is
    better; only those where they disagree move the difference. None without faces."""
    faces = both + before_only + after_only + neither
    if faces == 0:
        return None
    before, after = (both + before_only) / faces, (both + after_only) / faces
    low_before, high_before = _wilson_exact(both + before_only, faces, z)
    low_after, high_after = _wilson_exact(both + after_only, faces, z)
    margins = (both + before_only) * (after_only + neither) * (both + after_only)
    margins *= before_only + neither
    phi = (both * neither - before_only * after_only) / math.sqrt(margins) if margins else 0.0
    difference = after - before
    # How far the difference may lie below: the after model's room below its accuracy against
    # the before model's room above its own, less what their correlation shares; above, mirrored.
    below = _combined(after - low_after, high_before - before, phi)
    above = _combined(high_after - after, before - low_before, phi)
    return {
        "faces": faces,
        # Six digits, as the evaluation's shares: shown in points to one decimal, rounded once.
        "before": round(before, 6),
        "after": round(after, 6),
        "difference": round(difference, 6),
        "interval": [
            round(max(difference - below, -1.0), 6),
            round(min(difference + above, 1.0), 6),
        ],
        "before_only": before_only,
        "after_only": after_only,
        "p_value": round(mcnemar_p(before_only, after_only), 4),
    }


def mcnemar_p(before_only: int, after_only: int) -> float:
    """McNemar's exact two-sided p-value: the chance that, were both models equally often right
    where they disagree, the disagreements would split at least this unevenly."""
    disagree = before_only + after_only
    if disagree == 0:
        return 1.0
    fewer = min(before_only, after_only)
    k = np.arange(fewer)
    # log C(n, j) for j = 0..fewer by the ratio of neighbours; each split has chance 2^-n.
    log_choose = np.concatenate([[0.0], np.cumsum(np.log(disagree - k) - np.log(k + 1))])
    tail = np.exp(log_choose - disagree * math.log(2)).sum()
    return float(min(1.0, 2 * tail))


def mean_difference(
    total: float, total_squares: float, faces: int, z: float = Z95
) -> dict[str, Any] | None:
    """The mean of per-face differences (after minus before, as of absolute age errors) with its
    normal 95% interval, from their sum and sum of squares; None without faces."""
    if faces == 0:
        return None
    mean = total / faces
    variance = max(total_squares / faces - mean * mean, 0.0) * faces / max(faces - 1, 1)
    half = z * math.sqrt(variance / faces)
    return {
        "faces": faces,
        "difference": round(mean, 3),
        "interval": [round(mean - half, 3), round(mean + half, 3)],
    }


def _combined(first: float, second: float, phi: float) -> float:
    """Two one-sided margins combined as the margin of a difference of correlated shares."""
    return math.sqrt(max(first * first - 2 * phi * first * second + second * second, 0.0))


def _wilson_exact(hits: int, faces: int, z: float) -> tuple[float, float]:
    """Wilson's interval unrounded, for the intervals built on it."""
    rate = hits / faces
    centre = (rate + z * z / (2 * faces)) / (1 + z * z / faces)
    half = (
        z * math.sqrt(rate * (1 - rate) / faces + z * z / (4 * faces * faces)) / (1 + z * z / faces)
    )
    return max(centre - half, 0.0), min(centre + half, 1.0)
