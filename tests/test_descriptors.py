"""The second teacher (sparkface.train.descriptors): dlib's face descriptors computed on the
executors into the shards, streamed as targets, learnt by a head that the package drops."""

from __future__ import annotations

import keras
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sparkface.core.config import ModelConfig, TrainConfig, TrainingConfig
from sparkface.core.contract import HEADS
from sparkface.core.errors import InputError
from sparkface.train.descriptors import (
    DESCRIPTOR_COLUMN,
    DESCRIPTOR_SCALE,
    DESCRIPTOR_SIZE,
    cached_describer,
    with_descriptors,
)
from sparkface.train.fit import build_model, streams
from sparkface.train.model import make_model, scoring_model
from sparkface.train.shards import ParquetFaces, shard_files
from tests.conftest import SHARED_FACES
from tests.test_ensemble import write_split


def faces_of(age_gender_race: list[str]) -> list:
    """One shared crop for each 'age_gender_race' asked for."""
    if not SHARED_FACES.is_dir():
        pytest.skip("needs the shared UTKFace crops (../shared/data/utkface)")
    paths = sorted(SHARED_FACES.iterdir())
    return [next(p for p in paths if p.name.startswith(prefix + "_")) for prefix in age_gender_race]


def test_the_descriptor_tells_one_face_from_another_and_knows_it_resized():
    white_man, black_woman = faces_of(["30_0_0", "30_1_1"])
    describer = cached_describer()
    first = describer.describe(Image.open(white_man))
    assert first.shape == (DESCRIPTOR_SIZE,) and first.dtype == np.float32
    again = describer.describe(Image.open(white_man).resize((150, 150)))  # back to 200 px inside
    other = describer.describe(Image.open(black_woman))
    # dlib's own rule: the same person within 0.6; a resize moves it far less than a new face.
    assert np.linalg.norm(first - again) < 0.25
    assert np.linalg.norm(first - other) > 0.6


def write_described(shards, split: str, rows: int, seed: int, missing: int = 0) -> None:
    write_split(shards, split, rows, seed)
    path = shards / f"split={split}" / "part-0.parquet"
    table = pq.read_table(path)
    rng = np.random.default_rng(seed)
    # Real descriptors share a mean away from zero, which a head starting near zero can learn.
    centre = np.random.default_rng(0).normal(0, 0.1, DESCRIPTOR_SIZE)
    values = [
        (centre + rng.normal(0, 0.03, DESCRIPTOR_SIZE)).astype(np.float32).tolist()
        for _ in range(rows)
    ]
    for index in range(missing):
        values[index] = None
    column = pa.array(values, pa.list_(pa.float32()))
    pq.write_table(table.append_column(DESCRIPTOR_COLUMN, column), path)


def test_the_stream_gives_scaled_descriptors_and_zeros_for_a_face_without_one(tmp_path):
    write_described(tmp_path, "train", 20, seed=1, missing=2)
    files = shard_files(tmp_path, "train")
    stored = pq.read_table(files[0]).column(DESCRIPTOR_COLUMN).to_pylist()
    ((_, targets),) = list(ParquetFaces(files, 32, 20, descriptors=True))
    assert targets[DESCRIPTOR_COLUMN].shape == (20, DESCRIPTOR_SIZE)
    np.testing.assert_allclose(
        targets[DESCRIPTOR_COLUMN][2:], np.array(stored[2:]) * DESCRIPTOR_SCALE, rtol=1e-6
    )
    assert not targets[DESCRIPTOR_COLUMN][:2].any()
    assert DESCRIPTOR_COLUMN not in next(iter(ParquetFaces(files, 32, 20)))[1]


def test_shards_without_descriptors_are_refused_by_name(tmp_path):
    write_split(tmp_path, "train", 8, seed=1)
    with pytest.raises(InputError, match="no descriptor column; make the shards"):
        next(iter(ParquetFaces(shard_files(tmp_path, "train"), 32, 8, descriptors=True)))


@pytest.mark.slow  # trains
def test_a_descriptor_head_learns_beside_the_four_and_the_package_drops_it(tmp_path):
    keras.utils.set_random_seed(0)
    write_described(tmp_path, "train", 32, seed=1)
    write_described(tmp_path, "validation", 16, seed=2)
    training = TrainingConfig(
        batch_size=16, learning_rate=0.01, class_weights=False, descriptor_weight=0.5
    )
    config = TrainConfig(
        image_size=32,
        model=ModelConfig(filters=(8, 16), dense_units=(16, 8), augment=False),
        training=training,
    )
    train_stream, _ = streams(tmp_path, config, 8)
    model, _ = build_model(config, 8, steps=2)
    assert model.get_layer(DESCRIPTOR_COLUMN).output.shape[-1] == DESCRIPTOR_SIZE
    batches = iter(train_stream)
    pixels, targets = next(batches)
    before = model.evaluate(pixels, targets, verbose=0, return_dict=True)
    model.fit(batches, steps_per_epoch=20, epochs=1, verbose=0)
    after = model.evaluate(pixels, targets, verbose=0, return_dict=True)
    assert after[f"{DESCRIPTOR_COLUMN}_loss"] < 0.8 * before[f"{DESCRIPTOR_COLUMN}_loss"]
    scoring = scoring_model(model)
    assert sorted(scoring.output_names) == sorted(HEADS)
    outputs = scoring.predict_on_batch(pixels)
    np.testing.assert_allclose(
        outputs["race"], model.predict_on_batch(pixels)["race"], rtol=1e-5, atol=1e-6
    )
    plain = make_model(config.model, 32, 8)
    assert scoring_model(plain) is plain


@pytest.mark.slow
def test_descriptors_are_computed_on_the_executors_one_per_shard_row(spark, tmp_path):
    faces = faces_of(["30_0_0", "30_1_1", "25_0_2"])
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in faces[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "40_1_3_broken.jpg").write_bytes(b"not an image")
    shards = spark.createDataFrame(
        [(f"file:{folder / faces[0].name}", "train"), (f"file:{folder / faces[1].name}", "train"),
         (f"file:{folder / '40_1_3_broken.jpg'}", "validation"),
         (f"file:{folder / 'gone.jpg'}", "test")],
        "path string, split string",
    )  # fmt: skip
    images = spark.read.format("binaryFile").load(str(folder))
    rows = {row["path"]: row for row in with_descriptors(shards, images).collect()}
    assert len(rows) == 4  # nothing lost, nothing twice
    found = [rows[f"file:{folder / face.name}"][DESCRIPTOR_COLUMN] for face in faces[:2]]
    expected = cached_describer().describe(Image.open(faces[0]))
    np.testing.assert_allclose(found[0], expected, rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(np.array(found[0]) - np.array(found[1])) > 0.6
    assert rows[f"file:{folder / '40_1_3_broken.jpg'}"][DESCRIPTOR_COLUMN] is None
    assert rows[f"file:{folder / 'gone.jpg'}"][DESCRIPTOR_COLUMN] is None


class _Teacher:
    """A teacher that answers every face alike."""

    def predict_on_batch(self, faces):
        rows = len(faces)
        return {
            "age_group": np.full((rows, 8), 1 / 8, np.float32),
            "gender": np.full((rows, 2), 0.5, np.float32),
            "race": np.full((rows, 5), 0.2, np.float32),
            "age": np.full((rows, 1), 30.0, np.float32),
        }


def test_distillation_keeps_the_second_teachers_targets(tmp_path):
    from sparkface.train.distill import taught

    write_described(tmp_path, "train", 8, seed=1)
    batches = iter(ParquetFaces(shard_files(tmp_path, "train"), 32, 8, descriptors=True))
    pixels, labels = next(
        iter(ParquetFaces(shard_files(tmp_path, "train"), 32, 8, descriptors=True))
    )
    classes = {"age_group": 8, "gender": 2, "race": 5}
    _, targets = next(taught(batches, _Teacher(), 0.7, False, classes))
    np.testing.assert_array_equal(targets[DESCRIPTOR_COLUMN], labels[DESCRIPTOR_COLUMN])
    np.testing.assert_allclose(targets["gender"].sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_the_job_writes_every_split_with_its_descriptors(tmp_path):
    import subprocess

    from tests.conftest import spark_submit

    faces = faces_of(["30_0_0", "30_1_1", "25_0_2", "40_1_3", "50_0_1", "8_1_2"])
    folder = tmp_path / "faces"
    folder.mkdir()
    splits = ["train", "train", "train", "train", "validation", "test"]
    for path, split in zip(faces, splits, strict=True):
        (folder / path.name).write_bytes(path.read_bytes())
        shard = tmp_path / "shards" / f"split={split}"
        shard.mkdir(parents=True, exist_ok=True)
        # Each input shard file holds one face.
        table = pa.table({"path": [f"file:{folder / path.name}"], "file_name": [path.name]})
        pq.write_table(table, shard / f"{path.name}.parquet")
    out = tmp_path / "described"
    args = ["--shards", str(tmp_path / "shards"), "--input", str(folder), "--output", str(out)]
    result = subprocess.run(
        spark_submit("describe_faces.py", *args), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'rows': 6, 'without_descriptor': 0" in result.stdout + result.stderr
    train = pq.read_table(out / "split=train")
    assert sorted(train.column("file_name").to_pylist()) == sorted(p.name for p in faces[:4])
    assert all(
        len(value) == DESCRIPTOR_SIZE for value in train.column(DESCRIPTOR_COLUMN).to_pylist()
    )
    for split in ("validation", "test"):
        assert pq.read_table(out / f"split={split}").num_rows == 1
