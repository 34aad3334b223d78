"""How evenly a model's gender accuracy holds across races, and between women and men within a
race, from the `by_race_gender` rows of its metrics (sparkface.evaluate.metrics).

Two gaps summarise it: the best race's gender accuracy minus the worst's, and the largest
difference between a race's women and its men. Both are small-sample figures (a few hundred faces
a race on the test split, 43 `others` men), so read them with the counts beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparkface.core.contract import GENDERS, RACES


def gender_accuracy_by_race(metrics: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """(faces, gender accuracy) per race, pooled over its genders."""
    pooled: dict[str, list[float]] = {}
    for row in metrics["by_race_gender"]:
        faces, right = pooled.setdefault(row["race"], [0, 0.0])
        pooled[row["race"]] = [faces + row["faces"], right + row["faces"] * row["gender_accuracy"]]
    return {race: (int(faces), right / faces) for race, (faces, right) in pooled.items() if faces}


def gender_gaps(metrics: dict[str, Any]) -> dict[str, Any]:
    """The gap between the best and worst race's gender accuracy, and the largest gap between a
    race's women and men, in points, each with where it lies."""
    by_race = gender_accuracy_by_race(metrics)
    best = max(by_race, key=lambda race: by_race[race][1])
    worst = min(by_race, key=lambda race: by_race[race][1])
    cells = {(row["race"], row["gender"]): row for row in metrics["by_race_gender"]}
    within = {
        race: abs(
            cells[(race, GENDERS[1])]["gender_accuracy"]
            - cells[(race, GENDERS[0])]["gender_accuracy"]
        )
        for race in RACES
        if all((race, gender) in cells and cells[(race, gender)]["faces"] for gender in GENDERS)
    }
    widest = max(within, key=within.get)
    return {
        "between_races": round(100 * (by_race[best][1] - by_race[worst][1]), 1),
        "best_race": best,
        "worst_race": worst,
        "within_race": round(100 * within[widest], 1),
        "within_race_at": widest,
    }


def fairness_table(named: dict[str, dict[str, Any]]) -> str:
    """Gender accuracy per race × gender for each named model's metrics, with both gaps."""
    cells = [(race, gender) for race in RACES for gender in GENDERS]
    header = ["model", *(f"{race} {gender}" for race, gender in cells), "races gap", "w/m gap"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, metrics in named.items():
        rows = {(row["race"], row["gender"]): row for row in metrics["by_race_gender"]}
        figures = [
            f"{100 * rows[cell]['gender_accuracy']:.1f}" if cell in rows else "–" for cell in cells
        ]
        gaps = gender_gaps(metrics)
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    *figures,
                    f"{gaps['between_races']:.1f} ({gaps['best_race']}–{gaps['worst_race']})",
                    f"{gaps['within_race']:.1f} ({gaps['within_race_at']})",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def races_gap_draws(
    predictions: dict[str, np.ndarray], truth: dict[str, np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """The gap between the best and worst race's gender accuracy (points) in each bootstrap draw,
    a draw being `weights`' row: how many times each face was drawn."""
    right = (predictions["gender"].argmax(axis=1) == truth["gender"]).astype(float)
    races = np.eye(len(RACES))[truth["race"]]
    return accuracy_spread(weights @ (races * right[:, None]), weights @ races)


def accuracy_spread(correct: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per row (a draw: counts of faces right and of faces, one column per race), the best race's
    accuracy minus the worst's, in points; a race with no faces in the row counts for neither."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(faces > 0, correct / faces, np.nan)
    return 100.0 * (np.nanmax(accuracy, axis=1) - np.nanmin(accuracy, axis=1))


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
