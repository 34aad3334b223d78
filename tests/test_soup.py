"""jobs/soup.py: the weighted mean of networks' weights, layer by layer."""

from __future__ import annotations

import numpy as np

from tests.conftest import load_job

mixed = load_job("soup").mixed


def test_the_soup_is_the_weighted_mean_of_each_layer_in_its_own_dtype():
    first = [np.array([0.0, 4.0], dtype="float32"), np.array([[1.0]], dtype="float32")]
    second = [np.array([2.0, 0.0], dtype="float32"), np.array([[3.0]], dtype="float32")]
    soup = mixed([first, second], [3.0, 1.0])
    np.testing.assert_allclose(soup[0], [0.5, 3.0])
    np.testing.assert_allclose(soup[1], [[1.5]])
    assert soup[0].dtype == np.float32
