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
    rate = hits / faces
    centre = (rate + z * z / (2 * faces)) / (1 + z * z / faces)
    half = (
        z * math.sqrt(rate * (1 - rate) / faces + z * z / (4 * faces * faces)) / (1 + z * z / faces)
    )
    return [round(max(centre - half, 0.0), 4), round(min(centre + half, 1.0), 4)]


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
    drawn = rng.binomial(faces, pooled, size=(draws, len(faces))) / faces
    spread = 100 * (drawn.max(axis=1) - drawn.min(axis=1))
    return {
        "pooled_accuracy": round(pooled, 4),
        "median": round(float(np.median(spread)), 1),
        "p95": round(float(np.percentile(spread, 95)), 1),
        # A drawn gap equal to the measured one counts (up to floating point).
        "chance_of_measured": round(float((spread >= measured - 1e-9).mean()), 4),
        "draws": draws,
    }
