"""The training stream's weights (sparkface.train.shards): each class head weighted by its
class's weight, age by one, and no weights unless asked."""

from __future__ import annotations

import numpy as np

from sparkface.core.config import ModelConfig, TrainConfig, TrainingConfig
from sparkface.core.contract import AGE_SCALE
from sparkface.train.fit import streams
from sparkface.train.shards import ParquetFaces, class_weights, shard_files
from tests.test_ensemble import write_split

SIZES = {"age_group": 8, "gender": 2, "race": 5}


def test_rarer_classes_weigh_more_and_the_mean_weight_is_one():
    labels = {
        "age_group_index": np.array([0] * 90 + [1] * 10),
        "gender_index": np.array([0] * 50 + [1] * 50),
        "race_index": np.array([0] * 60 + [1] * 30 + [4] * 10),
    }
    weights = class_weights(labels, SIZES)
    race = weights["race"]
    assert race[4] > race[1] > race[0] and race[2] == 0.0
    np.testing.assert_allclose(race[labels["race_index"]].mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(race[4] / race[0], np.sqrt(60 / 10), rtol=1e-6)
    np.testing.assert_allclose(weights["gender"], [1.0, 1.0], rtol=1e-6)


def test_training_weights_the_class_heads_only_when_the_config_asks(tmp_path):
    write_split(tmp_path, "train", 40, seed=3)
    write_split(tmp_path, "validation", 10, seed=4)
    model = ModelConfig(augment=False)

    def first_batch(weighted: bool):
        training = TrainingConfig(batch_size=40, class_weights=weighted)
        config = TrainConfig(image_size=32, model=model, training=training)
        return next(iter(streams(tmp_path, config, 8)[0]))

    assert len(first_batch(False)) == 2
    _, targets, weights = first_batch(True)
    labels = ParquetFaces(shard_files(tmp_path, "train"), 32, 40).labels()
    expected = class_weights(labels, SIZES)
    for head in SIZES:
        np.testing.assert_allclose(weights[head], expected[head][targets[head]])
    np.testing.assert_array_equal(weights["age"], np.ones(40, dtype="float32"))


def test_the_configs_race_and_age_factors_reach_the_gender_weights_of_the_train_stream(tmp_path):
    write_split(tmp_path, "train", 40, seed=3)
    write_split(tmp_path, "validation", 10, seed=4)
    training = TrainingConfig(
        batch_size=40, gender_weight_by_race={"indian": 3.0}, gender_weight_by_age={"0-40": 2.0}
    )
    config = TrainConfig(image_size=32, model=ModelConfig(augment=False), training=training)
    faces = ParquetFaces(shard_files(tmp_path, "train"), 32, 40)
    _, targets, weights = next(iter(streams(tmp_path, config, 8)[0]))
    plain = class_weights(faces.labels(), SIZES)["gender"][targets["gender"]]
    races = targets["race"]
    assert (races == 3).any() and (races != 3).any()
    ages = np.round(targets["age"][:, 0] * AGE_SCALE)
    assert (ages <= 40).any() and (ages > 40).any()
    factors = np.where(races == 3, 3.0, 1.0) * np.where(ages <= 40, 2.0, 1.0)
    np.testing.assert_allclose(weights["gender"], plain * factors, rtol=1e-6)


def test_augmenting_workers_keep_the_order_and_give_the_same_batches_on_every_run(tmp_path):
    write_split(tmp_path, "train", 100, seed=5)
    files = shard_files(tmp_path, "train")

    def stream(workers: int, augment: bool = True) -> list[tuple]:
        faces = ParquetFaces(
            files, 32, 8, shuffle_buffer=16, seed=3, augment=augment, light=True, workers=workers
        )
        return list(faces)

    plain, one, three, four = stream(1, augment=False), stream(1), stream(3), stream(4)
    assert len(plain) == len(one) == len(three) == len(four) == 13
    for batches in (one, three, four):
        for (_, targets), (_, new_targets) in zip(plain, batches, strict=True):
            np.testing.assert_array_equal(targets["age"], new_targets["age"])
    for (faces, _), (new_faces, _) in zip(three, four, strict=True):
        np.testing.assert_array_equal(faces, new_faces)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(plain, three, strict=True))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(one, three, strict=True))
