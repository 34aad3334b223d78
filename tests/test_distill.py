"""Distillation targets (sparkface.train.distill): a teacher's predictions mixed with labels."""

from __future__ import annotations

import numpy as np
import pytest

from sparkface.core.contract import AGE_SCALE
from sparkface.core.package import predict
from sparkface.train.distill import taught, with_one_hot_labels
from tests.test_ensemble import FACES, GROUPS, member

CLASSES = {"age_group": len(GROUPS), "gender": 2, "race": 5}


def labelled_batches():
    labels = {
        "age_group": np.array([0, 3, 7, 1, 2, 5], dtype="int32"),
        "gender": np.array([0, 1, 1, 0, 0, 1], dtype="int32"),
        "race": np.array([4, 0, 1, 2, 3, 0], dtype="int32"),
        "age": (np.array([8, 30, 70, 14, 20, 50], dtype="float32") / AGE_SCALE).reshape(-1, 1),
    }
    weights = {"race": np.full(6, 2.0, dtype="float32")}
    return [(FACES, labels, weights)]


def test_targets_are_the_share_of_the_teachers_predictions_and_the_rest_of_the_labels():
    teacher, batches = member(1), labelled_batches()
    ((pixels, targets, weights),) = list(taught(iter(batches), teacher, 0.75, True, CLASSES))
    (_, labels, given), predicted = batches[0], predict(teacher, FACES, flip=True)
    assert pixels is FACES and weights is given
    for head, count in CLASSES.items():
        hard = np.eye(count)[labels[head]]
        np.testing.assert_allclose(targets[head], 0.75 * predicted[head] + 0.25 * hard, atol=1e-6)
        np.testing.assert_allclose(targets[head].sum(axis=1), 1.0, atol=1e-5)
    ages = 0.75 * predicted["age"] / AGE_SCALE + 0.25 * labels["age"].ravel()
    np.testing.assert_allclose(targets["age"].ravel(), ages, atol=1e-6)
    # Without the mirror image the teacher's part differs: flip is passed on.
    ((_, unflipped, _),) = list(taught(iter(labelled_batches()), teacher, 0.75, False, CLASSES))
    assert not np.allclose(unflipped["race"], targets["race"])


def test_validation_labels_become_one_hot_rows():
    ((_, labels, _),) = list(with_one_hot_labels(iter(labelled_batches()), CLASSES))
    np.testing.assert_array_equal(
        labels["gender"], [[1, 0], [0, 1], [0, 1], [1, 0], [1, 0], [0, 1]]
    )
    assert labels["age_group"].shape == (6, 8) and labels["age_group"][2, 7] == 1.0


@pytest.mark.slow
def test_a_student_learns_from_a_teacher_beside_age_bins_and_is_validated_on_the_labels(tmp_path):
    """Training with a teacher on shards of exact ages and bins (the world's recipes): the taught
    targets train, and the validation losses are the labels' own, as without a teacher."""
    from sparkface.train.model import compile_model, make_model
    from sparkface.train.shards import ParquetFaces, shard_files
    from tests.test_age_bins import write_mixed_split
    from tests.test_ensemble import CONFIG

    for split in ("train", "validation"):
        write_mixed_split(tmp_path, split)
    classes = {"age_group": len(GROUPS), "gender": 2, "race": 5}

    def stream(split):
        return ParquetFaces(shard_files(tmp_path, split), 32, 4, age_groups=len(GROUPS))

    student = make_model(CONFIG, 32, len(GROUPS), seed=2)
    compile_model(student, 0.01, 0.0, {}, soft_targets=True, intervals=True)
    history = student.fit(
        taught(iter(stream("train")), member(1), 0.5, True, classes), steps_per_epoch=2, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()
    assert "age_group_compatible_accuracy" in history.history
    taught_scores = student.evaluate(
        with_one_hot_labels(iter(stream("validation")), classes), return_dict=True, verbose=0
    )
    compile_model(student, 0.01, 0.0, {}, intervals=True)
    label_scores = student.evaluate(iter(stream("validation")), return_dict=True, verbose=0)
    for name in ("age_group_loss", "age_loss", "age_group_compatible_accuracy"):
        assert taught_scores[name] == pytest.approx(label_scores[name], rel=1e-4), name
