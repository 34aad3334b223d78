"""research/benchmarks/audience_age_intervals.py: without shrinkage, matrix shrinkage is no
shrinkage at all, and its parts add up to the product's."""

from __future__ import annotations

import numpy as np

from research.benchmarks.audience_age_intervals import window_variances
from sparkface.audience.shares import HeadCalibration
from tests.test_audience import biased_model


def test_without_pseudo_faces_matrix_shrinkage_is_the_sampling_variance():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 3000)
    calibration = HeadCalibration(
        ("a", "b", "c", "d"), truth, biased_model(truth, 4, rng, bias=0.0), np.full(3000, "s")
    ).fit(variants=5)
    window = rng.integers(0, 4, 300)
    true = np.bincount(window, minlength=4) / 300
    probabilities = biased_model(window, 4, rng, bias=0.0)
    _, free, _ = window_variances(calibration, probabilities, true, 0.0)
    spread = free["the product's"] - free["without the calibration's spread"]
    np.testing.assert_allclose(free["matrix shrinkage"], free["the product's"], atol=1e-9)
    np.testing.assert_allclose(free["the sampling part alone"] + spread, free["the product's"])
    assert (spread > 0).all()
    # with shrinkage, the shrunk shares vary less than the unshrunk ones
    _, shrunk, _ = window_variances(calibration, probabilities, true, 100.0)
    assert (shrunk["the sampling part alone"] < free["the sampling part alone"]).all()
