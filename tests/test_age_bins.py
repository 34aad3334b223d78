"""Faces labelled with an age bin only (a source's table, FairFace's 20-29): the partial-label
and interval losses, the stream's targets over shards of several sources, and a teacher's
predictions beside the bins (sparkface.train.model, shards, distill)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkface.core.config import TrainingConfig
from sparkface.core.contract import AGE_SCALE
from sparkface.evaluate.metrics import compute_metrics
from sparkface.train.distill import mixed_targets, with_one_hot_labels
from sparkface.train.model import (
    compatible_accuracy,
    interval_absolute_error,
    partial_label_crossentropy,
    taught_interval_error,
    taught_partial_crossentropy,
)
from sparkface.train.shards import ParquetFaces, class_weights, shard_files

PROBABILITIES = np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]], dtype="float32")


def test_the_partial_label_loss_is_cross_entropy_for_one_group_and_the_mass_for_a_bin():
    one = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(partial_label_crossentropy(one, PROBABILITIES)), -np.log([0.3, 0.7]), rtol=1e-5
    )
    spanned = np.array([[0, 1, 1, 0], [0, 1, 1, 1]], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(partial_label_crossentropy(spanned, PROBABILITIES)),
        -np.log([0.5, 0.3]),
        rtol=1e-5,
    )
    np.testing.assert_array_equal(np.asarray(compatible_accuracy(spanned, PROBABILITIES)), [0, 0])
    np.testing.assert_array_equal(np.asarray(compatible_accuracy(one, PROBABILITIES)), [0, 1])


def test_the_interval_loss_is_zero_inside_the_bin_and_the_distance_outside():
    bounds = np.array([[0.20, 0.29], [0.20, 0.29], [0.20, 0.29], [0.35, 0.35]], dtype="float32")
    predicted = np.array([[0.25], [0.10], [0.40], [0.30]], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(interval_absolute_error(bounds, predicted)), [0.0, 0.10, 0.11, 0.05], atol=1e-6
    )


def write_mixed_split(shards, split: str = "train") -> None:
    """Four exact ages (UTKFace) and four bins (a table source) with their age-group spans and
    source weights, as preparation writes them."""
    folder = shards / f"split={split}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    exact = [9, 30, 45, 70]
    bins = [(10, 19), (20, 29), (30, 39), (70, 116)]
    groups = {9: 0, 30: 3, 45: 5, 70: 7, 10: 0, 19: 2, 20: 2, 29: 3, 39: 4, 116: 7}
    lows = exact + [low for low, _ in bins]
    highs = exact + [high for _, high in bins]
    pq.write_table(
        pa.table(
            {
                "pixels": pa.array(
                    [rng.integers(0, 256, 32 * 32 * 3, dtype=np.uint8).tobytes() for _ in lows],
                    pa.binary(),
                ),
                "age_group_index": pa.array([groups[a] for a in exact] + [None] * 4, pa.int32()),
                "gender_index": [0, 1, 0, 1, 1, 0, 1, 0],
                "race_index": [0, 1, 2, 3, 4, 4, 3, 2],
                "age": pa.array([*exact, None, None, None, None], pa.int32()),
                "age_low": lows,
                "age_high": highs,
                "age_group_low": [groups[a] for a in lows],
                "age_group_high": [groups[a] for a in highs],
                "source_weight": pa.array([1.0] * 4 + [0.5] * 4, pa.float32()),
            }
        ),
        folder / "part-0.parquet",
    )


def test_the_stream_trains_on_bins_with_their_spans_bounds_and_source_weights(tmp_path):
    write_mixed_split(tmp_path)
    files = shard_files(tmp_path, "train")
    ((_, targets, weights),) = list(ParquetFaces(files, 32, 8, age_groups=8))
    masks = targets["age_group"]
    assert masks.shape == (8, 8)
    np.testing.assert_array_equal(masks[0], np.eye(8)[0])  # 9: one group
    np.testing.assert_array_equal(masks[4], [1, 1, 1, 0, 0, 0, 0, 0])  # 10-19: 7-12 .. 18-24
    np.testing.assert_array_equal(masks[7], np.eye(8)[7])  # 70+: 65+
    np.testing.assert_allclose(targets["age"][1], [0.30, 0.30])
    np.testing.assert_allclose(targets["age"][5], np.array([20, 29]) / AGE_SCALE)
    for head in ("age_group", "gender", "race", "age"):
        np.testing.assert_allclose(weights[head], [1.0] * 4 + [0.5] * 4)


def test_a_face_without_a_race_or_gender_label_is_left_out_of_that_heads_loss(tmp_path):
    write_mixed_split(tmp_path)
    part = shard_files(tmp_path, "train")[0]
    table = pq.read_table(part)
    table = table.set_column(
        table.schema.get_field_index("race_index"), "race_index", [[0, -1, 2, 3, 4, -1, 3, 2]]
    ).set_column(
        table.schema.get_field_index("gender_index"), "gender_index", [[0, 1, -1, 1, 1, 0, 1, 0]]
    )
    pq.write_table(table, part)
    ((_, targets, weights),) = list(ParquetFaces([part], 32, 8, age_groups=8))
    np.testing.assert_array_equal(targets["race"], [0, 0, 2, 3, 4, 0, 3, 2])
    np.testing.assert_allclose(weights["race"], [1.0, 0, 1.0, 1.0, 0.5, 0, 0.5, 0.5])
    np.testing.assert_allclose(weights["gender"], [1.0, 1.0, 0, 1.0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(weights["age"], [1.0] * 4 + [0.5] * 4)
    weighted = ParquetFaces([part], 32, 8, age_groups=8, class_weights=class_weights(
        {"age_group_index": np.arange(8), "gender_index": np.array([0, 1, -1]),
         "race_index": np.array([0, 1, 2, 3, 4, -1])}, {"age_group": 8, "gender": 2, "race": 5},
    ))  # fmt: skip
    ((_, _, weights),) = list(weighted)
    assert weights["race"][1] == 0 and weights["race"][0] == 1.0


def test_evaluation_judges_a_head_only_on_faces_labelled_for_it():
    predictions = {
        "age_group": np.eye(8)[[0, 1, 2]],
        "gender": np.eye(2)[[0, 1, 1]],
        "race": np.eye(5)[[4, 4, 4]],
        "age": np.array([20.0, 30.0, 40.0]),
    }
    labels = {"age_group": [0, 1, 2], "gender": [0, 1, 0], "race": [4, -1, -1], "age": [20, 30, 40]}
    groups = tuple(f"g{i}" for i in range(8))
    metrics = compute_metrics(predictions, {k: np.array(v) for k, v in labels.items()}, groups)
    assert metrics["race_accuracy"] == 1.0 and np.sum(metrics["confusion"]["race"]) == 1
    assert metrics["gender_accuracy"] == pytest.approx(2 / 3, abs=1e-6) and metrics["faces"] == 3
    assert metrics["shares"]["race"]["classes"]["others"]["mean_probability"] == 1.0


def test_evaluation_and_conversion_read_only_the_faces_with_exact_ages(tmp_path):
    write_mixed_split(tmp_path)
    stream = ParquetFaces(shard_files(tmp_path, "train"), 32, 8)
    assert stream.rows == 4
    ((_, targets),) = list(stream)
    np.testing.assert_array_equal(targets["age_group"], [0, 3, 5, 7])
    assert list(stream.labels()["age"]) == [9, 30, 45, 70]


def bin_labels():
    """A face labelled 20-29 (groups 1-2 of 4) and one aged exactly 35 (group 2)."""
    return {
        "age_group": np.array([[0, 1, 1, 0], [0, 0, 1, 0]], dtype="float32"),
        "gender": np.array([0, 1]),
        "race": np.array([4, 2]),
        "age": np.array([[0.20, 0.29], [0.35, 0.35]], dtype="float32"),
    }


BIN_CLASSES = {"age_group": 4, "gender": 2, "race": 5}


def test_a_teacher_beside_a_bin_keeps_the_bin_and_makes_up_no_age():
    teacher = {
        "age_group": np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]),
        "gender": np.array([[0.9, 0.1], [0.2, 0.8]]),
        "race": np.full((2, 5), 0.2),
        "age": np.array([[0.40], [0.30]]),
    }
    targets = mixed_targets(bin_labels(), teacher, 0.75, BIN_CLASSES)
    np.testing.assert_allclose(targets["age_group"][0], [0.075, 0.15, 0.225, 0.3, 0, 1, 1, 0])
    np.testing.assert_allclose(targets["age"], [[0.75, 0.40, 0.20, 0.29], [0.75, 0.30, 0.35, 0.35]])
    np.testing.assert_allclose(targets["gender"][0], [0.75 * 0.9 + 0.25, 0.75 * 0.1])
    np.testing.assert_allclose(targets["race"][0], [0.15, 0.15, 0.15, 0.15, 0.4])
    # Validation: the labels alone, in the same layout, the teacher's part silent.
    ((_, validation),) = list(with_one_hot_labels(iter([(None, bin_labels())]), BIN_CLASSES))
    np.testing.assert_allclose(validation["age_group"][0], [0, 0, 0, 0, 0, 1, 1, 0])
    np.testing.assert_allclose(validation["age"][0], [0, 0, 0.20, 0.29])
    np.testing.assert_array_equal(validation["race"][1], np.eye(5)[2])


def test_the_taught_losses_weigh_the_teacher_against_the_labels_own_losses():
    probabilities = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]], dtype="float32")
    mask = bin_labels()["age_group"]
    teacher = np.array([[0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype="float32")
    label_loss = np.asarray(partial_label_crossentropy(mask, probabilities))
    silent = np.concatenate([np.zeros_like(teacher), mask], axis=1)
    np.testing.assert_allclose(
        np.asarray(taught_partial_crossentropy(silent, probabilities)), label_loss, rtol=1e-5
    )
    taught = np.concatenate([0.6 * teacher, mask], axis=1)
    teacher_loss = -(teacher * np.log(probabilities)).sum(axis=1)
    np.testing.assert_allclose(
        np.asarray(taught_partial_crossentropy(taught, probabilities)),
        0.6 * teacher_loss + 0.4 * label_loss,
        rtol=1e-5,
    )
    predicted = np.array([[0.25], [0.30]], dtype="float32")  # inside 20-29; 5 years under 35
    rows = np.array([[0.0, 0.0, 0.20, 0.29], [0.0, 0.0, 0.35, 0.35]], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(taught_interval_error(rows, predicted)), [0, 0.05], atol=1e-6
    )
    rows[:, :2] = [[0.5, 0.40], [0.5, 0.35]]  # half the weight on the teacher's 40 and 35
    halves = [0.5 * 0.15 + 0.5 * 0.0, 0.5 * 0.05 + 0.5 * 0.05]
    taught_error = np.asarray(taught_interval_error(rows, predicted))
    np.testing.assert_allclose(taught_error, halves, atol=1e-6)


def test_a_races_gender_factor_multiplies_only_its_faces_gender_weight(tmp_path):
    write_mixed_split(tmp_path)
    part = shard_files(tmp_path, "train")[0]
    table = pq.read_table(part)
    races = [[0, -1, 2, 1, 4, 1, 3, 2]]  # one face without a race: factor 1
    table = table.set_column(table.schema.get_field_index("race_index"), "race_index", races)
    pq.write_table(table, part)
    factors = {"black": 2.0, "asian": 1.5}
    ((_, _, weights),) = list(ParquetFaces([part], 32, 8, age_groups=8, gender_by_race=factors))
    np.testing.assert_allclose(weights["gender"], [1.0, 1.0, 1.5, 2.0, 0.5, 1.0, 0.5, 0.75])
    for head in ("age_group", "age"):
        np.testing.assert_allclose(weights[head], [1.0] * 4 + [0.5] * 4)
    np.testing.assert_allclose(weights["race"], [1.0, 0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])


def test_an_age_ranges_gender_factor_takes_the_faces_whose_age_or_whole_bin_lies_in_it(tmp_path):
    write_mixed_split(tmp_path)  # ages 9, 30, 45, 70; bins 10-19, 20-29, 30-39, 70-116
    files = shard_files(tmp_path, "train")
    ranges = TrainingConfig(gender_weight_by_age={"9-25": 2.0, "65+": 3.0}).gender_age_ranges()
    assert ranges == [(9, 25, 2.0), (65, 116, 3.0)]
    both = ParquetFaces(
        files, 32, 8, age_groups=8, gender_by_race={"white": 5.0}, gender_by_age=ranges
    )
    ((_, _, weights),) = list(both)  # the face of 9 is white; 20-29 spills out of 9-25
    np.testing.assert_allclose(weights["gender"], [10.0, 1.0, 1.0, 3.0, 1.0, 0.5, 0.5, 1.5])
    np.testing.assert_allclose(weights["race"], [1.0] * 4 + [0.5] * 4)
    with pytest.raises(ValueError, match="'teens' is not 'lo-hi' or 'lo\\+' years"):
        TrainingConfig(gender_weight_by_age={"teens": 2.0})
