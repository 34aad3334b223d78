"""Distillation: a student network trained on a teacher model's predictions mixed with the labels.

The teacher (a model package: the shipped ensemble) scores every augmented training batch as
scoring does (with the mirror image when its descriptor says so). Each class head's target becomes
`share` x the teacher's probabilities + (1 - share) x the one-hot label, and the age target the same
mix of ages; one cross-entropy on such targets is `share` x the distillation loss + (1 - share) x
the labels' loss (temperature 1). The teacher's probabilities are those it ships with (class
weights already taken out where its descriptor says so), so a student trained this way needs no
class weights of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sparkface.core.contract import AGE_SCALE, CLASS_HEADS
from sparkface.core.package import predict


def taught(
    batches: Iterator[tuple],
    teacher,
    share: float,
    flip: bool,
    classes: dict[str, int],
) -> Iterator[tuple]:
    """Each (pixels, labels[, weights]) batch with its targets mixed from the teacher's
    predictions and the labels (`classes`: the number of classes of each class head)."""
    for batch in batches:
        pixels, labels = batch[0], batch[1]
        hard = hard_targets(labels, classes)
        predicted = predict(teacher, pixels, flip=flip)
        predicted["age"] = predicted["age"].reshape(-1, 1) / AGE_SCALE
        targets = {
            head: (share * predicted[head] + (1.0 - share) * hard[head]).astype("float32")
            for head in hard
        }
        yield (pixels, targets, *batch[2:])


def hard_targets(labels: dict[str, np.ndarray], classes: dict[str, int]) -> dict[str, np.ndarray]:
    """The labels as target rows: one-hot classes, or, where a label allows several (a mask: an
    age bin spanning age groups), its mass spread evenly over them; the age, or the middle of its
    bounds."""
    hard = {}
    for head in CLASS_HEADS:
        value = np.asarray(labels[head])
        if value.ndim == 2:
            hard[head] = (value / value.sum(axis=1, keepdims=True)).astype("float32")
        else:
            hard[head] = one_hot(value, classes[head])
    age = np.asarray(labels["age"], dtype="float32").reshape(len(hard["gender"]), -1)
    hard["age"] = age.mean(axis=1, keepdims=True)
    return hard


def with_one_hot_labels(batches: Iterator[tuple], classes: dict[str, int]) -> Iterator[tuple]:
    """Each batch with its labels as `hard_targets` rows: the labels a student is validated on."""
    for batch in batches:
        yield (batch[0], hard_targets(batch[1], classes), *batch[2:])


def one_hot(indices: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count, dtype="float32")[np.asarray(indices).reshape(-1)]
