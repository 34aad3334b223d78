"""Gender accuracy across races and between women and men (sparkface.evaluate.fairness)."""

from __future__ import annotations

from sparkface.core.contract import GENDERS, RACES
from sparkface.evaluate.fairness import (
    fairness_table,
    gender_accuracy_by_race,
    gender_gaps,
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
