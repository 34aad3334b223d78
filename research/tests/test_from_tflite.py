"""research/jobs/from_tflite.py: a network rebuilt from its TensorFlow Lite file answers as the
file does, and its batch normalisations, rewritten with data statistics, answer the same."""

from __future__ import annotations

import numpy as np
import pytest

from research.jobs.from_tflite import (
    agreement_with_tflite,
    convolution_statistics,
    rebuild,
    reparametrize,
    tflite_tensors,
)
from research.tests.networks import as_if_trained
from sparkface.core.config import ModelConfig
from sparkface.train.model import make_model


@pytest.mark.slow  # converts with TensorFlow
def test_a_network_rebuilt_from_its_tflite_file_answers_as_the_file_does(tmp_path):
    pytest.importorskip("tensorflow")
    from sparkface.core.runtime import to_tflite

    config = ModelConfig(filters=[4, 8], dense_units=[8], augment=False)
    rng = np.random.default_rng(0)
    trained = as_if_trained(make_model(config, 16, 8, seed=1), rng)
    path = tmp_path / "model.tflite"
    path.write_bytes(to_tflite(trained, "int8"))
    faces = rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)

    rebuilt = make_model(config, 16, 8, seed=2)
    rebuild(rebuilt, tflite_tensors(path))
    assert relative_error(rebuilt, trained, faces) < 0.03
    reparametrize(rebuilt, convolution_statistics(rebuilt, [faces[:32]]))
    assert relative_error(rebuilt, trained, faces) < 0.03
    agreement = agreement_with_tflite(rebuilt, path, faces)
    for head in ("age_group", "gender", "race"):
        assert agreement[head]["max_probability_difference"] < 0.01
    norms = [layer for layer in rebuilt.layers if layer.name.startswith("bn")]
    assert all(np.abs(layer.get_weights()[2]).max() > 0 for layer in norms)  # statistics written


def relative_error(model, reference, faces: np.ndarray) -> float:
    """How far `model`'s pooled features lie from `reference`'s, relative to their size."""
    import keras

    def features(network):
        probe = keras.Model(network.input, network.get_layer("pool_features").output)
        return np.asarray(probe.predict_on_batch(faces))

    ours, theirs = features(model), features(reference)
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
