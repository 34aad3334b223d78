"""Gender accuracy across races and between women and men (sparkface.evaluate.fairness)."""

from __future__ import annotations

import numpy as np

from sparkface.core.contract import GENDERS, RACES
from sparkface.evaluate.fairness import (
    fairness_table,
    gender_accuracy_by_race,
    gender_gaps,
    races_gap_intervals,
    races_gap_table,
)


def metrics(accuracy: dict[tuple[str, str], float], faces: int = 100) -> dict:
    rows = [
        {
            "race": race,
            "gender": gender,
            "faces": faces,
            "gender_accuracy": accuracy.get((race, gender), 0.95),
        }
        for race in RACES
        for gender in GENDERS
    ]
    return {"by_race_gender": rows}


def test_a_race_pools_its_women_and_men_by_their_counts():
    rows = metrics({})["by_race_gender"]
    rows[2] = {**rows[2], "faces": 300, "gender_accuracy": 0.99}  # black male
    rows[3] = {**rows[3], "faces": 100, "gender_accuracy": 0.91}  # black female
    faces, accuracy = gender_accuracy_by_race({"by_race_gender": rows})["black"]
    assert faces == 400 and abs(accuracy - 0.97) < 1e-9


def test_gaps_name_the_best_and_worst_race_and_the_widest_women_men_gap():
    gaps = gender_gaps(
        metrics(
            {
                ("asian", "male"): 0.90,
                ("asian", "female"): 0.92,
                ("others", "male"): 0.88,
                ("others", "female"): 0.98,
            }
        )
    )
    assert gaps["worst_race"] == "asian" and gaps["best_race"] == "white"
    assert gaps["between_races"] == 4.0  # 95.0 - 91.0
    assert gaps["within_race_at"] == "others" and gaps["within_race"] == 10.0


def test_the_table_has_a_row_per_model_with_its_gaps():
    table = fairness_table({"before": metrics({("black", "female"): 0.90}), "after": metrics({})})
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].count("|") == 14
    assert lines[2].startswith("| before | 95.0 | 95.0 | 95.0 | 90.0 |")
    assert lines[2].endswith("| 2.5 (white–black) | 5.0 (black) |")
    assert lines[3].endswith("| 0.0 (white–white) | 0.0 (white) |")


def faces_with_accuracy(accuracy: dict[str, float], per_race: int) -> tuple[dict, dict]:
    """Predictions and labels for `per_race` faces a race, each race's gender right on the share
    `accuracy` gives (0.95 where it gives none)."""
    race = np.repeat(np.arange(len(RACES)), per_race)
    gender = np.tile(np.arange(per_race) % 2, len(RACES))
    predicted = gender.copy()
    for index, name in enumerate(RACES):
        wrong = round(per_race * (1 - accuracy.get(name, 0.95)))
        predicted[index * per_race : index * per_race + wrong] ^= 1
    return {"gender": np.eye(2)[predicted]}, {"gender": gender, "race": race}


def test_the_races_gap_has_a_bootstrap_interval_and_a_paired_difference():
    wide, truth = faces_with_accuracy({"asian": 0.85}, per_race=400)
    narrow, _ = faces_with_accuracy({"asian": 0.94}, per_race=400)
    gaps = races_gap_intervals({"wide": wide, "narrow": narrow, "again": wide}, truth)
    # The point figures are the plain gaps: 95 - 85 and 95 - 94 points.
    assert gaps["wide"]["gap"] == 10.0 and gaps["narrow"]["gap"] == 1.0
    assert gaps["wide"]["low"] < 10.0 < gaps["wide"]["high"]
    # The max over races of noisy accuracies: a gap of 1 point is mostly noise at 400 faces.
    assert gaps["narrow"]["low"] < 1.5 < gaps["narrow"]["high"]
    assert gaps["narrow"]["minus_first"] == -9.0
    assert gaps["narrow"]["minus_first_high"] < 0  # narrower beyond the noise
    assert gaps["again"]["minus_first"] == 0.0
    assert gaps["again"]["minus_first_low"] == gaps["again"]["minus_first_high"] == 0.0


def test_a_few_faces_a_race_make_a_wide_interval():
    few, truth = faces_with_accuracy({"asian": 0.85}, per_race=40)
    many, truth_many = faces_with_accuracy({"asian": 0.85}, per_race=4000)
    width = {
        name: gap["high"] - gap["low"]
        for name, gap in (
            ("few", races_gap_intervals({"m": few}, truth)["m"]),
            ("many", races_gap_intervals({"m": many}, truth_many)["m"]),
        )
    }
    assert width["few"] > 5 * width["many"]


def test_the_races_gap_table_has_a_row_per_model():
    wide, truth = faces_with_accuracy({"asian": 0.85}, per_race=400)
    lines = races_gap_table({"wide": wide, "same": wide}, truth).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| wide | 10.0 | ")
    assert lines[3].endswith("| +0.0 (+0.0 to +0.0) |")
