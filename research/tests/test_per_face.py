"""research/benchmarks/per_face.py: the per-face tables count what the evaluation wrote, and
fitted cuts between age bins find a shift that is there and gain nothing where there is none."""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.benchmarks.per_face import (
    bin_positions,
    fit_cuts,
    gender_shift_lines,
    main,
    recalibration_gain,
)


def _faces(ages: np.ndarray, lows: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    count = len(ages)
    return pd.DataFrame(
        {
            "path": [f"file:/faces/{i:05d}.jpg" for i in range(count)],
            "true_age": np.full(count, np.nan),
            "true_age_low": lows.astype(float),
            "true_gender": ["male"] * count,
            "gender": np.where(right, "male", "female"),
            "true_race": np.where(np.arange(count) % 2 == 0, "black", "white"),
            "age_years": ages,
            "scored": True,
        }
    )


def test_cuts_fitted_on_ages_said_five_years_too_old_move_by_five():
    rng = np.random.default_rng(1)
    lows = rng.choice([10, 20, 30, 40], size=2000)
    truth = bin_positions(lows.astype(float), np.array([19.5, 29.5, 39.5]))
    ages = np.round(lows + rng.uniform(0, 9.4, size=lows.size) + 5)
    cuts = fit_cuts(ages, truth, np.array([19.5, 29.5, 39.5]))
    # Ages 15-24 are bin 10-19, 25-34 bin 20-29: any cut in (24, 25] is right.
    assert all(low < cut <= low + 1 for cut, low in zip(cuts, [24, 34, 44], strict=True))


def test_a_shift_is_found_on_held_out_faces_and_no_shift_gains_nothing():
    rng = np.random.default_rng(2)
    lows = rng.choice([10, 20, 30, 40], size=1600)
    right = np.ones(lows.size, dtype=bool)
    honest = lows + rng.uniform(0, 9.4, size=lows.size)
    shifted = _faces(honest + 5, lows, right)
    gain = recalibration_gain(shifted, halves=2)
    assert gain["fitted_inside"] > gain["given_inside"] + 30
    assert gain["mean_age"][10] > 19
    gain = recalibration_gain(_faces(honest, lows, right), halves=2)
    assert gain["given_inside"] == 100.0 and gain["fitted_inside"] >= 99.0


def test_teenagers_gender_is_counted_by_race_and_gender(tmp_path, capsys):
    lows = np.array([10, 10, 10, 20, 20, 20])
    right = np.array([True, False, False, True, True, False])
    faces = _faces(lows + 5.0, lows, right)
    (tmp_path / "faces").mkdir()
    faces.to_parquet(tmp_path / "faces" / "part-0.parquet")
    assert main([str(tmp_path), "--halves", "1"]) == 0
    printed = capsys.readouterr().out
    assert "6 faces; gender 50.0%" in printed
    assert "black, male: 1 of 2" in printed and "white, male: 0 of 1" in printed
    assert "20: 66.7% of 3" in printed


def test_a_shift_of_the_log_odds_turns_the_faces_it_crosses():
    # Three men and one woman whose P(female) is 0.6: a shift of 0.5 calls them all men.
    faces = _faces(np.full(4, 25.0), np.full(4, 20), np.ones(4, dtype=bool))
    faces["true_gender"] = ["male", "male", "male", "female"]
    faces["probabilities"] = [{"gender": [("male", 0.4), ("female", 0.6)]}] * 4
    before, after = gender_shift_lines(faces, [0.0, 0.5])
    assert "− 0: 25.0%" in before and "men 0.0, women 100.0" in before
    assert "− 0.5: 75.0%" in after and "men 100.0, women 0.0" in after
