"""Small networks for the lab's tests."""

from __future__ import annotations

import numpy as np


def as_if_trained(model, rng: np.random.Generator):
    """`model` with every weight away from its initial value, as after training (batch
    normalisations with statistics and scales of their own); returns it."""
    for layer in model.layers:
        weights = layer.get_weights()
        if layer.name.startswith("bn"):
            n = len(weights[0])
            weights = [rng.uniform(0.5, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n)]
            weights.append(rng.uniform(0.5, 2, n))
        elif weights:
            weights = [w + rng.normal(0, 0.1, w.shape) for w in weights]
        layer.set_weights([w.astype("float32") for w in weights])
    return model
