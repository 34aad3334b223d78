"""Bootstrap intervals for the gap in gender accuracy between races (model selection, issue 16):
how far a races gap measured on a few hundred faces a race can be trusted."""

from __future__ import annotations

import numpy as np

from sparkface.core.contract import RACES
from sparkface.evaluate.uncertainty import accuracy_spread


def races_gap_draws(
    predictions: dict[str, np.ndarray], truth: dict[str, np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """The gap between the best and worst race's gender accuracy (points) in each bootstrap draw,
    a draw being `weights`' row: how many times each face was drawn."""
    right = (predictions["gender"].argmax(axis=1) == truth["gender"]).astype(float)
    races = np.eye(len(RACES))[truth["race"]]
    return accuracy_spread(weights @ (races * right[:, None]), weights @ races)


def races_gap_intervals(
    named: dict[str, dict[str, np.ndarray]],
    truth: dict[str, np.ndarray],
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Each model's gap between races in gender accuracy with a 95% bootstrap interval over the
    faces, and its difference from the first model's, paired (the same draws for every model):
    whether one model's narrower gap is more than the noise of a few hundred faces a race."""
    faces = len(truth["gender"])
    weights = np.random.default_rng(seed).multinomial(faces, np.full(faces, 1.0 / faces), draws)
    gaps = {name: races_gap_draws(p, truth, weights) for name, p in named.items()}
    point = {name: races_gap_draws(p, truth, np.ones((1, faces)))[0] for name, p in named.items()}
    first = next(iter(named))
    out = {}
    for name, drawn in gaps.items():
        difference = drawn - gaps[first]
        out[name] = {
            "gap": round(float(point[name]), 1),
            "low": round(float(np.percentile(drawn, 2.5)), 1),
            "high": round(float(np.percentile(drawn, 97.5)), 1),
            "minus_first": round(float(point[name] - point[first]), 1),
            "minus_first_low": round(float(np.percentile(difference, 2.5)), 1),
            "minus_first_high": round(float(np.percentile(difference, 97.5)), 1),
        }
    return out


def races_gap_table(named: dict[str, dict[str, np.ndarray]], truth: dict[str, np.ndarray]) -> str:
    """`races_gap_intervals` as a Markdown table."""
    lines = ["| model | races gap | 95% interval | minus the first model's (95%, paired) |"]
    lines.append("|---|---|---|---|")
    for name, gap in races_gap_intervals(named, truth).items():
        lines.append(
            f"| {name} | {gap['gap']:.1f} | {gap['low']:.1f} to {gap['high']:.1f} | "
            f"{gap['minus_first']:+.1f} ({gap['minus_first_low']:+.1f} to "
            f"{gap['minus_first_high']:+.1f}) |"
        )
    return "\n".join(lines)
