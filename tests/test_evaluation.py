from __future__ import annotations

import numpy as np
import pytest

from sparkface.evaluate.metrics import compute_metrics

GROUPS = ("7-12", "13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")


def one_hot(indices, size, confidence):
    probabilities = np.full((len(indices), size), (1 - confidence) / (size - 1))
    probabilities[np.arange(len(indices)), indices] = confidence
    return probabilities


@pytest.fixture
def metrics():
    labels = {
        "age_group": np.array([0, 3, 3, 7]),
        "gender": np.array([0, 1, 1, 0]),
        "race": np.array([0, 1, 2, 0]),
        "age": np.array([10, 30, 28, 70]),
    }
    predictions = {
        "age_group": one_hot([0, 4, 1, 7], 8, 0.9),  # exact 2/4, within one 3/4
        "gender": one_hot([0, 1, 0, 0], 2, 0.8),  # 3/4
        "race": one_hot([0, 1, 2, 3], 5, 0.6),  # 3/4
        "age": np.array([12.0, 30.0, 20.0, 60.0]),  # errors 2, 0, 8, 10
    }
    return compute_metrics(predictions, labels, GROUPS)


def test_accuracy_within_one_and_mae(metrics):
    assert metrics["faces"] == 4
    assert metrics["age_group_accuracy"] == 0.5
    assert metrics["age_group_within_one"] == 0.75
    assert metrics["gender_accuracy"] == 0.75
    assert metrics["race_accuracy"] == 0.75
    assert metrics["age_mae_years"] == 5.0


def test_calibration_error_is_the_confidence_gap(metrics):
    # every gender prediction says 0.8 and 3 of 4 are right: |0.75 - 0.8|
    assert metrics["calibration_error"]["gender"] == pytest.approx(0.05)
    assert metrics["calibration_error"]["age_group"] == pytest.approx(0.4)


def test_per_class_precision_recall_and_confusion(metrics):
    race = metrics["per_class"]["race"]
    assert race["white"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert race["indian"] == {"precision": 0.0, "recall": None, "support": 0}
    assert metrics["confusion"]["gender"] == [[2, 0], [1, 1]]


def test_results_by_race_and_gender(metrics):
    groups = {(g["race"], g["gender"]): g for g in metrics["by_race_gender"]}
    assert set(groups) == {("white", "male"), ("black", "female"), ("asian", "female")}
    white_men = groups[("white", "male")]
    assert white_men["faces"] == 2
    assert white_men["race_accuracy"] == 0.5
    assert white_men["age_mae_years"] == 6.0


def test_shares_counted_and_from_the_mean_probability(metrics):
    gender = metrics["shares"]["gender"]
    # Two men and two women; three faces called male at 0.8, one female at 0.8.
    assert gender["classes"]["male"] == {"true": 0.5, "counted": 0.75, "mean_probability": 0.65}
    assert gender["distance"] == {"counted": 0.25, "mean_probability": 0.15}
    age_group = metrics["shares"]["age_group"]
    assert age_group["classes"]["25-34"]["true"] == 0.5
    assert age_group["classes"]["25-34"]["counted"] == 0.0
    # Counted: 7-12 and 65+ right, a quarter each in 13-17 and 35-44 instead of half in 25-34.
    assert age_group["distance"]["counted"] == 0.5


@pytest.mark.parametrize(
    "where, given, mode",
    [
        (["--source", "fairface"], [], "detect"),  # photos: each face found, as scoring does
        (["--source", "utkface"], [], "aligned"),  # crops
        (["--input", "faces"], [], "aligned"),  # UTKFace-style crops by their names
        (["--source", "fairface"], ["--faces", "aligned"], "aligned"),  # as told
    ],
)
def test_an_evaluation_finds_faces_as_its_source_holds_them(monkeypatch, where, given, mode):
    # Every evaluation took photos for crops unless told `--faces detect`: a user's own labelled
    # photos were judged on the middle of each picture.
    from tests.conftest import load_job

    job = load_job("evaluate")
    called = {}
    monkeypatch.setattr(job, "load_bundle", lambda model: None)
    monkeypatch.setattr(job, "in_session", lambda name, ingest, work, **_: work(None))
    monkeypatch.setattr(job, "evaluate_folder", lambda *args, **kwargs: called.update(kwargs))
    monkeypatch.setattr(job, "describe", lambda metrics: "")
    job.evaluate_model(job.parse_args([*where, *given, "--output", "out"]))
    assert called["faces"] == mode
