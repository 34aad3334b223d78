"""Weight averaging: the mean of the weights a network ends its last epochs with (stochastic
weight averaging, Izmailov et al. 2018), each of those epochs trained at one steady learning rate
(sparkface.train.model.compile_model's `hold_steps`).

An average of weights is not a network the batch-normalisation layers have seen: their moving
statistics are estimated again, exactly, over training batches (`recalibrate_batch_norm`). The
averaged network is then kept only if its validation loss is lower than the best epoch's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np


def weight_averager(first_epoch: int):
    """A Keras callback that keeps the running mean of the model's weights at the end of every
    epoch from `first_epoch` (counted from 0): `.mean` (None before any), `.epochs` (from 1)."""
    import keras

    class WeightAverager(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.mean: list[np.ndarray] | None = None
            self.epochs: list[int] = []

        def on_epoch_end(self, epoch, logs=None):
            if epoch < first_epoch:
                return
            weights = [np.asarray(w, dtype="float64") for w in self.model.get_weights()]
            self.epochs.append(epoch + 1)
            if self.mean is None:
                self.mean = weights
                return
            count = len(self.epochs)
            self.mean = [m + (w - m) / count for m, w in zip(self.mean, weights, strict=True)]

        def averaged_weights(self) -> list[np.ndarray]:
            current = self.model.get_weights()
            return [m.astype(w.dtype) for m, w in zip(self.mean, current, strict=True)]

    return WeightAverager()


def recalibrate_batch_norm(model, batches: Iterator[tuple], count: int) -> int:
    """Estimate every batch-normalisation layer's moving mean and variance again as the plain
    average of their values over `count` batches of `batches` (pixels first), forgetting the old
    ones. Returns the number of batches used."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    used = 0
    try:
        for batch in itertools.islice(batches, count):
            # new = old * k / (k + 1) + batch / (k + 1): the mean of the first k + 1 batches.
            for layer in norms:
                layer.momentum = used / (used + 1)
            model(batch[0], training=True)
            used += 1
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    return used


def keep_better(
    model,
    averager,
    train_batches: Iterator[tuple],
    validation_batches: Iterator[tuple],
    validation_steps: int,
    best_loss: float,
    norm_batches: int,
) -> dict[str, object]:
    """Give `model` (holding its best epoch's weights) the averaged weights, batch-normalisation
    statistics estimated again over `norm_batches` train batches, and keep them if their loss on
    the validation split is below `best_loss`, the best epoch's; else put the best epoch's weights
    back. Returns what was done, for the training record."""
    if averager.mean is None:
        return {"epochs": [], "kept": "best epoch", "why": "training stopped before averaging"}
    best = model.get_weights()
    model.set_weights(averager.averaged_weights())
    used = recalibrate_batch_norm(model, train_batches, norm_batches)
    scores = model.evaluate(validation_batches, steps=validation_steps, return_dict=True, verbose=0)
    kept = scores["loss"] < best_loss
    if not kept:
        model.set_weights(best)
    return {
        "epochs": averager.epochs,
        "batch_norm_batches": used,
        "val_loss": round(float(scores["loss"]), 5),
        "best_epoch_val_loss": round(float(best_loss), 5),
        "kept": "average" if kept else "best epoch",
        "validation": {
            k: round(float(v), 5)
            for k, v in scores.items()
            if k.endswith("accuracy") or k.endswith("error")
        },  # fmt: skip
    }
