"""Tables for choosing between models (research.selection, jobs/compare_models.py,
jobs/split_metrics.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from research.selection import (
    chance_table,
    chance_within,
    fair_model_chance,
    fair_model_note,
    gaps_table,
    paired_gaps,
    runs_table,
    split_metrics,
    split_table,
)
from sparkface.core.errors import InputError
from sparkface.core.package import load_model_file, save_package
from sparkface.evaluate.split import evaluate_split
from sparkface.train.ensemble import average_models
from tests.test_ensemble import GROUPS, descriptor, member, write_split

METRICS = {
    "faces": 1788,
    "gender_accuracy": 0.9553,
    "race_accuracy": 0.8302,
    "age_group_accuracy": 0.5632,
    "age_group_within_one": 0.9228,
    "age_mae_years": 5.8123,
}


def test_runs_table_has_a_row_of_figures_per_run(tmp_path):
    for name, epochs in (("a", 30), ("b", 36)):
        folder = tmp_path / name
        folder.mkdir()
        summary = {
            "metrics": METRICS,
            "training": {"epochs_run": epochs, "seconds_per_epoch": 61.4},
        }
        (folder / "summary.json").write_text(json.dumps(summary))
    table = runs_table({"first": tmp_path / "a", "second": tmp_path / "b"}).splitlines()
    assert table[0].startswith("| model | test faces | gender | race | age group |")
    assert table[2] == "| first | 1788 | 95.5% | 83.0% | 56.3% | 92.3% | 5.81 | 30 | 61 |"
    assert table[3].startswith("| second | 1788 |") and table[3].endswith("| 36 | 61 |")
    with pytest.raises(InputError, match="no training summary"):
        runs_table({"gone": tmp_path / "missing"})


@pytest.fixture
def packages(tmp_path):
    for index in (1, 2):
        save_package(member(index), descriptor(f"m{index}"), tmp_path / f"m{index}")
    write_split(tmp_path / "shards", "validation", 10, seed=5)
    write_split(tmp_path / "other", "validation", 10, seed=6)
    return tmp_path


def table(models: list[tuple[str, str]]) -> str:
    return split_table(split_metrics(models, "validation", GROUPS))


def row_figures(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split("|")][1:]


def test_split_table_scores_each_package_and_their_average(packages):
    shards = str(packages / "shards")
    one = str(packages / "m1")
    rows = table([(one, shards), (str(packages / "m2"), shards)])
    rows = rows.splitlines()[2:]
    assert len(rows) == 3 and rows[2].startswith("| average of the models | 10 |")
    expected = evaluate_split(
        load_model_file(packages / "m1" / "model.keras"), shards, "validation", 32, True, GROUPS
    )
    assert row_figures(rows[0])[0] == "10"
    assert row_figures(rows[0])[1] == f"{expected['gender_accuracy']:.1%}"
    assert row_figures(rows[0])[5] == f"{expected['age_mae_years']:.2f}"
    both = average_models([load_model_file(packages / m / "model.keras") for m in ("m1", "m2")])
    averaged = evaluate_split(both, shards, "validation", 32, True, GROUPS)
    # The class heads only: the table averages ages after `predict` clips them at 0, the averaged
    # model before (untrained members predict negative ages).
    assert row_figures(rows[2])[1:5] == [
        f"{averaged['gender_accuracy']:.1%}",
        f"{averaged['race_accuracy']:.1%}",
        f"{averaged['age_group_accuracy']:.1%}",
        f"{averaged['age_group_within_one']:.1%}",
    ]
    # The average of a model with itself is that model.
    twice = table([(one, shards), (one, shards)]).splitlines()
    assert row_figures(twice[2]) == row_figures(twice[4])


def test_split_table_refuses_shards_of_other_faces(packages):
    models = [
        (str(packages / "m1"), str(packages / "shards")),
        (str(packages / "m2"), str(packages / "other")),
    ]
    with pytest.raises(InputError, match="not the same faces"):
        table(models)


def one_hot_rows(classes: list[int], count: int) -> np.ndarray:
    return np.eye(count)[classes]


def gender_wrong_on(wrong: int, faces: int) -> tuple[dict, dict, dict]:
    """Labels, a reference right on every face, and another model wrong on gender for `wrong`
    faces (and right elsewhere), as (truth, reference, other)."""
    truth = {
        "gender": np.zeros(faces, int),
        "race": np.ones(faces, int),
        "age_group": np.full(faces, 2),
        "age": np.full(faces, 30),
    }
    reference = {
        "gender": one_hot_rows([0] * faces, 2),
        "race": one_hot_rows([1] * faces, 5),
        "age_group": one_hot_rows([2] * faces, 6),
        "age": np.full(faces, 30.0),
    }
    other = reference | {"gender": one_hot_rows([1] * wrong + [0] * (faces - wrong), 2)}
    return truth, reference, other


def test_paired_gaps_measure_the_shortfall_per_head_with_an_interval():
    truth, reference, other = gender_wrong_on(20, 200)  # 10% of the faces wrong
    other = other | {"age": np.full(200, 32.0)}

    gaps = paired_gaps(reference, other, truth)

    assert gaps["gender"]["gap"] == 10.0
    assert gaps["gender"]["low"] < 10.0 < gaps["gender"]["high"]
    assert gaps["gender"]["low"] > 5.0  # 20 faces of 200 wrong: not noise
    assert gaps["race"] == {"gap": 0.0, "low": 0.0, "high": 0.0}
    assert gaps["age"] == {"gap": 2.0, "low": 2.0, "high": 2.0}  # years of error more
    assert paired_gaps(other, reference, truth)["gender"]["gap"] == -10.0
    rows = gaps_table({"teacher": reference, "student": other}, truth).splitlines()
    assert rows[2].startswith("| student | +10.00 (")
    assert "+2.00 (+2.00 to +2.00) |" in rows[2]


def test_the_chance_of_meeting_the_goals_on_a_fresh_set_of_faces():
    truth, reference, other = gender_wrong_on(0, 1000)
    assert chance_within(reference, other, truth, 3125, draws=200) == dict.fromkeys(
        ("age_group", "gender", "race", "age", "races_gap", "heads", "all"), 1.0
    )
    truth, reference, other = gender_wrong_on(100, 1000)  # 10 points short in gender
    chances = chance_within(reference, other, truth, 3125, draws=200)
    assert chances["gender"] == 0.0 and chances["race"] == 1.0 and chances["races_gap"] == 1.0
    assert chances["heads"] == 0.0 and chances["all"] == 0.0
    truth, reference, other = gender_wrong_on(5, 1000)  # exactly at the goal: a coin toss
    assert 0.3 < chance_within(reference, other, truth, 3125, draws=400)["gender"] < 0.8
    table = chance_table({"teacher": reference, "student": other}, truth, 3125).splitlines()
    assert table[0] == (
        "| model | gender | race | age group | age MAE | every head | races gap <= 3 | every goal |"
    )
    cells = table[2].strip("| ").split(" | ")
    assert cells[0] == "student" and cells[2:5] + cells[6:7] == ["100%"] * 4
    assert 30 < int(cells[1].rstrip("%")) < 80 and cells[5] == cells[7] == cells[1]


def test_a_large_fresh_set_is_no_surer_than_the_faces_measured():
    """One face in 400 short (0.25 points): a fresh set of 100,000 faces would all but certainly
    stay within half a point if the 400 faces were the whole truth, but they may hide more; the
    first level of the bootstrap keeps that doubt (a face drawn 3 times or more: ~8%)."""
    truth, reference, other = gender_wrong_on(1, 400)
    chance = chance_within(reference, other, truth, 100_000, draws=400)["gender"]
    assert 0.8 < chance < 0.97


def test_the_chance_of_a_narrow_gap_between_races_is_the_models_own():
    """Two races of 1,000 faces: the other model is right on every face of the first and wrong
    on `wrong` faces of the second; the reference is right everywhere."""

    def models(wrong: int) -> tuple[dict, dict, dict]:
        """(reference, other, truth), as chance_within takes them."""
        truth, reference, other = gender_wrong_on(0, 2000)
        truth["race"] = np.repeat([0, 1], 1000)
        reference["race"] = one_hot_rows(list(truth["race"]), 5)
        genders = [0] * 1000 + [1] * wrong + [0] * (1000 - wrong)
        other = reference | {"gender": one_hot_rows(genders, 2)}
        return reference, other, truth

    wide = chance_within(*models(100), 3125, draws=200)  # a 10-point gap
    assert wide["races_gap"] == 0.0 and wide["all"] == 0.0
    _, other, truth = models(100)
    level = chance_within(other, other, truth, 3125, draws=200)  # as good as itself, gap and all
    assert level["heads"] == 1.0 and level["races_gap"] == 0.0 and level["all"] == 0.0
    narrow = chance_within(*models(10), 3125, draws=200)  # 1 point: ~3 faces in a fresh race
    assert narrow["races_gap"] > 0.95


def test_a_model_with_no_gap_between_races_still_meets_the_gap_goal_only_by_chance():
    """The noise of the faces alone: a race of 50 faces a set moves its accuracy by ~3 points, one
    of 5,000 by ~0.3; a race missing from the faces is missing from every fresh set too."""
    truth = {"race": np.repeat([0, 1, 2, 3, 4], [40, 30, 15, 10, 5])}
    small, large = (fair_model_chance(truth, 0.95, faces, draws=4000) for faces in (500, 50_000))
    assert 0.03 < small < 0.3 and large > 0.99
    assert fair_model_chance(truth, 1.0, 500, draws=1000) == 1.0  # nobody wrong: no noise
    assert fair_model_chance({"race": np.zeros(100, int)}, 0.95, 500, draws=1000) == 1.0
    assert fair_model_chance({"race": np.repeat([0, 4], 50)}, 0.95, 50_000, draws=1000) > 0.99
    truth, reference, other = gender_wrong_on(50, 1000)  # the first model right on 95%
    truth["race"] = np.repeat([0, 1, 2, 3, 4], [400, 300, 150, 100, 50])
    note = fair_model_note({"teacher": other, "student": reference}, truth, 500)
    assert note.startswith("A model right on 95.0% of genders in every race")
    assert f"with a chance of {100 * fair_model_chance(truth, 0.95, 500):.0f}%" in note
