"""Shrink each window towards its own source's night, as strongly as the night's windows are
alike (empirical Bayes), or towards the calibration's mix by a fixed weight: chosen on the
validation split.

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_pooled.py \
        --cache out/audience-faces-validation.npz

The validation faces are cut in two halves (as research/benchmarks/audience_choice.py does);
the calibration and the source classifier are fitted on one half, nights are drawn from the
other (then the halves swap). A night: three cameras (benchmarks/audience_accuracy.py's), each
--windows windows of 200-400 faces with mixes of their own (--concentration). Per head, camera
and concentration: the mean share error (half the sum of absolute differences, points), how
often the 95% intervals hold the true share, and their mean half width, for
- `fixed`: conf/audience.yaml's pseudo_faces towards the calibration's mix (0 for gender, race);
- `unshrunk`: no shrinkage;
- `pooled`: towards the camera's night (its faces' unshrunk shares), with the pseudo-faces
  `pooled_strength` finds in the night's windows.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks.audience_accuracy import CAMERAS, PSEUDO_FACES, draw_window
from research.benchmarks.audience_choice import calibrated
from sparkface.audience.shares import (
    estimate,
    total_variation,
    unshrunk_shares,
)
from sparkface.core.contract import CLASS_HEADS

MOST = 1000.0  # pseudo-faces at most, when a night's windows are all alike


def pooled_strength(
    shares: np.ndarray, variances: np.ndarray, centre: np.ndarray, most: float = MOST
) -> float:
    """How many faces of `centre`'s mix a window's shares are worth, from one source's windows
    (empirical Bayes): `shares` (windows, classes) unshrunk, `variances` their sampling
    variances. Were the windows' true shares drawn from a Dirichlet of mean `centre` and
    strength A, their spread about it would be (1 - sum(centre^2)) / (A + 1), summed over
    classes; the estimates' spread less their own sampling variance measures it (the method
    of moments), which gives A. Windows alike beyond what their sampling says: `most`."""
    spread = ((shares - centre) ** 2).sum(axis=1).mean() - variances.sum(axis=1).mean()
    room = 1 - (centre**2).sum()
    if spread * (most + 1) <= room:
        return most
    return max(room / spread - 1, 0.0)


def night_rows(faces, fits, likeness, pool, rng, args, concentration) -> list[dict]:
    """One camera's night: per window and head, each way's error, intervals held, width."""
    windows = [draw_window(faces, pool, rng, concentration) for _ in range(args.windows)]
    whole = np.concatenate(windows)
    odds = [likeness.window({h: faces[h][w] for h in CLASS_HEADS}) for w in windows]
    night_odds = likeness.window({h: faces[h][whole] for h in CLASS_HEADS})
    rows = []
    for head in CLASS_HEADS:
        if any((faces[f"true_{head}"][w] < 0).any() for w in windows):
            continue
        centre, _ = unshrunk_shares(faces[head][whole], fits[head], night_odds)
        alone = [
            unshrunk_shares(faces[head][w], fits[head], o)
            for w, o in zip(windows, odds, strict=True)
        ]
        strength = pooled_strength(
            np.stack([a[0] for a in alone]), np.stack([a[1] for a in alone]), centre
        )
        for chosen, like in zip(windows, odds, strict=True):
            probabilities = faces[head][chosen]
            classes = probabilities.shape[1]
            true = np.bincount(faces[f"true_{head}"][chosen], minlength=classes) / len(chosen)
            ways = {
                "fixed": {"pseudo_faces": PSEUDO_FACES.get(head, 0.0)},
                "unshrunk": {},
                "pooled": {"pseudo_faces": strength, "centre": centre},
            }
            row = {"concentration": concentration, "head": head, "strength": strength}
            for way, shrink in ways.items():
                shares = estimate(probabilities, fits[head], likeness=like, **shrink)
                row[f"error_{way}"] = total_variation(shares.share, true)
                row[f"held_{way}"] = ((shares.low <= true) & (true <= shares.high)).mean()
                row[f"width_{way}"] = ((shares.high - shares.low) / 2).mean()
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--concentration", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    faces = dict(np.load(args.cache))
    rng = np.random.default_rng(args.seed)
    halves = rng.random(len(faces["source"])) < 0.5
    rows = []
    for fold in (halves, ~halves):
        fits, likeness = calibrated(faces, fold)
        for head in CLASS_HEADS:
            # The centre itself: the whole scored half of each source at once, unshrunk.
            for source in ("fairface", "utkface"):
                known = ~fold & (faces["source"] == source) & (faces[f"true_{head}"] >= 0)
                if not known.any():
                    continue
                true = np.bincount(faces[f"true_{head}"][known], minlength=faces[head].shape[1])
                true = true / known.sum()
                unshrunk, _ = unshrunk_shares(faces[head][known], fits[head])
                print(
                    f"{head}, all {known.sum()} {source} faces of a half at once: unshrunk "
                    f"{100 * total_variation(unshrunk, true):.1f} points off, averaged "
                    f"{100 * total_variation(faces[head][known].mean(axis=0), true):.1f}"
                )
        for concentration in args.concentration:
            for camera, sources in CAMERAS.items():
                pool = np.flatnonzero(~fold & np.isin(faces["source"], sources))
                for _ in range(args.nights):
                    for row in night_rows(faces, fits, likeness, pool, rng, args, concentration):
                        rows.append({"camera": camera, **row})
    frame = pd.DataFrame(rows)
    table = frame.groupby(["concentration", "head", "camera"]).mean() * 100
    table["strength"] /= 100
    print(table.round(1).to_string())
    print((frame.drop(columns="camera").groupby(["concentration", "head"]).mean() * 100).round(1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
