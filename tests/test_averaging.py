from __future__ import annotations

import numpy as np
import pytest

from sparkface.train.averaging import keep_better, recalibrate_batch_norm, weight_averager
from sparkface.train.model import compile_model, make_model
from tests.test_model import small_config


def norm_model():
    import keras

    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.BatchNormalization(momentum=0.99, name="bn")(inputs)
    return keras.Model(inputs, outputs)


def test_batch_norm_statistics_become_the_plain_mean_over_the_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 2.0, size=(16, 3)).astype("float32") for loc in (0.0, 5.0, 10.0)]
    model = norm_model()
    layer = model.get_layer("bn")
    layer.moving_mean.assign(np.full(3, 100.0, dtype="float32"))  # stale: must be forgotten

    used = recalibrate_batch_norm(model, iter([(b, None) for b in batches] * 2), 3)

    assert used == 3
    np.testing.assert_allclose(
        layer.moving_mean.numpy(), np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        layer.moving_variance.numpy(),
        np.mean([b.var(axis=0) for b in batches], axis=0),
        rtol=1e-4,
    )
    assert layer.momentum == 0.99  # given back


def test_recalibration_stops_where_the_batches_end():
    model = norm_model()
    batch = np.ones((4, 3), dtype="float32")
    assert recalibrate_batch_norm(model, iter([(batch,)]), 10) == 1
    assert recalibrate_batch_norm(model, iter([(batch,)]), 0) == 0


def test_the_average_covers_the_last_epochs_only():
    model = small_model()
    averager = weight_averager(first_epoch=2)
    averager.set_model(model)
    first = model.get_weights()
    ends = []
    for epoch in range(4):
        weights = [w + epoch for w in first]
        model.set_weights(weights)
        ends.append(weights)
        averager.on_epoch_end(epoch)

    assert averager.epochs == [3, 4]
    for mean, third, fourth in zip(averager.averaged_weights(), ends[2], ends[3], strict=True):
        np.testing.assert_allclose(mean, (third + fourth) / 2, rtol=1e-6)
        assert mean.dtype == third.dtype


def small_model():
    model = make_model(small_config(), 16, n_age_groups=4)
    compile_model(model, 0.001, 0.0, {})
    return model


def validation_batches(count: int):
    rng = np.random.default_rng(1)
    for _ in range(count):
        pixels = rng.integers(0, 255, size=(8, 16, 16, 3), dtype=np.uint8)
        yield (
            pixels,
            {
                "age_group": rng.integers(0, 4, size=8),
                "gender": rng.integers(0, 2, size=8),
                "race": rng.integers(0, 5, size=8),
                "age": rng.random((8, 1)).astype("float32"),
            },
        )


@pytest.mark.parametrize(("best_loss", "kept"), [(0.0, "best epoch"), (1e9, "average")])
def test_the_average_is_kept_only_when_its_validation_loss_is_lower(best_loss, kept):
    model = small_model()
    averager = weight_averager(first_epoch=0)
    averager.set_model(model)
    best = model.get_weights()
    model.set_weights([w + 0.01 for w in best])
    averager.on_epoch_end(0)
    model.set_weights(best)

    record = keep_better(
        model, averager, validation_batches(2), validation_batches(2), 2, best_loss, norm_batches=2
    )

    assert record["kept"] == kept
    assert record["epochs"] == [1]
    assert record["batch_norm_batches"] == 2
    changed = not np.allclose(model.get_weights()[1], best[1])
    assert changed == (kept == "average")


def test_without_averaged_epochs_the_best_epoch_stays():
    model = small_model()
    averager = weight_averager(first_epoch=5)
    averager.set_model(model)
    record = keep_better(model, averager, iter(()), iter(()), 1, 1.0, norm_batches=1)
    assert record["kept"] == "best epoch"
    assert record["epochs"] == []


def test_the_learning_rate_holds_steady_over_the_averaged_epochs():
    import keras

    model = make_model(small_config(), 32, 8)
    compile_model(
        model, 0.01, 0.0, {}, steps=100, warmup_steps=10, hold_steps=30, hold_learning_rate=0.002
    )
    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    rates = [float(schedule(step)) for step in (10, 40, 70, 85, 100)]
    assert rates[0] == pytest.approx(0.01)
    assert 0.002 < rates[1] < 0.01
    assert rates[2:] == pytest.approx([0.002] * 3)
