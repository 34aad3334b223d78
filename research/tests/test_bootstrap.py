"""The races gap's bootstrap intervals (research.bootstrap)."""

from __future__ import annotations

import numpy as np

from research.bootstrap import races_gap_intervals, races_gap_table
from sparkface.core.contract import RACES


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
