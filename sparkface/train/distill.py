"""Distillation: a student network trained on a teacher model's predictions mixed with the labels.

The teacher (a model package: the shipped ensemble) scores every augmented training batch as
scoring does (with the mirror image when its descriptor says so). Each class head's target becomes
`share` x the teacher's probabilities + (1 - share) x the one-hot label, and the age target the same
mix of ages; one cross-entropy on such targets is `share` x the distillation loss + (1 - share) x
the labels' loss (temperature 1). The teacher's probabilities are those it ships with (class
weights already taken out where its descriptor says so), so a student trained this way needs no
class weights of its own.

Faces labelled with age bounds (FairFace's bins beside exact ages) keep their labels as they are:
the age heads' targets hold the teacher's share of its answer beside the label's mask of groups
or its bounds, and the losses weigh the two (`mixed_targets`), so no bin becomes made-up ages.
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
        predicted = predict(teacher, pixels, flip=flip)
        predicted["age"] = predicted["age"].reshape(-1, 1) / AGE_SCALE
        yield (pixels, mixed_targets(labels, predicted, share, classes), *batch[2:])


def mixed_targets(
    labels: dict[str, np.ndarray],
    predicted: dict[str, np.ndarray],
    share: float,
    classes: dict[str, int],
) -> dict[str, np.ndarray]:
    """`share` x the teacher's predictions + the rest x the labels. Where the labels are age
    bounds (`interval_labels`), the age heads' rows carry the teacher's part and the label's side
    by side instead, for `taught_partial_crossentropy` and `taught_interval_error`
    (sparkface.train.model), so that a bin is never turned into made-up ages."""
    if not interval_labels(labels):
        hard = hard_targets(labels, classes)
        return {
            head: (share * predicted[head] + (1.0 - share) * hard[head]).astype("float32")
            for head in hard
        }
    targets = {
        head: (share * predicted[head] + (1.0 - share) * one_hot(labels[head], classes[head]))
        for head in ("gender", "race")
    }
    rows = len(labels["gender"])
    targets["age_group"] = np.concatenate(
        [share * predicted["age_group"], labels["age_group"]], axis=1
    )
    targets["age"] = np.concatenate(
        [np.full((rows, 1), share), predicted["age"].reshape(rows, 1), labels["age"]], axis=1
    )
    return {head: row.astype("float32") for head, row in targets.items()}


def interval_labels(labels: dict[str, np.ndarray]) -> bool:
    """Whether a batch's labels are age bounds: a mask of age groups and [low, high] ages
    (ParquetFaces with `age_groups`), rather than one group and one age per face."""
    return np.ndim(labels["age_group"]) == 2 and np.shape(labels["age"])[-1] == 2


def hard_targets(labels: dict[str, np.ndarray], classes: dict[str, int]) -> dict[str, np.ndarray]:
    """Exact labels as target rows: one-hot classes and the age (age bounds go through
    `mixed_targets` instead)."""
    hard = {head: one_hot(labels[head], classes[head]) for head in CLASS_HEADS}
    hard["age"] = np.asarray(labels["age"], dtype="float32").reshape(-1, 1)
    return hard


def with_one_hot_labels(batches: Iterator[tuple], classes: dict[str, int]) -> Iterator[tuple]:
    """Each batch with its labels as `hard_targets` rows: the labels a student is validated on.
    Age bounds keep the taught layout with no teacher's part (its share 0), so that validation
    measures the labels' own losses."""
    for batch in batches:
        labels = batch[1]
        if interval_labels(labels):
            rows = len(labels["gender"])
            silent = {head: np.zeros((rows, count)) for head, count in classes.items()}
            silent["age"] = np.zeros((rows, 1))
            yield (batch[0], mixed_targets(labels, silent, 0.0, classes), *batch[2:])
        else:
            yield (batch[0], hard_targets(labels, classes), *batch[2:])


def one_hot(indices: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count, dtype="float32")[np.asarray(indices).reshape(-1)]
