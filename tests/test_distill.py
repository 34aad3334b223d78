"""Distillation targets (sparkface.train.distill): a teacher's predictions mixed with labels."""

from __future__ import annotations

import numpy as np

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
