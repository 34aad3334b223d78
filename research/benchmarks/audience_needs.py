"""How right must the network be for an audience's shares to be within issue 35's 3 points?

    PYTHONPATH=. .venv/bin/python research/benchmarks/audience_needs.py \
        --cache out/audience-faces-validation.npz

The shares' error is not the calibration's: fitted on the very faces of the nights it corrects,
it leaves race 4.8 points off and age groups 19.0 (docs/experiments.md, seventeenth session).
What is left is what a window's faces cannot tell the correction, given how often the network
confuses their classes. This script asks how much better the network would have to be. It makes
a better network's answers from the shipped one's. Each face's log probabilities get `boost`
added to its true class (faces whose class is unknown keep theirs), so the network is surer of
the right class where it was already leaning that way, and the classes it confuses stay the ones
it confuses. Then, as `audience_calibration_faces.py` does on the validation faces of --cache,
cut in two halves: a calibration and source classifier are fitted on one half, windows of
200-400 faces are drawn from the other with mixes from a Dirichlet of each --concentration, and
the shares are corrected as the audience step does. With --age-pseudo-faces, another prior for
the age groups (the step's pulls every window towards the calibration's mix, which costs a
network that needs no help); with --age-bands, the eight age groups merged into fewer, wider
bands (e.g. 0-1,2-3,4-5,6-7: 7-17, 18-34, 35-54, 55 and over; the windows' mixes then drawn
over the bands), corrected as the step corrects them (the age groups' faces merged; with
`--sensitive-to race`, the step's setting, each window's interval also holds the shares under a
correction fitted on faces weighted to its races). Printed per boost: the accuracy it gives
each head (FairFace's race and gender, UTKFace's age groups), and per head and concentration
the mean share error (points), how often the intervals hold the true share, and the windows'
errors in units of the interval's standard error (z: its mean, and its root mean square, 1 where the
interval's width is right); --in-sample fits the calibration on the windows' own half,
--mix-interval widens the intervals to the mix the faces were drawn from. --camera NAME=SOURCES
sets the windows' cameras (default: lobby, mall and station on FairFace's and UTKFace's faces),
--calibrate-on the sources the calibration is fitted on (default: every source of --cache), and
--by-camera prints the table per camera too.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks.audience_accuracy import CAMERAS, PSEUDO_FACES, draw_window
from research.benchmarks.audience_choice import calibrated
from sparkface.audience.shares import group_index, merge_classes, total_variation
from sparkface.audience.tables import AGE_BAND, window_shares
from sparkface.core.config import AudienceConfig
from sparkface.core.contract import CLASS_HEADS


def boosted(faces: dict[str, np.ndarray], boost: float) -> dict[str, np.ndarray]:
    """The faces' probabilities with `boost` added to the log probability of each known true
    class, then normalised again: a network surer of the right class, confusing the same ones."""
    result = dict(faces)
    for head in CLASS_HEADS:
        truth = faces[f"true_{head}"]
        logits = np.log(np.clip(faces[head], 1e-12, None))
        known = truth >= 0
        logits[np.flatnonzero(known), truth[known]] += boost
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        result[head] = probabilities / probabilities.sum(axis=1, keepdims=True)
    return result


def merged_age_groups(faces: dict[str, np.ndarray], bands: list[list[int]], head="age_group"):
    """The faces with their age groups merged into `bands` (lists of group indices, in order),
    as `head`: each band's probability the sum of its groups', its truth the band of the true
    group."""
    result = dict(faces)
    result[head] = merge_classes(faces["age_group"], bands)
    band_of = group_index(bands, faces["age_group"].shape[1])
    truth = faces["true_age_group"]
    result[f"true_{head}"] = np.where(truth >= 0, band_of[np.clip(truth, 0, None)], -1)
    return result


def accuracies(faces: dict[str, np.ndarray]) -> str:
    """What the boosted network gets right: FairFace's race and gender, UTKFace's age group."""
    cells = []
    for source, head in (("fairface", "race"), ("fairface", "gender"), ("utkface", "age_group")):
        truth = faces[f"true_{head}"]
        rows = (faces["source"] == source) & (truth >= 0)
        right = faces[head][rows].argmax(axis=1) == truth[rows]
        cells.append(f"{source} {head} {100 * right.mean():.1f}%")
    return ", ".join(cells)


def share_errors(faces, halves, args, rng) -> list[dict]:
    """Each window's share error, interval coverage and the spread of its errors in units of
    the interval's standard error (z: 1 where the interval's variance is right), per head, over
    both halves."""
    rows = []
    heads = (AGE_BAND, "gender", "race") if AGE_BAND in faces else CLASS_HEADS
    config = AudienceConfig(
        pseudo_faces=args.pseudo_faces,
        mix_intervals=list(heads) if args.mix_interval else [],
        sensitive_to={AGE_BAND: args.sensitive_to} if args.sensitive_to else {},
    )
    for fold in (halves, ~halves):
        # --in-sample: the calibration fitted on the half the windows are drawn from.
        fitted_on = (~fold if args.in_sample else fold) & np.isin(
            faces["source"], args.calibrate_on
        )
        fits, likeness = calibrated(faces, fitted_on)
        if AGE_BAND in faces:
            fits[AGE_BAND] = fits["age_group"].merged([f"{b}" for b in args.bands], args.bands)
            fits[AGE_BAND] = fits[AGE_BAND].fit()
        for concentration in args.concentration:
            for camera, sources in args.cameras.items():
                pool = np.flatnonzero(~fold & np.isin(faces["source"], sources))
                for _ in range(args.windows):
                    chosen = draw_window(faces, pool, rng, concentration, heads)
                    vectors = {head: faces[head][chosen] for head in (*CLASS_HEADS, *heads)}
                    known = [h for h in heads if (faces[f"true_{h}"][chosen] >= 0).all()]
                    found = window_shares(vectors, fits, config, likeness, heads=known)
                    for head, shares in found.items():
                        truth = faces[f"true_{head}"][chosen]
                        true = np.bincount(truth, minlength=vectors[head].shape[1]) / len(truth)
                        held = (shares.low <= true) & (true <= shares.high)
                        error = (shares.high - shares.low) / (2 * 1.959964)
                        z = (shares.share - true) / np.clip(error, 1e-9, None)
                        rows.append(
                            {
                                "concentration": concentration,
                                "camera": camera,
                                "head": head,
                                "error": 100 * total_variation(shares.share, true),
                                "held": 100 * held.mean(),
                                "z_mean": z.mean(),
                                "z_sd": np.sqrt((z**2).mean()),
                            }
                        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="out/audience-faces-validation.npz")
    parser.add_argument("--boost", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--windows", type=int, default=40, help="per camera, half, concentration")
    parser.add_argument("--concentration", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--age-pseudo-faces",
        type=float,
        default=PSEUDO_FACES.get("age_group", 0.0),
        help="the age groups' prior, in faces (conf/audience.yaml's pseudo_faces by default)",
    )
    parser.add_argument(
        "--age-bands",
        default=None,
        metavar="0-1,2-3,...",
        help="report age in these bands of the eight groups (indices, first-last) instead",
    )
    parser.add_argument(
        "--in-sample",
        action="store_true",
        help="fit the calibration on the half the windows are drawn from",
    )
    parser.add_argument(
        "--sensitive-to",
        choices=("race", "gender", ""),
        default="race",
        help="with --age-bands: the bands' intervals also hold the shares under a correction "
        "fitted on faces weighted to the window's shares of this head ('': not)",
    )
    parser.add_argument(
        "--age-band-pseudo-faces", type=float, default=10.0, help="the bands' prior, in faces"
    )
    parser.add_argument(
        "--mix-interval",
        action="store_true",
        help="intervals of the mix the faces were drawn from (realised=False), not of their own",
    )
    parser.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=SOURCE[,SOURCE]",
        help="the windows' cameras and the sources whose faces each sees (default: "
        "audience_accuracy's lobby, mall and station)",
    )
    parser.add_argument(
        "--calibrate-on",
        default=None,
        metavar="SOURCE[,SOURCE]",
        help="the sources whose faces the calibration is fitted on (default: every source of "
        "--cache)",
    )
    parser.add_argument("--by-camera", action="store_true", help="the table per camera too")
    args = parser.parse_args()
    args.cameras = {
        name: tuple(sources.split(","))
        for name, sources in (setting.split("=", 1) for setting in args.camera)
    } or CAMERAS
    args.pseudo_faces = {
        **PSEUDO_FACES,
        "age_group": args.age_pseudo_faces,
        AGE_BAND: args.age_band_pseudo_faces,
    }
    faces = {key: value for key, value in np.load(args.cache).items()}
    if args.age_bands:
        bands = [band.split("-") for band in args.age_bands.split(",")]
        args.bands = [list(range(int(a), int(b) + 1)) for a, b in bands]
    args.calibrate_on = (
        args.calibrate_on.split(",") if args.calibrate_on else sorted(set(faces["source"]))
    )
    halves = np.random.default_rng(args.seed).random(len(faces["source"])) < 0.5
    rows = []
    for boost in args.boost:
        better = boosted(faces, boost)
        if args.age_bands:  # the bands beside the groups
            better = merged_age_groups(better, args.bands, AGE_BAND)
        print(f"boost {boost}: {accuracies(better)}", flush=True)
        # The same windows for every boost: one seed each.
        rng = np.random.default_rng(args.seed + 1)
        rows += [{"boost": boost, **row} for row in share_errors(better, halves, args, rng)]
    frame = pd.DataFrame(rows)
    print(summary(frame, ["concentration", "head", "boost"]))
    if args.by_camera:
        print(summary(frame, ["concentration", "camera", "head", "boost"]))
    return 0


def summary(frame: pd.DataFrame, keys: list[str]) -> str:
    """Mean error, coverage and z per `keys` (z's root mean square over the windows)."""
    table = frame.groupby(keys)[["error", "held", "z_mean", "z_sd"]].mean()
    table["z_sd"] = np.sqrt(frame.assign(z2=frame["z_sd"] ** 2).groupby(keys)["z2"].mean())
    return table.round(2).unstack("head").to_string()


if __name__ == "__main__":
    sys.exit(main())
