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


class _ContrastTeacher:
    """A teacher whose answers follow each face's contrast, which blending two faces lowers."""

    def predict_on_batch(self, faces):
        spread = faces.astype(np.float32).std(axis=(1, 2, 3)).reshape(-1, 1) / 128.0

        def rows(count: int) -> np.ndarray:
            return np.hstack([spread] + [(1 - spread) / (count - 1)] * (count - 1))

        return {"age_group": rows(8), "gender": rows(2), "race": rows(5), "age": spread}


def blend_of(face: np.ndarray, faces: np.ndarray) -> tuple[int, int, float, float]:
    """The faces i, j of `faces` and the weight w whose blend w x faces[i] + (1 - w) x faces[j]
    lies closest to `face` (least squares), and the largest pixel error left."""
    best = (0, 0, 1.0, np.inf)
    for i in range(len(faces)):
        for j in range(len(faces)):
            a, b = faces[i].astype(float).ravel(), faces[j].astype(float).ravel()
            span = a - b
            weight = 1.0 if not span.any() else float(span @ (face.ravel() - b) / (span @ span))
            error = float(np.abs(weight * a + (1 - weight) * b - face.ravel()).max())
            if error < best[3]:
                best = (i, j, weight, error)
    return best


def test_mixed_up_batches_blend_faces_and_labels_alike_and_ask_the_teacher_about_the_blend():
    teacher = _ContrastTeacher()
    ((pixels, targets, _),) = list(
        taught(iter(labelled_batches()), teacher, 0.75, True, CLASSES, mixup=1.0, seed=3)
    )
    (_, labels, _), predicted = labelled_batches()[0], predict(teacher, pixels, flip=True)
    assert pixels.dtype == np.uint8 and not np.array_equal(pixels, FACES)
    # The teacher's share comes from the blended faces; the rest from labels blended the same way.
    hard = {head: (targets[head] - 0.75 * predicted[head]) / 0.25 for head in CLASSES}
    hard["age"] = (targets["age"].ravel() - 0.75 * predicted["age"] / AGE_SCALE) / 0.25
    ages, blended_faces = labels["age"].ravel(), 0
    for k, face in enumerate(pixels):
        i, j, weight, error = blend_of(face, FACES)
        assert error <= 0.6 and -0.01 <= weight <= 1.01
        blended_faces += i != j and 0.02 < weight < 0.98
        for head, count in CLASSES.items():
            onehot = np.eye(count)
            expected = weight * onehot[labels[head][i]] + (1 - weight) * onehot[labels[head][j]]
            np.testing.assert_allclose(hard[head][k], expected, atol=0.02)
        assert abs(hard["age"][k] - (weight * ages[i] + (1 - weight) * ages[j])) < 0.02
    assert blended_faces >= 3  # of 6: a face may draw itself, or a weight near 0 or 1
    # A share of the batches: about that many are blended, the others left as they were.
    batches = [labelled_batches()[0]] * 40
    outcome = [p is FACES for p, *_ in taught(iter(batches), teacher, 0.75, False, CLASSES, 0.5)]
    assert 10 <= sum(outcome) <= 30
