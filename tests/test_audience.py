from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from sparkface.audience.calibration import load_calibration, load_likeness, write_calibration
from sparkface.audience.likeness import fit_source_classifier, multinomial_regression
from sparkface.audience.report import render_report, report_data
from sparkface.audience.shares import (
    HeadCalibration,
    corrected_share,
    estimate,
    fit_recalibration,
    merge_classes,
    total_variation,
    unshrunk_shares,
)
from sparkface.audience.tables import audience_shares, audience_tables
from sparkface.core.config import AudienceConfig, ConfigError, load_audience
from sparkface.core.contract import DEFAULT_AGE_GROUPS, GENDERS, RACES
from sparkface.core.images import capture_time
from sparkface.score.transform import OUTPUT_SCHEMA

CLASSES = {"age_group": list(DEFAULT_AGE_GROUPS), "gender": list(GENDERS), "race": list(RACES)}


def biased_model(truth: np.ndarray, classes: int, rng, bias: float = 0.8) -> np.ndarray:
    """Probabilities of a model that knows the true class but leans to class 0."""
    logits = rng.normal(0, 1, (len(truth), classes))
    logits[np.arange(len(truth)), truth] += 1.5
    logits[:, 0] += bias
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def test_correction_recovers_shares_that_averaging_gets_wrong():
    rng = np.random.default_rng(0)
    calibration_truth = rng.integers(0, 3, 3000)
    calibration = HeadCalibration(
        ("a", "b", "c"), calibration_truth, biased_model(calibration_truth, 3, rng)
    ).fit(variants=5)
    truth = rng.choice(3, 2000, p=[0.1, 0.3, 0.6])
    true_shares = np.bincount(truth, minlength=3) / len(truth)
    probabilities = biased_model(truth, 3, rng)
    shares = estimate(probabilities, calibration, draws=100)
    assert total_variation(shares.share, true_shares) < 0.03
    assert total_variation(shares.averaged, true_shares) > 0.1  # the bias the correction removes
    assert total_variation(shares.counted, true_shares) > 0.1
    assert np.all(shares.low <= shares.share) and np.all(shares.share <= shares.high)
    assert np.isclose(shares.share.sum(), 1) and shares.corrected


def test_shrinkage_pulls_a_window_towards_the_calibration_mix():
    rng = np.random.default_rng(2)
    calibration_truth = rng.integers(0, 3, 3000)
    calibration = HeadCalibration(
        ("a", "b", "c"), calibration_truth, biased_model(calibration_truth, 3, rng)
    ).fit(variants=0)
    truth = np.zeros(60, dtype=int)  # a window of class a only
    probabilities = biased_model(truth, 3, rng)
    free = estimate(probabilities, calibration).share
    shrunk = estimate(probabilities, calibration, pseudo_faces=60).share
    prior = calibration.fitted.prior
    assert free[0] > 0.9 and prior[0] + 0.1 < shrunk[0] < free[0] - 0.1
    # Towards another centre: a night's mix, say, of class c only.
    centre = np.array([0.0, 0.0, 1.0])
    towards = estimate(probabilities, calibration, pseudo_faces=60, centre=centre).share
    assert 0.3 < towards[2] < 0.7 and towards[0] < shrunk[0] - 0.2
    unshrunk, variance = unshrunk_shares(probabilities, calibration)
    np.testing.assert_allclose(unshrunk, free)
    assert np.all(variance >= 0) and variance.max() < 0.05


def test_intervals_hold_the_true_share_about_as_often_as_they_say():
    rng = np.random.default_rng(1)
    calibration_truth = rng.integers(0, 3, 2000)
    calibration = HeadCalibration(
        ("a", "b", "c"), calibration_truth, biased_model(calibration_truth, 3, rng)
    ).fit(variants=10)
    held = total = 0
    widths = {True: 0.0, False: 0.0}
    for draw in range(60):
        truth = rng.choice(3, 300, p=rng.dirichlet(np.ones(3)))
        true_shares = np.bincount(truth, minlength=3) / len(truth)
        probabilities = biased_model(truth, 3, rng)
        shares = estimate(probabilities, calibration, draws=100, seed=draw)
        held += int(((shares.low <= true_shares) & (true_shares <= shares.high)).sum())
        total += 3
        for realised in widths:
            of = estimate(probabilities, calibration, realised=realised)
            widths[realised] += float((of.high - of.low).mean())
    assert 0.88 <= held / total <= 0.99
    # The window's own shares vary less than the mix its faces were drawn from.
    assert widths[True] < 0.85 * widths[False]


def test_a_model_that_is_always_right_knows_the_window_exactly():
    rng = np.random.default_rng(3)
    calibration_truth = rng.integers(0, 2, 1000)
    certain = np.eye(2)[calibration_truth] * 0.98 + 0.01
    calibration = HeadCalibration(("a", "b"), calibration_truth, certain).fit(variants=0)
    truth = rng.integers(0, 2, 300)
    window = estimate(np.eye(2)[truth] * 0.98 + 0.01, calibration)
    mix = estimate(np.eye(2)[truth] * 0.98 + 0.01, calibration, realised=False)
    assert np.allclose(window.share, np.bincount(truth) / 300, atol=0.005)
    assert (window.high - window.low).max() < 0.01 < 0.05 < (mix.high - mix.low).min()


def test_a_correction_that_depends_on_the_source_widens_the_interval(tmp_path):
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 1500)
    leaning = [biased_model(truth[:600], 3, rng), biased_model(truth[600:1200], 3, rng, 2.0)]
    probabilities = np.concatenate(leaning + [biased_model(truth[1200:], 3, rng)])
    sources = np.array(["photos"] * 600 + ["crops"] * 600 + ["few"] * 300)
    sources[-100:] = "fewer"  # 200 faces of "few", 100 of "fewer": too few for a fit of its own
    calibration = HeadCalibration(("a", "b", "c"), truth, probabilities, sources)
    fitted = calibration.fit(variants=5, on=["photos"])
    assert sorted(fitted.domains) == ["crops", "few", "photos"]
    assert np.allclose(fitted.fitted.prior, calibration.only(["photos"]).fit(0).fitted.prior)
    assert np.isclose(fitted.fitted.scale, fitted.domains["photos"].scale)
    window = biased_model(rng.integers(0, 3, 300), 3, rng)
    wide = estimate(window, fitted)
    narrow = estimate(window, dataclasses.replace(fitted, domains={}))
    assert np.allclose(wide.share, narrow.share)
    assert ((wide.high - wide.low) > (narrow.high - narrow.low) + 0.02).all()
    write_calibration(tmp_path, {"race": fitted}, [])
    loaded = load_calibration(tmp_path)["race"]
    assert loaded.fit_on == ("photos",) and sorted(loaded.domains) == sorted(fitted.domains)
    assert np.allclose(estimate(window, loaded).high, wide.high, atol=1e-4)
    with pytest.raises(ValueError, match="no labelled faces of the sources"):
        calibration.fit(on=["elsewhere"])


def test_faces_are_corrected_by_the_labelled_source_they_are_like(tmp_path):
    rng = np.random.default_rng(5)

    def seen(truth, source):
        """Photos: a model leaning to class 0; crops: surer of itself, leaning to class 2."""
        if source == "photos":
            return biased_model(truth, 3, rng, 1.0)
        logits = 2 * rng.normal(0, 1, (len(truth), 3))
        logits[np.arange(len(truth)), truth] += 5.0
        logits[:, 2] += 2.0
        odds = np.exp(logits - logits.max(axis=1, keepdims=True))
        return odds / odds.sum(axis=1, keepdims=True)

    truth = rng.integers(0, 3, 2400)
    names = np.array(["photos"] * 1200 + ["crops"] * 1200)
    probabilities = np.concatenate([seen(truth[:1200], "photos"), seen(truth[1200:], "crops")])
    calibration = HeadCalibration(("a", "b", "c"), truth, probabilities, names)
    calibration = calibration.fit(variants=5, on=["photos"])
    likeness = fit_source_classifier({"race": probabilities}, names)
    assert likeness.sources == ("crops", "photos")
    window_truth = rng.choice(3, 300, p=[0.6, 0.3, 0.1])
    true_shares = np.bincount(window_truth, minlength=3) / 300
    window = seen(window_truth, "crops")
    like = likeness.window({"race": window})
    assert like["crops"].mean() > 0.8
    corrected = estimate(window, calibration, likeness=like)
    as_photos = estimate(window, calibration)
    assert total_variation(corrected.share, true_shares) < 0.03
    assert total_variation(as_photos.share, true_shares) > 0.08
    assert np.all(corrected.low <= true_shares) and np.all(true_shares <= corrected.high)
    write_calibration(tmp_path, {"race": calibration}, [], likeness)
    loaded = load_likeness(tmp_path)
    assert np.allclose(loaded.window({"race": window})["crops"], like["crops"], atol=1e-4)
    assert load_likeness(tmp_path / "elsewhere") is None
    assert fit_source_classifier({"race": probabilities}, np.full(2400, "one")) is None
    # A classifier fitted on another model's classes is refused before any face is read.
    with pytest.raises(ValueError, match=r"reads 3 probabilities of \['race'\], the model gives 5"):
        audience_shares(None, CLASSES, None, AudienceConfig(), likeness)


def test_the_multinomial_regression_separates_classes_it_can_see():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    features = rng.normal(size=(600, 4))
    features[:, 0] += 3 * (labels == 1)
    features[:, 1] += 3 * (labels == 2)
    weights, bias = multinomial_regression(features, np.eye(3)[labels], np.zeros(3), penalty=0.001)
    assert ((features @ weights + bias).argmax(axis=1) == labels).mean() > 0.9


def test_a_recalibration_fitted_on_weighted_faces_holds_their_weighted_shares():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, 2000)
    probabilities = biased_model(truth, 3, rng)
    weight = rng.uniform(0.2, 3.0, len(truth))
    for counted in (None, weight):
        fit = fit_recalibration(truth, probabilities, steps=3000, weight=counted)
        counted = np.ones(len(truth)) if counted is None else counted
        # The likelihood's stationary point in the biases: the faces' (weighted) probabilities
        # sum to their (weighted) classes.
        np.testing.assert_allclose(
            counted @ fit.apply(probabilities), np.bincount(truth, weights=counted), rtol=1e-3
        )
        shares = np.bincount(truth, weights=counted) / counted.sum()
        assert np.allclose(fit.prior, shares, atol=1e-3)


def test_a_correction_refitted_on_faces_like_the_window_s_race():
    # The model reads the class of white faces (race 0) right, and calls black faces' (race 1)
    # class 0 far more often: a window of black faces needs their correction, not the mix's.
    rng = np.random.default_rng(12)

    def faces(race: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return np.where(
            (race == 1)[:, None], biased_model(truth, 3, rng, 2.5), biased_model(truth, 3, rng, 0.0)
        )

    race, truth = rng.integers(0, 2, 3000), rng.integers(0, 3, 3000)
    race[:100] = -1  # race unknown: counted once
    calibration = HeadCalibration(
        ("a", "b", "c"), truth, faces(race, truth), others={"race": race}
    ).fit(variants=0)
    window_truth = rng.integers(0, 3, 400)
    window = faces(np.ones(400, int), window_truth)
    true = np.bincount(window_truth) / 400
    refitted = calibration.reweighted("race", np.array([0.0, 1.0, 0, 0, 0]))
    assert total_variation(estimate(window, refitted).share, true) < 0.08
    assert total_variation(estimate(window, calibration).share, true) > 0.3
    # Shares under another correction the faces may need: their squared distance widens the
    # interval's variance.
    plain, other = estimate(window, refitted), np.array([0.2, 0.3, 0.5])
    wide = estimate(window, refitted, alternative=other)
    np.testing.assert_allclose(wide.share, plain.share)
    upper = (wide.high - wide.share) / 1.959964  # the upper ends: none is clipped at 1 here
    np.testing.assert_allclose(
        upper**2, ((plain.high - plain.share) / 1.959964) ** 2 + (plain.share - other) ** 2
    )
    # The same faces weighted to the calibration's own mix: the same fit.
    own = np.bincount(race[race >= 0], minlength=5) / (race >= 0).sum()
    same = calibration.reweighted("race", own)
    assert np.isclose(same.fitted.scale, calibration.fitted.scale, atol=1e-5)
    assert calibration.reweighted("gender", np.array([0.5, 0.5])) is calibration  # unknown head
    with pytest.raises(ValueError, match="fit the calibration first"):
        dataclasses.replace(calibration, fitted=None).reweighted("race", own)


def test_each_source_s_own_correction_is_refitted_on_faces_like_the_window_s_race():
    # Two labelled sources: crops whose faces know their race (black faces, race 1, read as
    # class 0 far more often) and photos whose race no label gives. Faces like the crops are
    # corrected by the crops' own recalibration: refitted to a window of black faces, it must be
    # the black faces' correction; the photos' stays as it was.
    rng = np.random.default_rng(14)
    race, truth = rng.integers(0, 2, 3000), rng.integers(0, 3, 3000)
    crops = np.where(
        (race == 1)[:, None], biased_model(truth, 3, rng, 2.5), biased_model(truth, 3, rng, 0.0)
    )
    wild_truth = rng.integers(0, 3, 1000)
    calibration = HeadCalibration(
        ("a", "b", "c"),
        np.concatenate([truth, wild_truth]),
        np.concatenate([crops, biased_model(wild_truth, 3, rng, 1.0)]),
        np.array(["crops"] * 3000 + ["photos"] * 1000),
        others={"race": np.concatenate([race, np.full(1000, -1)])},
    ).fit(variants=0)
    assert set(calibration.domains) == {"crops", "photos"}
    window_truth = rng.integers(0, 3, 400)
    window = biased_model(window_truth, 3, rng, 2.5)
    true = np.bincount(window_truth) / 400
    like = {"crops": np.ones(400), "photos": np.zeros(400)}
    refitted = calibration.reweighted("race", np.array([0.0, 1.0, 0, 0, 0]))
    assert total_variation(estimate(window, refitted, likeness=like).share, true) < 0.08
    assert total_variation(estimate(window, calibration, likeness=like).share, true) > 0.3
    assert refitted.domains["photos"] is calibration.domains["photos"]


def test_merged_classes_round_trip_with_the_faces_other_classes(tmp_path):
    rng = np.random.default_rng(13)
    truth = rng.integers(0, 8, 500)
    ages = HeadCalibration(
        tuple(DEFAULT_AGE_GROUPS), truth, biased_model(truth, 8, rng), others={"race": truth % 5}
    )
    bands = ages.merged(["young", "middle", "old"], [[0, 1], [2, 3, 4], [5, 6, 7]]).fit(3)
    np.testing.assert_array_equal(bands.others["race"], truth % 5)
    write_calibration(tmp_path, {"age_band": bands}, [])
    loaded = load_calibration(tmp_path)["age_band"]
    np.testing.assert_array_equal(loaded.others["race"], truth % 5)
    shares = np.array([0.1, 0.6, 0.1, 0.1, 0.1])
    assert np.isclose(
        loaded.reweighted("race", shares).fitted.scale,
        bands.reweighted("race", shares).fitted.scale,
        atol=1e-3,  # the probabilities are written to 4 decimals
    )
    with pytest.raises(ValueError, match="race's true classes differ in length"):
        HeadCalibration(("a", "b"), truth[:3] % 2, np.full((3, 2), 0.5), others={"race": truth})


def test_without_calibration_shares_are_the_averages_marked_uncorrected():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    shares = estimate(probabilities, None, draws=50)
    assert np.allclose(shares.share, [17 / 30, 13 / 30]) and not shares.corrected
    assert np.allclose(shares.counted, [2 / 3, 1 / 3])


def test_calibration_round_trips_and_a_class_without_faces_keeps_the_identity(tmp_path):
    heads = {
        "gender": HeadCalibration(
            ("male", "female"), np.array([0, 0, 1]), np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
        ),
        "race": HeadCalibration(tuple(RACES), np.array([0]), np.array([[0.5, 0.5, 0, 0, 0]])),
    }
    heads = {head: part.fit(variants=3) for head, part in heads.items()}
    write_calibration(tmp_path, heads, [{"source": "x", "split": "validation"}])
    loaded = load_calibration(tmp_path)
    assert len(loaded["gender"].variants) == 3
    assert np.isclose(loaded["gender"].fitted.scale, heads["gender"].fitted.scale, atol=1e-5)
    assert np.allclose(loaded["gender"].matrix(), [[0.7, 0.3], [0.3, 0.7]])
    assert np.allclose(loaded["race"].matrix()[1:], np.eye(5)[1:])
    assert json.loads((tmp_path / "audience.json").read_text())["measured_on"][0]["source"] == "x"
    assert load_calibration(tmp_path / "elsewhere") is None


def test_capture_times_with_and_without_the_camera_s_offset():
    from io import BytesIO

    from PIL import Image

    def photo(tags=None, first_ifd=None) -> bytes:
        exif = Image.Exif()
        exif.update(first_ifd or {})
        exif.get_ifd(0x8769).update(tags or {})
        buffer = BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
        return buffer.getvalue()

    at, offset = capture_time(photo({0x9003: "2026:12:01 09:20:00", 0x9011: "+05:30"}))
    assert at == datetime(2026, 12, 1, 3, 50, tzinfo=UTC) and offset == "+05:30"
    at, offset = capture_time(photo({0x9003: "2026:12:01 09:20:00"}))
    assert at == datetime(2026, 12, 1, 9, 20, tzinfo=UTC) and offset is None  # the camera's clock
    # DateTime has its own offset; a clock never set is no time, and the next tag is read.
    tags = {0x9003: "0000:00:00 00:00:00", 0x9011: "+05:30", 0x9010: "-08:00"}
    at, offset = capture_time(photo(tags, {0x0132: "2026:12:01 09:20:00"}))
    assert at == datetime(2026, 12, 1, 17, 20, tzinfo=UTC) and offset == "-08:00"
    assert capture_time(photo({0x9003: "    :  :     :  :  "})) == (None, None)
    assert capture_time(photo()) == (None, None)
    assert capture_time(b"not an image") == (None, None)


def test_audience_settings_are_validated(tmp_path):
    assert load_audience().window_minutes == 60
    assert load_audience().timezone == "UTC"
    assert load_audience(changes={"timezone": "Asia/Kolkata"}).timezone == "Asia/Kolkata"
    with pytest.raises(ConfigError, match="'Mars/Olympus' is not a time zone"):
        load_audience(changes={"timezone": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="no group named source"):
        load_audience(changes={"source_pattern": "/screens/([^/]+)/"})
    with pytest.raises(ConfigError, match="min_faces"):
        load_audience(changes={"min_faces": 0})
    with pytest.raises(ConfigError, match="windw_minutes: unknown key"):
        load_audience(changes={"windw_minutes": 30})


def test_age_bands_are_validated_and_fit_the_model_s_groups_or_are_left_out(caplog):
    from sparkface.audience.tables import AGE_BAND, band_groups, with_bands

    bands = load_audience().age_bands
    assert list(bands) == ["7-17", "18-44", "45+"]
    assert band_groups(load_audience(), CLASSES["age_group"]) == [[0, 1], [2, 3, 4], [5, 6, 7]]
    with pytest.raises(ConfigError, match="'35-44' is in '18-44' and '35\\+'"):
        load_audience(changes={"age_bands": {**bands, "35+": ["35-44"]}})
    with pytest.raises(ConfigError, match="'none' names no age group"):
        load_audience(changes={"age_bands": {"none": []}})
    with pytest.raises(ConfigError, match="mix_intervals"):
        load_audience(changes={"mix_intervals": ["age"]})
    assert load_audience().sensitive_to == {"age_band": "race"}
    with pytest.raises(ConfigError, match="age_band to race, which is sensitive itself"):
        load_audience(changes={"sensitive_to": {"age_band": "race", "race": "gender"}})
    with pytest.raises(ConfigError, match="race to race: name another head"):
        load_audience(changes={"sensitive_to": {"race": "race"}})
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 8, 600)
    ages = HeadCalibration(tuple(CLASSES["age_group"]), truth, biased_model(truth, 8, rng))
    classes, calibration, groups = with_bands(CLASSES, {"age_group": ages}, load_audience())
    assert classes[AGE_BAND] == ["7-17", "18-44", "45+"] and groups == [
        [0, 1],
        [2, 3, 4],
        [5, 6, 7],
    ]
    merged = calibration[AGE_BAND]
    assert merged.fitted is not None and merged.classes == ("7-17", "18-44", "45+")
    np.testing.assert_array_equal(merged.truth, np.array([0, 0, 1, 1, 1, 2, 2, 2])[truth])
    np.testing.assert_allclose(merged.probabilities[:, 1], ages.probabilities[:, 2:5].sum(axis=1))
    with pytest.raises(ValueError, match="leave out"):
        ages.merged(["young", "old"], [[0, 1], [2, 3, 4, 5, 6]])
    # Another model's groups: its night gets its tables without bands, and says why.
    other = {**CLASSES, "age_group": ["0-20", "21-40", "41+"]}
    assert with_bands(other, None, load_audience())[0] == other
    assert "not among the model's age groups" in caplog.text
    missing = {"7-17": ["7-12", "13-17"], "18+": ["18-24", "25-34"]}
    assert with_bands(CLASSES, None, load_audience(changes={"age_bands": missing}))[2] == []
    assert "are in no band" in caplog.text
    assert with_bands(CLASSES, None, load_audience(changes={"age_bands": {}}))[0] == CLASSES


def test_the_report_cannot_be_broken_out_of_by_a_source_name():
    evil = "</script><script>alert(1)</script>"
    counts = pd.DataFrame(
        {
            "source": [evil],
            "window_start": [pd.Timestamp("2026-12-01 08:00")],
            "images": [1],
            "images_with_face": [1],
            "faces": [1],
            "errors": [0],
            "images_timed_by_exif": [0],
            "images_timed_by_file": [1],
            "shares_reported": [False],
        }
    )
    shares = pd.DataFrame(columns=["source", "span", "window_start", "head", "class"])
    text = render_report(report_data(counts, shares, {"campaign": "c"}))
    assert evil not in text and text.count("<script") == 2  # the data's and the page's own
    assert "alert(1)" in text  # the name is there, as data


def test_the_report_is_titled_by_its_campaign_night_or_else_by_its_hours():
    counts = pd.DataFrame(
        {
            "source": ["hall", "hall", "door"],
            "window_start": pd.to_datetime(
                ["2026-12-01 08:00", "2026-12-01 11:00", "2026-12-01 09:00"]
            ),
            "images": [1, 1, 1],
            "images_with_face": [1, 1, 1],
            "faces": [1, 1, 1],
            "errors": [0, 0, 0],
            "images_timed_by_exif": [0, 0, 0],
            "images_timed_by_file": [1, 1, 1],
            "shares_reported": [False, False, False],
        }
    )
    shares = pd.DataFrame(columns=["source", "span", "window_start", "head", "class"])

    def title(about):
        text = render_report(report_data(counts, shares, about))
        return text.split('<h1 id="title">')[1].split("</h1>")[0]

    assert title({"campaign": "lobby", "night": "2026-12-01"}) == "Audience: lobby 2026-12-01"
    # A one-off job's output has no campaign: its windows' hours, on the page's clock.
    assert title({}) == "Audience: 2026-12-01 08:00 to 2026-12-01 11:00 (UTC)"
    kolkata = {"timezone": "Asia/Kolkata"}
    assert title(kolkata) == "Audience: 2026-12-01 13:30 to 2026-12-01 16:30 (Asia/Kolkata)"
    assert title({}) != title({"night": "x"}) and title({"night": "x"}) == "Audience: x"
    counts = counts.iloc[:1]
    assert title({}) == "Audience: 2026-12-01 08:00 (UTC)"
    counts = counts.iloc[:0]
    assert title({}) == "Audience"


# ---------------------------------------------------------------------------------------------
# Spark


def scored_row(path, status="ok", captured=None, modified="2026-12-01 08:10", female=0.5, **more):
    probabilities = None
    if status == "ok":
        probabilities = {
            "age_group": dict.fromkeys(DEFAULT_AGE_GROUPS, 1 / len(DEFAULT_AGE_GROUPS)),
            "gender": {"male": 1 - female, "female": female},
            "race": dict.fromkeys(RACES, 0.2),
        }
    return {
        "path": path,
        "file_name": path.rsplit("/", 1)[-1],
        "file_size": 10,
        "modified_at": datetime.fromisoformat(modified).replace(tzinfo=UTC),
        "captured_at": captured and datetime.fromisoformat(captured).replace(tzinfo=UTC),
        "status": status,
        "error": "empty file" if status == "error" else None,
        "probabilities": probabilities,
        **more,
    }


def scored_frame(spark, rows):
    frame = pd.DataFrame(rows)
    for name in OUTPUT_SCHEMA.fieldNames():
        if name not in frame:
            frame[name] = None
    return spark.createDataFrame(frame[OUTPUT_SCHEMA.fieldNames()], OUTPUT_SCHEMA)


@pytest.mark.slow
def test_counts_and_shares_per_source_and_window(spark):
    rows = [
        # lobby, 08:00-09:00 by file time: 12 faces in 6 photos, one photo without a face
        *[
            scored_row(f"file:/in/lobby/a{i}.jpg", face_index=j, female=0.9)
            for i in range(6)
            for j in range(2)
        ],
        scored_row("file:/in/lobby/empty.jpg", status="no_face"),
        # lobby, 09:00-10:00 by EXIF, although the file is from 08:10: 3 faces (too few)
        *[scored_row(f"file:/in/lobby/b{i}.jpg", captured="2026-12-01 09:30") for i in range(3)],
        scored_row("file:/in/lobby/broken.jpg", status="error"),
        # the shop, one face
        scored_row("file:/in/shop/c.jpg", female=0.1),
        # the hall, two windows of 6 faces: too few each, 12 together
        *[
            scored_row(f"file:/in/hall/h{i}.jpg", modified=f"2026-12-01 0{8 + i % 2}:10")
            for i in range(12)
        ],
    ]
    config = AudienceConfig(min_faces=10, draws=50)
    counts, shares = audience_tables(scored_frame(spark, rows), CLASSES, None, config)
    counts = counts.toPandas().sort_values(["source", "window_start"]).reset_index(drop=True)
    assert counts[["source", "images", "images_with_face", "faces", "errors"]].values.tolist() == [
        ["hall", 6, 6, 6, 0],
        ["hall", 6, 6, 6, 0],
        ["lobby", 8, 6, 12, 1],
        ["lobby", 3, 3, 3, 0],
        ["shop", 1, 1, 1, 0],
    ]
    assert counts["time_basis"].tolist() == ["file", "file", "file", "exif", "file"]
    assert counts["shares_reported"].tolist() == [False, False, True, False, False]
    assert counts["window_start"][3] == pd.Timestamp("2026-12-01 09:00")
    assert (counts["window_end"] - counts["window_start"]).eq(pd.Timedelta(hours=1)).all()
    shares = shares.toPandas()
    window = shares[shares["span"] == "window"]
    assert set(window["source"]) == {"lobby"} and window["faces"].unique().tolist() == [12]
    female = window[(window["head"] == "gender") & (window["class"] == "female")]
    assert female["share"].round(6).tolist() == [0.9]
    sums = shares.groupby(["source", "span", "head"])["share"].sum()
    assert np.allclose(sums, 1)
    # The night: the faces of a source's windows with shares, and of its smaller windows where
    # they are enough together (the hall's 12). The lobby's night held its 3 too, and less its
    # window's 12 it gave those 3 faces' own shares; the shop's one face has none.
    night = shares[shares["span"] == "night"].groupby("source")["faces"].unique()
    assert night.map(list).to_dict() == {"hall": [12], "lobby": [12]}
    # Privacy: no path, file name, box or single face in either table.
    for frame in (counts, shares):
        assert not {"path", "file_name", "face_box", "face_landmarks"} & set(frame.columns)
        assert not frame.astype(str).apply(lambda c: c.str.contains("/in/")).any().any()


@pytest.mark.slow
def test_age_bands_are_a_fourth_head_corrected_like_the_others(spark):
    from sparkface.audience.tables import AGE_BAND, with_bands

    rng = np.random.default_rng(2)
    groups = list(DEFAULT_AGE_GROUPS)
    truth, race_truth = rng.integers(0, 8, 800), rng.integers(0, 5, 800)
    ages = HeadCalibration(
        tuple(groups), truth, biased_model(truth, 8, rng), others={"race": race_truth}
    ).fit(variants=3)
    races = HeadCalibration(tuple(RACES), race_truth, biased_model(race_truth, 5, rng)).fit(0)
    faces = biased_model(rng.integers(0, 8, 40), 8, rng)
    seen = biased_model(rng.integers(0, 2, 40), 5, rng)  # white and black faces
    rows = [scored_row(f"file:/in/hall/{i}.jpg") for i in range(40)]
    for row, probabilities, race in zip(rows, faces, seen, strict=True):
        row["probabilities"]["age_group"] = dict(zip(groups, probabilities.tolist(), strict=True))
        row["probabilities"]["race"] = dict(zip(RACES, race.tolist(), strict=True))
    config = AudienceConfig(
        min_faces=10,
        draws=40,
        age_bands=load_audience().age_bands,
        pseudo_faces={"age_group": 100.0, "age_band": 10.0},
        sensitive_to={"age_band": "race"},
    )
    calibration = {"age_group": ages, "race": races}
    _, shares = audience_tables(scored_frame(spark, rows), CLASSES, calibration, config)
    shares = shares.toPandas()
    bands = shares[(shares["span"] == "window") & (shares["head"] == AGE_BAND)]
    assert bands["class"].tolist() == ["7-17", "18-44", "45+"] and bands["corrected"].all()
    _, calibration, indices = with_bands(CLASSES, calibration, config)
    banded = merge_classes(faces, indices)
    # Corrected from the age groups' probabilities, refitted on the labelled faces weighted to
    # the window's corrected race shares.
    race = shares[(shares["span"] == "window") & (shares["head"] == "race")]["share"].to_numpy()
    # Corrected as the age groups' faces merged are; its interval also holds the shares under a
    # correction fitted on those faces weighted to the window's corrected races.
    refitted = calibration[AGE_BAND].reweighted("race", race)
    other = estimate(banded, refitted, pseudo_faces=10.0).share
    np.testing.assert_allclose(corrected_share(banded, refitted, 10.0), other)
    expected = estimate(banded, calibration[AGE_BAND], pseudo_faces=10.0, alternative=other)
    np.testing.assert_allclose(bands["share"], expected.share, atol=1e-6)
    np.testing.assert_allclose(bands["share_low"], expected.low, atol=1e-6)
    np.testing.assert_allclose(bands["share_high"], expected.high, atol=1e-6)
    narrow = estimate(banded, calibration[AGE_BAND], pseudo_faces=10.0)
    assert ((narrow.high - narrow.low) < (expected.high - expected.low) - 1e-4).any()
    np.testing.assert_allclose(bands["share_averaged"], merge_classes(faces, indices).mean(0))
    groups_rows = shares[(shares["span"] == "window") & (shares["head"] == "age_group")]
    assert len(groups_rows) == 8  # the eight groups stay, beside the bands


@pytest.mark.slow
def test_windows_are_cut_by_the_clock_of_the_audience_s_time_zone(spark):
    rows = [
        # The camera's clock, without an offset: 09:20 in Kolkata.
        scored_row("file:/in/lobby/a.jpg", captured="2026-12-01 09:20"),
        # With its offset: 03:50 UTC, 09:20 in Kolkata.
        scored_row("file:/in/lobby/b.jpg", captured="2026-12-01 03:50", captured_offset="+00:00"),
        # By the file's time: 04:45 UTC, 10:15 in Kolkata.
        scored_row("file:/in/lobby/c.jpg", modified="2026-12-01 04:45"),
    ]
    frame = scored_frame(spark, rows)
    kolkata = AudienceConfig(timezone="Asia/Kolkata", draws=20)
    counts = audience_tables(frame, CLASSES, None, kolkata)[0].toPandas()
    counts = counts.sort_values("window_start").reset_index(drop=True)
    # Kolkata's 09:00 and 10:00 (UTC+05:30), as instants.
    assert counts["window_start"].tolist() == [
        pd.Timestamp("2026-12-01 03:30"),
        pd.Timestamp("2026-12-01 04:30"),
    ]
    assert counts["images"].tolist() == [2, 1] and set(counts["timezone"]) == {"Asia/Kolkata"}
    assert (counts["window_end"] - counts["window_start"]).eq(pd.Timedelta(hours=1)).all()
    empty = pd.DataFrame(columns=["source", "span", "window_start", "head", "class"])
    page = report_data(counts, empty, {"timezone": "Asia/Kolkata"})
    assert [w["start"] for w in page["sources"][0]["per_window"]] == [
        "2026-12-01 09:00",
        "2026-12-01 10:00",
    ]
    # On UTC's clock the camera's 09:20 is another hour, and every window starts on the hour.
    counts = audience_tables(frame, CLASSES, None, AudienceConfig(draws=20))[0].toPandas()
    assert sorted(counts["window_start"].dt.hour) == [3, 4, 9]


@pytest.mark.slow
def test_a_path_the_pattern_does_not_match_is_the_unknown_source(spark):
    rows = [
        scored_row("file:/cams/screen-7/a.jpg"),
        scored_row("file:/elsewhere/b.jpg"),
        scored_row("file:/cams/screen-7/c.jpg", status="error"),
    ]
    config = AudienceConfig(source_pattern=r"/cams/(?P<source>screen-\d+)/", draws=20)
    counts, _ = audience_tables(scored_frame(spark, rows), CLASSES, None, config)
    found = {row["source"]: (row["images"], row["faces"]) for row in counts.collect()}
    assert found == {"screen-7": (2, 1), "unknown": (1, 1)}


@pytest.mark.slow
def test_a_night_without_faces_has_counts_and_no_shares(spark):
    rows = [scored_row("file:/in/lobby/a.jpg", status="no_face")]
    counts, shares = audience_tables(scored_frame(spark, rows), CLASSES, None, AudienceConfig())
    assert [(r["images"], r["faces"], r["shares_reported"]) for r in counts.collect()] == [
        (1, 0, False)
    ]
    assert shares.count() == 0
    empty = scored_frame(spark, rows).where(F.lit(False))
    counts, shares = audience_tables(empty, CLASSES, None, AudienceConfig())
    assert counts.count() == 0 and shares.count() == 0


# ---------------------------------------------------------------------------------------------
# A campaign night, and its report in a real browser


@pytest.fixture(scope="module")
def night(spark, tmp_path_factory):
    """A campaign night over two screens' folders (files timed 08:xx and 09:xx, one photo with an
    EXIF capture time at 11:xx), scored by a tiny model calibrated on made-up faces."""
    import os
    import shutil

    from sparkface.core.package import load_bundle
    from sparkface.score.campaigns import Campaign, run_campaign
    from tests.conftest import tiny_model_package, utk_names, write_faces

    root = tmp_path_factory.mktemp("night")
    model = tiny_model_package(root / "model")
    rng = np.random.default_rng(0)
    heads = {}
    for head, names in CLASSES.items():
        truth = rng.integers(0, len(names), 400)
        heads[head] = HeadCalibration(tuple(names), truth, biased_model(truth, len(names), rng))
    write_calibration(model, heads, [{"source": "made-up", "split": "validation"}])
    inbox = root / "inbox"
    names = utk_names(40, seed=4)
    for screen, part in (("screen-a", names[:24]), ("screen-b", names[24:])):
        for index, path in enumerate(write_faces(inbox / screen, part)):
            hour = 8 if index % 2 else 9
            stamp = datetime(2026, 12, 1, hour, 15, tzinfo=UTC).timestamp()
            os.utime(path, (stamp, stamp))
    exif_photo = inbox / "screen-b" / "with-exif.jpg"
    shutil.copy(inbox / "screen-b" / names[24], exif_photo)
    from PIL import Image

    with Image.open(exif_photo) as image:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = "2026:12:01 11:20:00"
        image.save(exif_photo, exif=exif)
    campaign = Campaign(
        name="screens",
        inputs=(str(inbox),),
        output=str(root / "out"),
        batch_size=8,
        faces="aligned",
        audience=AudienceConfig(min_faces=5, draws=40, age_bands=load_audience().age_bands),
    )
    bundle = load_bundle(str(model))
    record = run_campaign(spark, campaign, "2026-12-01", bundle=bundle)
    return root / "out", record, campaign, bundle


def hive(out, tree):
    import duckdb

    return duckdb.sql(
        f"select * from read_parquet('{out}/{tree}/**/*.parquet', hive_partitioning=true)"
    ).df()


@pytest.mark.slow
def test_a_campaign_night_publishes_its_audience_and_report(spark, night):
    from sparkface.score.campaigns import run_campaign

    out, record, campaign, bundle = night
    counts = hive(out, "audience").sort_values(["source", "window_start"])
    assert set(counts["campaign"]) == {"screens"}
    assert counts[["source", "images", "faces"]].values.tolist() == [
        ["screen-a", 12, 12],
        ["screen-a", 12, 12],
        ["screen-b", 8, 8],
        ["screen-b", 8, 8],
        ["screen-b", 1, 1],
    ]
    assert counts["time_basis"].tolist() == ["file"] * 4 + ["exif"]
    assert counts["shares_reported"].tolist() == [True] * 4 + [False]
    shares = hive(out, "audience_shares")
    assert shares["corrected"].all()  # the package's calibration was used
    assert len(shares[shares["span"] == "night"]) == 2 * (8 + 3 + 2 + 5)  # 3 age bands
    report = out / "reports" / "campaign=screens" / "run_date=2026-12-01" / "audience.html"
    assert record["report"] == str(report) and report.is_file()
    runs = pd.read_parquet(out / "runs")
    assert runs["report"].tolist() == [str(report)]
    manifest = json.loads(
        (out / "predictions/campaign=screens/run_date=2026-12-01/_manifest.json").read_text()
    )
    assert manifest["audience"]["windows"] == 5
    # A rerun of the night replaces its audience: the same rows, none twice.
    run_campaign(spark, campaign, "2026-12-01", bundle=bundle, full=True)
    again = hive(out, "audience").sort_values(["source", "window_start"])
    assert (
        again[["source", "images", "faces"]].values.tolist()
        == counts[["source", "images", "faces"]].values.tolist()
    )
    assert len(hive(out, "audience_shares")) == len(shares)


@pytest.mark.slow
def test_the_audience_job_on_a_night_s_predictions_in_a_time_zone(night, tmp_path):
    import subprocess

    from tests.conftest import ROOT, job_environment, spark_submit

    out = night[0]
    # An output given as a URI (hdfs://, s3a://; file:// here), named like a pattern: its report
    # went to a local folder named `file:` beside the job, and `a[1]` is not `a1`.
    written = tmp_path / "a[1]"
    args = ["--predictions", str(out / "predictions"), "--output", f"file://{written}"]
    args += ["--timezone", "Asia/Kolkata", "--min-faces", "5"]
    result = subprocess.run(
        spark_submit("audience.py", *args),
        capture_output=True,
        text=True,
        env=job_environment(),
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = pd.read_parquet(written / "audience")
    assert set(counts["timezone"]) == {"Asia/Kolkata"} and counts["faces"].sum() == 41
    # Kolkata is UTC+05:30: its hours start at half past UTC's.
    assert (counts["window_start"].dt.minute == 30).all()
    page = (written / "report" / "audience.html").read_text()
    assert "Asia/Kolkata" in page and not (ROOT / "file:").exists()
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(
            spark_submit("audience.py", *args[:4], "--timezone", "Mars/Olympus"),
            capture_output=True,
            env=job_environment(),
            cwd=ROOT,
            timeout=600,
            check=True,
        )


@pytest.mark.slow
def test_the_scored_rows_are_found_where_users_point(spark, night, tmp_path):
    # A scoring run's own folder failed on its summary.json ("not a Parquet file"), and a path
    # with no rows as a Java trace: both exit 1.
    from sparkface.audience.run import read_predictions
    from sparkface.core.errors import InputError

    out = night[0]
    rows = read_predictions(spark, str(out / "predictions")).count()
    assert rows > 0 and read_predictions(spark, str(out)).count() == rows  # a campaign's output
    # A later night that scored the same files again (`--full`, or a second campaign on the same
    # cameras) counted each face twice; a file changed under its own name is another photo.
    again = tmp_path / "again" / "predictions"
    shutil.copytree(out / "predictions", again)
    night_one = spark.read.parquet(str(again / "campaign=screens" / "run_date=2026-12-01"))
    changed = sorted(row.file_name for row in night_one.select("file_name").collect())[0]
    touched = F.col("modified_at") + F.expr("interval 1 hour")
    night_two = night_one.withColumn("run_id", F.lit("later")).withColumn(
        "modified_at",
        F.when(F.col("file_name") == changed, touched).otherwise(F.col("modified_at")),
    )
    night_two.write.parquet(str(again / "campaign=screens" / "run_date=2026-12-02"))
    kept = read_predictions(spark, str(again.parent)).toPandas()
    of_changed = night_one.where(F.col("file_name") == changed).count()
    assert len(kept) == rows + of_changed
    assert set(kept[kept["file_name"] != changed]["run_id"]) == {"later"}
    assert sorted(kept[kept["file_name"] == changed]["run_date"].astype(str)) == sorted(
        ["2026-12-01", "2026-12-02"] * of_changed
    )
    one_off = tmp_path / "one-off"
    spark.read.parquet(str(out / "predictions")).limit(3).write.parquet(str(one_off / "parquet"))
    (one_off / "summary.json").write_text("{}\n")
    assert read_predictions(spark, str(one_off)).count() == 3
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "summary.json").write_text("{}\n")
    for nothing in ("missing", "notes"):
        with pytest.raises(InputError, match=f"--predictions .*/{nothing}: no scored rows there"):
            read_predictions(spark, str(tmp_path / nothing))


def browser() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_report_shows_each_source_in_a_real_browser(night, tmp_path):
    import os
    import subprocess

    if browser() is None:
        if os.environ.get("SPARKFACE_BROWSER_TESTS") == "1":
            pytest.fail("SPARKFACE_BROWSER_TESTS=1 but no chromium on PATH")
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium)")
    out = night[0]
    report = out / "reports" / "campaign=screens" / "run_date=2026-12-01" / "audience.html"
    rendered = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            f"file://{report}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = rendered.stdout
    assert 'data-rendered="yes"' in dom, rendered.stderr[-2000:]
    assert dom.count('class="source-row"') == 2
    # Per source: faces per window, and a shares chart per head (both have enough faces).
    assert dom.count('class="faces-chart"') == 2 and dom.count('class="shares-chart"') == 8
    assert dom.count('data-head="age_band"') == 2 and "most common age band" in dom
    assert dom.count('data-faces="12"') == 2 and dom.count('data-faces="1"') == 1
    assert "screen-a" in dom and "screen-b" in dom and "Campaign screens" in dom
    assert "/inbox/" not in dom and ".jpg" not in dom  # no file's name or path
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            f"file://{report}",
        ],  # fmt: skip
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000  # something was drawn


def test_an_unfitted_calibration_is_fitted_with_its_variants_before_use():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 1000)
    sources = np.where(rng.random(1000) < 0.5, "a", "b")
    calibration = HeadCalibration(("x", "y", "z"), truth, biased_model(truth, 3, rng), sources)
    window = biased_model(rng.integers(0, 3, 300), 3, rng)
    given, fitted = estimate(window, calibration), estimate(window, calibration.fit())
    np.testing.assert_allclose(given.share, fitted.share)
    np.testing.assert_allclose(given.low, fitted.low)  # the refits' spread is in both intervals


def test_the_accuracy_benchmark_never_reads_another_package_s_faces(tmp_path, monkeypatch):
    """benchmarks/audience_accuracy.py caches the scored faces; a cache written with another
    package (or other sources or split) is scored again, not read as this package's."""
    from tests.conftest import load_job

    bench = load_job("audience_accuracy", "benchmarks")
    scored = []

    def score(model, sources, split):
        scored.append(model)
        return {"source": np.array(sources), "gender": np.full((len(sources), 2), len(scored))}

    monkeypatch.setattr(bench, "scored_faces", score)
    monkeypatch.setattr(bench, "model_version", lambda model: f"v-{model}")
    cache = tmp_path / "faces.npz"
    first = bench.cached_faces(cache, "a", ["fairface"], "test")
    again = bench.cached_faces(cache, "a", ["fairface"], "test")
    assert scored == ["a"] and set(again) == {"source", "gender"}
    np.testing.assert_array_equal(again["gender"], first["gender"])
    other = bench.cached_faces(cache, "b", ["fairface"], "test")
    assert scored == ["a", "b"] and other["gender"][0, 0] == 2
    bench.cached_faces(cache, "b", ["fairface"], "validation")
    assert scored == ["a", "b", "b"]
