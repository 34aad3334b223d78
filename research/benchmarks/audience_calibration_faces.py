"""Do more labelled faces in the audience calibration make the shares nearer? Chosen on the
validation split.

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_calibration_faces.py \
        --cache out/audience-faces-validation.npz --extra out/audience-faces-validation-ffmore.npz

The faces of --cache (FairFace's and UTKFace's validation faces, as
benchmarks/audience_accuracy.py --split validation caches them) are cut in two halves; windows
are drawn from one (three cameras, 200-400 faces, mixes from a Dirichlet of each
--concentration, as benchmarks/audience_accuracy.py draws them) and corrected as the audience
step does (race fitted on FairFace's photos, conf/audience.yaml's pseudo_faces, each face by the
sources it is like) with a calibration and source classifier fitted on:
- `half`: the other half (the product's calibration, at half its faces);
- `quarter`: half of that half (what halving the faces does);
- `half + extra`: the other half and every face of --extra (another source's validation faces:
  fairface-more's, never trained on), under their own source name;
- `half + extra as fairface`: the same, the extra faces counted as FairFace's (one kind of
  photo, one recalibration);
- `... classifier on the half`: that calibration, with the source classifier fitted on the half
  alone (twice as many FairFace faces as UTKFace's tilt its odds towards FairFace).
Prints the mean share error (half the sum of absolute differences, points) and how often the 95%
intervals hold the true share, per head and concentration.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks.audience_accuracy import CAMERAS, PSEUDO_FACES, draw_window
from research.benchmarks.audience_choice import calibrated
from sparkface.audience.shares import estimate, total_variation
from sparkface.core.contract import CLASS_HEADS


def joined(main: dict[str, np.ndarray], extra: dict[str, np.ndarray], name: str | None):
    """The two caches' faces as one (the extra ones renamed `name`, when given)."""
    both = {key: np.concatenate([main[key], extra[key]]) for key in main}
    if name:
        both["source"] = np.concatenate([main["source"], np.full(len(extra["source"]), name)])
    return both


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--extra", default="out/audience-faces-validation-ffmore.npz")
    parser.add_argument("--windows", type=int, default=40, help="per camera, fold, concentration")
    parser.add_argument("--concentration", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main_faces = {key: value for key, value in np.load(args.cache).items()}
    extra = {key: value for key, value in np.load(args.extra).items()}
    extra_name = str(extra["source"][0])
    faces = joined(main_faces, extra, None)
    renamed = joined(main_faces, extra, "fairface")
    count = len(main_faces["source"])
    is_extra = np.arange(len(faces["source"])) >= count
    rng = np.random.default_rng(args.seed)
    halves = np.concatenate([rng.random(count) < 0.5, np.zeros(len(extra["source"]), bool)])
    print(f"faces: {count} in halves, {len(extra['source'])} extra ({extra_name})")
    rows = []
    for fold in (halves, ~halves & ~is_extra):
        quarter = fold & (np.random.default_rng(args.seed + 1).random(len(fold)) < 0.5)
        ways = {
            "half": (faces, fold, ("fairface",)),
            "quarter": (faces, quarter, ("fairface",)),
            "half + extra": (faces, fold | is_extra, ("fairface", extra_name)),
            "half + extra as fairface": (renamed, fold | is_extra, ("fairface",)),
            "... classifier on the half": (renamed, fold | is_extra, ("fairface",), fold),
        }
        calibrations = {way: calibrated(*setting) for way, setting in ways.items()}
        draws = np.random.default_rng(args.seed + 2)
        for concentration in args.concentration:
            for camera, sources in CAMERAS.items():
                pool = np.flatnonzero(~fold & ~is_extra & np.isin(faces["source"], sources))
                for _ in range(args.windows):
                    chosen = draw_window(faces, pool, draws, concentration)
                    vectors = {head: faces[head][chosen] for head in CLASS_HEADS}
                    for way, (fits, likeness) in calibrations.items():
                        like = likeness.window(vectors)
                        for head in CLASS_HEADS:
                            truth = faces[f"true_{head}"][chosen]
                            if (truth < 0).any():
                                continue
                            true = np.bincount(truth, minlength=vectors[head].shape[1])
                            true = true / len(truth)
                            shares = estimate(
                                vectors[head],
                                fits[head],
                                pseudo_faces=PSEUDO_FACES.get(head, 0.0),
                                likeness=like,
                            )
                            held = (shares.low <= true) & (true <= shares.high)
                            rows.append(
                                {
                                    "concentration": concentration,
                                    "head": head,
                                    "camera": camera,
                                    "way": way,
                                    "error": 100 * total_variation(shares.share, true),
                                    "held": 100 * held.mean(),
                                }
                            )
    frame = pd.DataFrame(rows)
    table = frame.groupby(["concentration", "head", "way"])[["error", "held"]].mean()
    print(table.round(2).unstack("way").to_string())
    cameras = frame.groupby(["concentration", "head", "camera", "way"])["error"].mean()
    print(cameras.round(2).unstack("way").to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
