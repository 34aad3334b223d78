"""How sure an evaluation's figures are (sparkface.evaluate.uncertainty, and where the evaluation
writes them)."""

from __future__ import annotations

import pytest

from sparkface.core.contract import GENDERS, RACES
from sparkface.evaluate.fairness import gap_figures
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.uncertainty import (
    gap_by_chance,
    mcnemar_p,
    mean_difference,
    paired_difference,
    wilson,
)
from tests.test_evaluation import GROUPS, metrics  # noqa: F401 (a fixture)


def test_wilsons_interval_matches_its_closed_form_and_stays_inside_zero_and_one():
    # Agresti & Coull's figures for 0 of 10, and a symmetric middle.
    assert wilson(0, 10) == [0.0, 0.2775]
    assert wilson(10, 10) == [0.7225, 1.0]
    assert wilson(5, 10) == [0.2366, 0.7634]
    low, high = wilson(894, 1000)
    assert low < 0.894 < high and high - low == pytest.approx(0.038, abs=0.001)
    assert wilson(0, 0) is None


def test_the_gap_by_chance_grows_as_the_races_have_fewer_faces():
    equal = {
        race: (faces, 0.9) for race, faces in zip(RACES, (350, 220, 450, 230, 440), strict=True)
    }
    few = {race: (40, 0.9) for race in RACES}
    on_the_test_split = gap_by_chance(equal)
    assert 3.0 < on_the_test_split["median"] < 5.0 < on_the_test_split["p95"] < 8.5
    assert gap_by_chance(few)["median"] > 2 * on_the_test_split["median"]
    assert gap_by_chance(equal) == on_the_test_split  # seeded: the same figures every run
    assert gap_by_chance({"white": (100, 0.9)}) is None


def test_chance_rarely_reaches_a_real_gap_and_always_reaches_none():
    real = {race: (300, 0.92) for race in RACES} | {"black": (220, 0.80)}
    none = {race: (300, 0.90) for race in RACES}
    assert gap_by_chance(real)["chance_of_measured"] < 0.01
    assert gap_by_chance(none)["chance_of_measured"] == 1.0
    assert gap_by_chance(real)["pooled_accuracy"] == pytest.approx(1280 / 1420, abs=1e-4)


def test_metrics_carry_each_accuracys_interval_from_its_counts(metrics):  # noqa: F811
    assert metrics["intervals"]["gender_accuracy"] == wilson(3, 4)
    assert metrics["intervals"]["age_group_accuracy"] == wilson(2, 4)
    assert metrics["intervals"]["age_group_within_one"] == wilson(3, 4)


def by_race_gender(accuracy: dict[str, float], faces: int = 200) -> list[dict]:
    return [
        {"race": race, "gender": gender, "faces": faces, "gender_accuracy": accuracy[race]}
        for race in RACES
        for gender in GENDERS
    ]


def test_the_report_reads_the_gap_against_chance_and_each_race_with_its_interval(
    metrics,  # noqa: F811
    tmp_path,
):
    rows = by_race_gender(
        {"white": 0.95, "black": 0.85, "asian": 0.9, "indian": 0.9, "others": 0.9}
    )
    figures = gap_figures({"by_race_gender": rows})
    assert figures["gender_gap_between_races"] == 10.0
    assert figures["gender_accuracy_by_race"]["black"] == {
        "faces": 400,
        "accuracy": 0.85,
        "interval": wilson(340, 400),
    }
    write_evaluation({**metrics, **figures}, GROUPS, tmp_path, "a test")
    report = (tmp_path / "report.md").read_text()
    chance = figures["gender_gap_by_chance"]
    assert f"would show {chance['median']} points on these faces, {chance['p95']} at" in report
    assert "| black | 400 | 85.0% | 81.2% to 88.2% |" in report
    assert "| gender | 75.0% | 30.1% to 95.4% |" in report
    assert gap_figures({"by_race_gender": rows[:2]}) == {}  # one race: no gap


def test_the_paired_difference_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890: 36 pairs both right, 12 only the first,
    # 2 only the second, none neither; difference 0.2, method 10's interval 0.0569 to 0.3404.
    paired = paired_difference(both=36, before_only=12, after_only=2, neither=0)
    assert paired["difference"] == -0.2
    assert paired["interval"] == pytest.approx([-0.3404, -0.0569], abs=5e-5)
    swapped = paired_difference(both=36, before_only=2, after_only=12, neither=0)
    assert swapped["interval"] == pytest.approx([0.0569, 0.3404], abs=5e-5)
    # McNemar's exact p: 2 P(X <= 2) for X ~ Binomial(14, 1/2) = 2 (1 + 14 + 91) / 2^14.
    assert mcnemar_p(12, 2) == pytest.approx(212 / 16384) and mcnemar_p(3, 3) == 1.0
    assert paired_difference(0, 0, 0, 0) is None


def test_the_mean_difference_has_a_normal_interval_from_sums():
    # Differences 1, 2, 3: mean 2, sample variance 1, half width 1.96 / sqrt(3).
    figures = mean_difference(6.0, 14.0, 3)
    assert figures["difference"] == 2.0
    assert figures["interval"] == pytest.approx([2 - 1.1316, 2 + 1.1316], abs=1e-3)
