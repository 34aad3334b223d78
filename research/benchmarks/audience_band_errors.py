"""Why the age bands' intervals need the race's variance: their errors in units of the window's
own interval, per band and by how far the band's true share is from the calibration's.

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_band_errors.py   # all three mixed
    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_band_errors.py --mix age_group

On the validation faces of --cache, cut in two halves (seeds 0 and 1), a calibration fitted on
one half (the bands: the age groups merged, as the audience step does), 150 windows per half
drawn from the other's UTKFace faces with strong mixes (Dirichlet 1) of the heads --mix names
(the benchmarks' nights mix all three), each window's bands corrected with 10 pseudo-faces and
the window's own interval. Printed per band: the errors' root mean square in units of the
interval's standard error (1 where the interval is right), over all windows and by the distance
of the band's true share from the calibration's.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.audience_accuracy import draw_window
from research.benchmarks.audience_choice import calibrated
from research.benchmarks.audience_needs import merged_age_groups
from sparkface.audience.shares import estimate

BANDS = [[0, 1], [2, 3, 4], [5, 6, 7]]  # 7-17, 18-44, 45+
DISTANCES = ((-1, -0.2), (-0.2, -0.05), (-0.05, 0.05), (0.05, 0.2), (0.2, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--mix", default="age_group,gender,race", help="the heads windows mix")
    args = parser.parse_args()
    heads = tuple(args.mix.split(","))
    faces = merged_age_groups(dict(np.load(args.cache).items()), BANDS)
    rows = []
    for seed in (0, 1):
        halves = np.random.default_rng(seed).random(len(faces["source"])) < 0.5
        rng = np.random.default_rng(seed + 1)
        for fold in (halves, ~halves):
            bands = calibrated(faces, fold)[0]["age_group"]
            prior = bands.fitted.prior
            utkface = (faces["source"] == "utkface") & (faces["true_age_group"] >= 0)
            pool = np.flatnonzero(~fold & utkface)
            for _ in range(150):
                chosen = draw_window(faces, pool, rng, 1.0, heads)
                true = np.bincount(faces["true_age_group"][chosen], minlength=len(BANDS))
                true = true / len(chosen)
                shares = estimate(faces["age_group"][chosen], bands, pseudo_faces=10)
                error = (shares.high - shares.low) / (2 * 1.959964)
                z = (shares.share - true) / np.clip(error, 1e-9, None)
                rows += [(band, true[band] - prior[band], z[band]) for band in range(len(BANDS))]
    table = np.array(rows)
    print(f"windows mixed by {', '.join(heads)}")
    for band in range(len(BANDS)):
        own = table[table[:, 0] == band]
        cells = [f"band {band}: all {np.sqrt((own[:, 2] ** 2).mean()):.2f}"]
        for low, high in DISTANCES:
            near = (own[:, 1] >= low) & (own[:, 1] < high)
            if near.sum() >= 5:
                rms = np.sqrt((own[near, 2] ** 2).mean())
                cells.append(f"[{low:+.2f}, {high:+.2f}) {rms:.2f} ({near.sum()})")
        print("; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
