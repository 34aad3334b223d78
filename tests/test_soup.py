"""jobs/soup.py's mean: sparkface.train.ensemble.mean_weights with a share per network."""

from __future__ import annotations

import keras
import numpy as np

from sparkface.train.ensemble import mean_weights


def network(kernel: list[float], bias: float) -> keras.Model:
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.get_layer("dense").set_weights(
        [np.array([kernel], dtype="float32"), np.full(2, bias, dtype="float32")]
    )
    return model


def test_the_soup_is_the_weighted_mean_of_each_layer_in_its_own_dtype():
    first, second = network([0.0, 4.0], 1.0), network([2.0, 0.0], 3.0)
    kernel, bias = mean_weights([first, second], [3.0, 1.0])["dense"]
    np.testing.assert_allclose(kernel, [[0.5, 3.0]])
    np.testing.assert_allclose(bias, [1.5, 1.5])
    assert kernel.dtype == np.float32
