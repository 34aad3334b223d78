"""Two models' evaluations compared face by face (sparkface.evaluate.compare, jobs/compare.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sparkface.core.errors import InputError
from sparkface.evaluate.compare import compare_faces, outcomes, write_comparison
from sparkface.evaluate.uncertainty import mean_difference, paired_difference
from tests.conftest import load_job


def per_face(rows: list[dict]) -> pd.DataFrame:
    """A per-face table as `jobs/evaluate.py --per-face` writes it (the columns compared)."""
    base = {
        "true_age": None,
        "true_age_low": 20,
        "true_age_high": 29,
        "true_age_group": None,
        "true_gender": "male",
        "true_race": "white",
        "age_group": "25-34",
        "gender": "male",
        "race": "white",
        "age_years": 25.0,
        "scored": True,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def exact(index: int, **row) -> dict:
    return {"path": f"utk/{index}.jpg", "true_age": 30.0, "true_age_low": 30,
            "true_age_high": 30, "true_age_group": "25-34", **row}  # fmt: skip


@pytest.fixture
def tables(spark):
    # Ten faces with exact ages: before gets gender wrong on 0-2, after on 2 only; the age error
    # grows by 2 years on every face after. Three FairFace-like faces labelled with a bin.
    before = [exact(i, gender="female" if i < 3 else "male", age_years=31.0) for i in range(10)]
    after = [exact(i, gender="female" if i == 2 else "male", age_years=33.0) for i in range(10)]
    binned = [
        {"path": "ff/a.jpg", "true_age_low": 10, "true_age_high": 19, "age_years": 8.0},
        {"path": "ff/b.jpg", "age_years": 35.0},
        {"path": "ff/c.jpg", "true_age_low": 30, "true_age_high": 39, "race": "black"},
    ]
    before += [*binned, {"path": "ff/unscored.jpg"}]  # no face found after
    after += [{**binned[0], "age_years": 25.0}, binned[1], {**binned[2], "race": "white"}]
    after += [{"path": "ff/unscored.jpg", "scored": False}]
    return [spark.createDataFrame(per_face(rows)) for rows in (before, after)]


def test_an_age_below_the_first_bin_is_in_it_as_the_evaluation_counts(tables):
    judged = {row["path"]: row for row in outcomes(tables[0]).collect()}
    assert judged["ff/a.jpg"]["age_bin"] is True  # 8 years: the 10-19 bin's nearest end
    assert judged["ff/b.jpg"]["age_bin"] is False  # 35 years: the next bin, 30-39
    assert judged["ff/c.jpg"]["age_bin"] is False and judged["ff/c.jpg"]["race"] is False
    assert judged["utk/0.jpg"]["age_bin"] is None and judged["utk/0.jpg"]["age_error"] == 1.0


def test_faces_are_paired_by_path_and_each_head_counts_where_the_models_disagree(tables):
    comparison = compare_faces(*tables)
    assert comparison["faces_paired"] == 13 and comparison["scored_by_one_only"] == 1
    heads = comparison["heads"]
    assert heads["gender"] == paired_difference(both=10, before_only=0, after_only=2, neither=1)
    assert heads["race"]["after_only"] == 1 and heads["race"]["faces"] == 13
    assert heads["age_group"]["faces"] == 10 and heads["age_group"]["difference"] == 0.0
    # ff/a leaves its bin (8 -> 25 years); ff/b and ff/c stay out of theirs.
    assert (heads["age_bin"]["faces"], heads["age_bin"]["before_only"]) == (3, 1)
    assert comparison["age_mae_years"] == mean_difference(20.0, 40.0, 10)
    assert comparison["age_mae_years"]["difference"] == 2.0


def test_the_comparison_is_written_as_json_and_a_table(tables, tmp_path):
    comparison = compare_faces(*tables)
    write_comparison(comparison, tmp_path, "after against before")
    assert json.loads((tmp_path / "comparison.json").read_text()) == comparison
    table = (tmp_path / "comparison.md").read_text()
    assert "| gender | 13 | 76.9% | 92.3% | +15.4 (" in table
    assert "Age mean absolute error, after − before: +2.00 years" in table


def test_a_table_that_is_not_an_evaluations_per_face_table_is_named(spark):
    with pytest.raises(InputError, match="lacks columns"):
        outcomes(spark.createDataFrame(pd.DataFrame({"path": ["a.jpg"], "scored": [True]})))


def test_evaluations_of_different_faces_are_refused(tables, spark):
    others = spark.createDataFrame(per_face([exact(100), exact(101)]))
    with pytest.raises(InputError, match="share no scored face"):
        compare_faces(tables[0], others)


def test_the_job_stops_with_exit_2_where_an_evaluation_has_no_per_face_table(tmp_path, capfd):
    (tmp_path / "a" / "faces").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    job = load_job("compare")
    arguments = ["--before", str(tmp_path / "a"), "--after", str(tmp_path / "b")]
    assert job.main([*arguments, "--output", str(tmp_path / "out")]) == 2
    assert "evaluate with --per-face first" in capfd.readouterr().err
