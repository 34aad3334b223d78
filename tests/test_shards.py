"""The training stream's weights (sparkface.train.shards): the gender head weighted per race x
gender cell."""

from __future__ import annotations

import numpy as np

from sparkface.core.config import ModelConfig, TrainConfig, TrainingConfig
from sparkface.train.fit import streams
from sparkface.train.shards import ParquetFaces, gender_cell_weights, shard_files
from tests.test_ensemble import write_split


def test_rarer_race_gender_cells_weigh_more_and_the_mean_weight_is_one():
    race = np.array([0] * 60 + [1] * 30 + [4] * 10)
    gender = np.array([0] * 30 + [1] * 30 + [0] * 25 + [1] * 5 + [0] * 6 + [1] * 4)
    cells = gender_cell_weights({"race_index": race, "gender_index": gender})
    assert cells.shape == (5, 2)
    assert cells[1, 1] > cells[1, 0] > cells[0, 0]  # 5 Black women, 25 Black men, 30 White men
    assert cells[2, 0] == 0.0  # a cell with no faces
    np.testing.assert_allclose(cells[race, gender].mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(cells[1, 1] / cells[0, 0], np.sqrt(30 / 5), rtol=1e-6)


def test_the_stream_weights_only_the_gender_head_by_cell(tmp_path):
    write_split(tmp_path, "train", 40, seed=3)
    files = shard_files(tmp_path, "train")
    labels = ParquetFaces(files, 32, 40).labels()
    cells = gender_cell_weights(labels)
    stream = ParquetFaces(files, 32, 40, gender_cell_weights=cells)
    ((_, targets, weights),) = list(stream)
    np.testing.assert_allclose(weights["gender"], cells[targets["race"], targets["gender"]])
    for head in ("age_group", "race", "age"):
        np.testing.assert_array_equal(weights[head], np.ones(40, dtype="float32"))
    assert len(next(iter(ParquetFaces(files, 32, 40)))) == 2  # no weights unless asked


def test_training_weights_gender_by_cell_only_when_the_config_asks(tmp_path):
    write_split(tmp_path, "train", 40, seed=3)
    write_split(tmp_path, "validation", 10, seed=4)
    model = ModelConfig(augment=False)

    def first_batch(cells: bool):
        training = TrainingConfig(batch_size=40, class_weights=False, gender_cell_weights=cells)
        config = TrainConfig(image_size=32, model=model, training=training)
        return next(iter(streams(tmp_path, config, 8)[0]))

    assert len(first_batch(False)) == 2
    _, targets, weights = first_batch(True)
    cells = gender_cell_weights(ParquetFaces(shard_files(tmp_path, "train"), 32, 40).labels())
    np.testing.assert_allclose(weights["gender"], cells[targets["race"], targets["gender"]])
