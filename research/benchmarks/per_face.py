"""Where one source's errors lie, from the faces `jobs/evaluate.py --per-face` wrote
(docs/experiments.md, 2026-12-05, the teenagers' gender trial):

    PYTHONPATH=. .venv/bin/python research/benchmarks/per_face.py out/eval/NAME [--halves 10]

Prints gender accuracy per labelled age (exact ages in decades, or the source's bins), gender for
faces of 10-19 by race and gender, gender by race among faces of 20 and over, and whether the age
in years, placed in the source's bins, gains from thresholds between the bins fitted on half the
faces and scored on the other half (a monotone recalibration). With --gender-shifts, gender
accuracy (all, by race, men and women) when that much is taken from the log odds of `female`
before the class is chosen (a bias of the gender head's decision); with --shift-by RACE as well,
each face's shift is scaled by the probability the network gives RACE (a decision that leans
one way only where the network sees that race: docs/experiments.md, twenty-third session).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd


def scored_faces(folder: str) -> pd.DataFrame:
    """The scored faces, with `right` (gender) and `age_low` (the labelled age's decade or bin)."""
    faces = pd.read_parquet(f"{folder}/faces")
    # in the order of their paths (Spark writes them in any order): the random halves repeat
    faces = faces[faces["scored"]].sort_values("path", kind="stable").reset_index(drop=True)
    faces["right"] = faces["gender"].astype(str) == faces["true_gender"].astype(str)
    exact = faces["true_age"].notna()
    faces["age_low"] = faces["true_age_low"].astype("float")
    faces.loc[exact, "age_low"] = (faces.loc[exact, "true_age"] // 10 * 10).astype("float")
    return faces


def gender_tables(faces: pd.DataFrame) -> list[str]:
    """Gender accuracy per age, teenagers' per race and gender, adults' per race and its gap."""
    lines = [f"{len(faces)} faces; gender {100 * faces['right'].mean():.1f}%"]
    by_age = faces.groupby("age_low")["right"].agg(["mean", "size"])
    lines += ["gender by age (from, right, faces):"]
    lines += [
        f"  {int(low)}: {100 * row['mean']:.1f}% of {int(row['size'])}"
        for low, row in by_age.iterrows()
    ]
    teens = faces[faces["age_low"] == 10]
    cells = teens.groupby(["true_race", "true_gender"])["right"].agg(["sum", "size"])
    lines += ["gender, faces of 10-19 (race, gender: right of faces):"]
    lines += [
        f"  {race}, {gender}: {int(row['sum'])} of {int(row['size'])}"
        for (race, gender), row in cells.iterrows()
    ]
    adults = faces[faces["age_low"] >= 20].groupby("true_race")["right"].mean()
    if len(adults):
        shares = ", ".join(f"{race} {100 * value:.1f}" for race, value in adults.items())
        gap = 100 * (adults.max() - adults.min())
        lines.append(f"gender, 20 and over, by race: {shares}; gap {gap:.1f}")
    return lines


def bin_positions(ages: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Each age's bin: the number of cuts at or below it."""
    return np.searchsorted(cuts, ages, side="right")


def in_labelled_bin(years: np.ndarray, lows: np.ndarray) -> np.ndarray:
    """Whether each age in years, rounded half up as the evaluation rounds it (Spark's round),
    lies in the face's labelled bin (its lower bound in `lows`), the bins being those labelled
    here; below the first or above the last: the nearest end (`tally.bins_off`)."""
    cuts = np.unique(lows)[1:]
    return bin_positions(np.floor(np.asarray(years) + 0.5), cuts) == bin_positions(lows, cuts)


def fit_cuts(ages: np.ndarray, truth: np.ndarray, cuts: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Cuts between the bins that place the most ages in their true bin: each cut in turn, on a
    quarter-year grid between its neighbours."""
    cuts = cuts.astype(float).copy()
    for _ in range(rounds):
        for k in range(len(cuts)):
            low = cuts[k - 1] if k else 0.0
            high = cuts[k + 1] if k + 1 < len(cuts) else 120.0
            candidates = np.arange(low + 0.25, high, 0.25)
            right = [
                (bin_positions(ages, np.r_[cuts[:k], c, cuts[k + 1 :]]) == truth).sum()
                for c in candidates
            ]
            cuts[k] = candidates[int(np.argmax(right))]
    return cuts


def recalibration_gain(faces: pd.DataFrame, halves: int, seed: int = 0) -> dict | None:
    """Shares in the bin and within one (percent, mean over random halves) with the source's own
    cuts and with cuts fitted on the other half, and the mean age in years by labelled bin; None
    for a source without bins."""
    binned = faces[faces["true_age"].isna() & faces["true_age_low"].notna()]
    if binned.empty:
        return None
    lows = np.array(sorted(binned["true_age_low"].unique()), dtype=float)
    truth = bin_positions(binned["true_age_low"].to_numpy(float), lows[1:])
    ages = np.round(binned["age_years"].to_numpy(float))
    # A bin "20-29" holds the rounded ages 20..29: the cut between 19 and 20.
    given = lows[1:] - 0.5
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(halves):
        order = rng.permutation(len(ages))
        fit, held = order[: len(ages) // 2], order[len(ages) // 2 :]
        cuts = fit_cuts(ages[fit], truth[fit], given)
        row = []
        for chosen in (given, cuts):
            off = bin_positions(ages[held], chosen) - truth[held]
            row += [(off == 0).mean(), (np.abs(off) <= 1).mean()]
        scores.append(row)
    mean = 100 * np.mean(scores, axis=0)
    return {
        "given_inside": mean[0],
        "given_near": mean[1],
        "fitted_inside": mean[2],
        "fitted_near": mean[3],
        "mean_age": binned.groupby("true_age_low")["age_years"].mean().to_dict(),
    }


def recalibration_lines(gain: dict, halves: int) -> list[str]:
    """`recalibration_gain`'s figures as printed lines."""
    called = ", ".join(f"{int(low)}: {age:.1f}" for low, age in gain["mean_age"].items())
    return [
        f"age bin, the source's cuts → cuts fitted on the other half ({halves} halves): "
        f"{gain['given_inside']:.1f}% → {gain['fitted_inside']:.1f}% in the bin, "
        f"{gain['given_near']:.1f}% → {gain['fitted_near']:.1f}% within one",
        f"mean age in years by labelled bin: {called}",
    ]


def gender_shift_lines(
    faces: pd.DataFrame, shifts: list[float], shift_by: str | None = None
) -> list[str]:
    """Gender accuracy with each shift taken from the log odds of `female`, times each face's
    probability of race `shift_by` when given."""
    female = np.array([dict(p["gender"])["female"] for p in faces["probabilities"]])
    log_odds = np.log(np.clip(female, 1e-9, 1)) - np.log(np.clip(1 - female, 1e-9, 1))
    scale = 1.0
    if shift_by is not None:
        scale = np.array([dict(p["race"])[shift_by] for p in faces["probabilities"]])
    truth = (faces["true_gender"].astype(str) == "female").to_numpy()
    races = faces["true_race"].astype(str).to_numpy()
    lines = []
    for shift in shifts:
        right = ((log_odds - shift * scale) > 0) == truth
        times = f" × p({shift_by})" if shift_by is not None else ""
        line = f"gender, log odds of female − {shift:g}{times}: {100 * right.mean():.1f}%"
        if faces["true_race"].notna().any():
            by_race = pd.Series(right).groupby(races).mean() * 100
            named = ", ".join(f"{race} {value:.1f}" for race, value in by_race.items())
            line += f" ({named}; gap {by_race.max() - by_race.min():.1f})"
        line += f"; men {100 * right[~truth].mean():.1f}, women {100 * right[truth].mean():.1f}"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="an output folder of jobs/evaluate.py --per-face")
    parser.add_argument("--halves", type=int, default=10, help="0: no age-bin recalibration")
    parser.add_argument("--gender-shifts", type=float, nargs="*", default=[])
    parser.add_argument("--shift-by", help="a race: scale each face's shift by its probability")
    args = parser.parse_args(argv)
    faces = scored_faces(args.folder)
    lines = gender_tables(faces)
    gain = recalibration_gain(faces, args.halves) if args.halves else None
    if gain is not None:
        lines += recalibration_lines(gain, args.halves)
    if args.gender_shifts:
        lines += gender_shift_lines(faces, args.gender_shifts, args.shift_by)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
