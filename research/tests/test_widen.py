"""research/jobs/widen.py: a network made wider answers as it did, its copies start apart, and a
narrower recipe is refused."""

from __future__ import annotations

import numpy as np
import pytest

from research.jobs.widen import widen
from research.tests.networks import as_if_trained
from sparkface.core.config import ModelConfig
from sparkface.train.model import make_model


def trained(config: ModelConfig, seed: int):
    return as_if_trained(make_model(config, 16, 8, seed=seed), np.random.default_rng(seed))


@pytest.mark.slow  # builds Keras models
def test_a_widened_network_answers_as_it_did_with_its_copies_apart():
    narrow = trained(ModelConfig(filters=[4, 8, 8], convs_per_block=2, dense_units=[8]), 1)
    wide = make_model(
        ModelConfig(filters=[4, 12, 16], convs_per_block=2, dense_units=[8]), 16, 8, seed=2
    )
    widened = widen(narrow, wide, seed=3)

    assert widened == {
        "conv1_0": [8, 12],
        "conv1_1": [8, 12],
        "conv2_0": [8, 16],
        "conv2_1": [8, 16],
    }
    faces = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    before, after = narrow.predict_on_batch(faces), wide.predict_on_batch(faces)
    for head, value in before.items():
        np.testing.assert_allclose(after[head], value, rtol=1e-4, atol=1e-5)
    # A copied filter's outgoing weights differ from its original's, or the two would learn as one.
    filters = wide.get_layer("conv1_1").get_weights()[0].reshape(-1, 12)
    original = next(i for i in range(8) if np.array_equal(filters[:, i], filters[:, 8]))
    reader = wide.get_layer("conv2_0").get_weights()[0]
    assert not np.allclose(reader[:, :, original, :], reader[:, :, 8, :])


@pytest.mark.slow  # builds Keras models
def test_a_recipe_narrower_than_the_network_is_refused():
    narrow = trained(ModelConfig(filters=[4, 8], dense_units=[8]), 1)
    narrower = make_model(ModelConfig(filters=[4, 6], dense_units=[8]), 16, 8, seed=2)
    with pytest.raises(ValueError, match="narrow"):
        widen(narrow, narrower)
