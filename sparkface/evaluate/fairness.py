"""How evenly a model's gender accuracy holds across races, and between women and men within a
race, from the `by_race_gender` rows of its metrics (sparkface.evaluate.metrics).

Two gaps summarise it: the best race's gender accuracy minus the worst's, and the largest
difference between a race's women and its men. Both are small-sample figures (a few hundred faces
a race on the test split, 43 `others` men), so read them with the counts beside them, and the
first with the gap chance alone gives on the same counts (`gap_figures`).
"""

from __future__ import annotations

from typing import Any

from sparkface.core.contract import GENDERS, RACES
from sparkface.evaluate.uncertainty import gap_by_chance, wilson


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
    widest = max(within, key=within.get) if within else None
    return {
        "between_races": round(100 * (by_race[best][1] - by_race[worst][1]), 1),
        "best_race": best,
        "worst_race": worst,
        "within_race": round(100 * within[widest], 1) if widest else None,
        "within_race_at": widest,
    }


def gap_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """For metrics.json: the gap between races (points), what chance alone gives on the same
    counts, and each race's gender accuracy with its 95% interval; nothing with fewer than two
    races."""
    by_race = gender_accuracy_by_race(metrics)
    if len(by_race) < 2:
        return {}
    return {
        "gender_gap_between_races": gender_gaps(metrics)["between_races"],
        "gender_gap_by_chance": gap_by_chance(by_race),
        "gender_accuracy_by_race": {
            race: {
                "faces": faces,
                "accuracy": round(accuracy, 6),
                "interval": wilson(round(accuracy * faces), faces),
            }
            for race, (faces, accuracy) in by_race.items()
        },
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
