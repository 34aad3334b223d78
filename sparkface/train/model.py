"""The face-attribute CNN, in backend-neutral Keras 3.

The model takes uint8 RGB faces as `decode_face` makes them and rescales them itself, so
training and scoring share every step of preprocessing. Augmentation is not in the model: the
training stream applies it (`sparkface.train.augment`), which keeps the graph XLA-friendly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sparkface.core.config import ModelConfig
from sparkface.core.contract import CLASS_HEADS, HEADS

if TYPE_CHECKING:
    import keras


def _activation(name: str):
    from keras import layers

    return layers.LeakyReLU(negative_slope=0.1) if name == "leaky_relu" else layers.ReLU()


def _dense_stack(x, config: ModelConfig, seed: int, prefix: str):
    """The dense layers with their activation and dropout, named `{prefix}dense0`, ..."""
    from keras import layers

    for index, units in enumerate(config.dense_units):
        x = layers.Dense(units, name=f"{prefix}dense{index}")(x)
        x = _activation(config.activation)(x)
        x = layers.Dropout(config.dropout, seed=seed + index, name=f"{prefix}dropout{index}")(x)
    return x


def make_model(
    config: ModelConfig,
    image_size: int,
    n_age_groups: int,
    n_genders: int = 2,
    n_races: int = 5,
    seed: int = 0,
) -> keras.Model:
    """Conv -> BatchNorm -> activation -> MaxPool cycles, two dense layers with dropout, and four
    heads: age group, gender, race (softmax) and age in years (regression). The convolutions of
    `config.separable_blocks` are depthwise-separable, but one on the RGB face."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="uint8", name="face")
    x = layers.Rescaling(1.0 / 255.0, name="normalise")(inputs)
    for block, filters in enumerate(config.filters):
        for conv in range(config.convs_per_block):
            separable = block in config.separable_blocks and x.shape[-1] > 3
            kind = layers.SeparableConv2D if separable else layers.Conv2D
            x = kind(filters, 3, padding="same", use_bias=False, name=f"conv{block}_{conv}")(x)
            x = layers.BatchNormalization(name=f"bn{block}_{conv}")(x)
            x = _activation(config.activation)(x)
        if x.shape[1] > 1:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    features = layers.GlobalAveragePooling2D(name="pool_features")(x)
    x = _dense_stack(features, config, seed + 10, "")
    outputs = {
        "age_group": layers.Dense(
            n_age_groups, activation="softmax", dtype="float32", name="age_group"
        )(x),
        "gender": layers.Dense(n_genders, activation="softmax", dtype="float32", name="gender")(x),
        "race": layers.Dense(n_races, activation="softmax", dtype="float32", name="race")(x),
        "age": layers.Dense(1, dtype="float32", name="age")(x),
    }
    return keras.Model(inputs, outputs, name="sparkface_cnn")


def undo_class_weights(model: keras.Model, head: str, weights) -> None:
    """Take the class weights a softmax head was trained with back out of its predictions, in place.

    A head trained with class weights w learns, at best, p(c|x) in proportion to w_c times the
    data's own p(c|x). Adding -log(w_c) to the bias of its final layer (a Dense with softmax)
    divides each probability by w_c and renormalises, giving back the probabilities of the data's
    own class frequencies: the rule that gets the most faces right, at the cost of rare classes'
    recall."""
    layer = model.get_layer(head)
    kernel, bias = layer.get_weights()
    weights = np.asarray(weights, dtype="float64")
    if weights.shape != bias.shape or (weights <= 0).any():
        raise ValueError(f"{head}: need {bias.shape[0]} positive class weights, got {weights}")
    layer.set_weights([kernel, (bias - np.log(weights)).astype(bias.dtype)])


def partial_label_crossentropy(mask, probabilities):
    """-log of the probability on the classes a face's label allows (a mask of them): for an age
    bin, the age groups it spans; for an exact age, one group, where this is cross-entropy."""
    import keras
    from keras import ops

    allowed = ops.sum(ops.cast(mask, probabilities.dtype) * probabilities, axis=-1)
    return -ops.log(ops.clip(allowed, keras.config.epsilon(), 1.0))


def interval_absolute_error(bounds, predicted):
    """How far the predicted age lies outside a face's [low, high] bounds (no loss inside a bin;
    the absolute error for an exact age, whose bounds are equal)."""
    from keras import ops

    bounds = ops.cast(bounds, predicted.dtype)
    below = ops.relu(bounds[:, :1] - predicted)
    above = ops.relu(predicted - bounds[:, 1:])
    return ops.mean(below + above, axis=-1)


def compatible_accuracy(mask, probabilities):
    """1 where the most probable class is one the label allows."""
    from keras import ops

    best = ops.one_hot(ops.argmax(probabilities, axis=-1), ops.shape(probabilities)[-1])
    return ops.max(ops.cast(mask, best.dtype) * best, axis=-1)


def taught_partial_crossentropy(target, probabilities):
    """A teacher's age-group probabilities beside a face's label, without making up a group: the
    target row is the teacher's probabilities times its share (zeros where no teacher speaks, as
    on validation faces), then the mask of the groups the label allows. The loss is the teacher's
    cross-entropy, weighted by its share, plus the rest of the weight on
    `partial_label_crossentropy` (sparkface.train.distill)."""
    import keras
    from keras import ops

    groups = probabilities.shape[-1]
    taught, mask = target[:, :groups], target[:, groups:]
    share = ops.sum(taught, axis=-1)
    logs = ops.log(ops.clip(probabilities, keras.config.epsilon(), 1.0))
    return -ops.sum(taught * logs, axis=-1) + (1.0 - share) * partial_label_crossentropy(
        mask, probabilities
    )


def taught_interval_error(target, predicted):
    """The teacher's age beside a face's age bounds: the target row is the teacher's share, its
    age (in AGE_SCALE units), then the bounds. The loss is the share times the distance from the
    teacher's age plus the rest times `interval_absolute_error` (no loss inside a bin)."""
    from keras import ops

    share = target[:, 0]
    taught = ops.abs(predicted[:, 0] - ops.cast(target[:, 1], predicted.dtype))
    return share * taught + (1.0 - share) * interval_absolute_error(target[:, 2:], predicted)


def _label_part(metric, first):
    """`metric` on the label's part of a taught target row (its columns from `first` on, or
    after the probabilities' width when `first` is None), under the metric's own name."""

    def measured(target, predicted):
        start = predicted.shape[-1] if first is None else first
        return metric(target[:, start:], predicted)

    measured.__name__ = metric.__name__
    return measured


def compile_model(
    model: keras.Model,
    learning_rate: float,
    weight_decay: float,
    loss_weights: dict[str, float],
    steps: int | None = None,
    xla: bool = False,
    warmup_steps: int = 0,
    soft_targets: bool = False,
    intervals: bool = False,
    hold_steps: int = 0,
    hold_learning_rate: float = 0.0,
) -> None:
    """AdamW with cosine decay over `steps` (constant when None), the first `warmup_steps` of them
    rising linearly from 0; with `hold_steps`, the decay ends that many steps early, at
    `hold_learning_rate`, and holds it (the epochs whose weights are averaged:
    sparkface.train.averaging). Cross-entropy for the class heads, mean absolute error (in years /
    AGE_SCALE) for age. With `soft_targets`, the class heads' targets are probability rows (a
    teacher's mixed with the labels: sparkface.train.distill) rather than class indices.
    With `intervals`, the age-group target is a mask of the groups a face's age bounds span and
    the age target the bounds themselves (a bin, or an exact age twice): partial-label
    cross-entropy and the interval error, which equal the plain losses for exact ages. With both,
    the age heads' targets carry the teacher's part and the label's side by side
    (`taught_partial_crossentropy`, `taught_interval_error`): no age is made up for a bin.

    With `xla`, the training step is compiled with XLA on the CPU too (Keras's "auto" turns it on
    only for accelerators; research/benchmarks/step_speed.py: at 48x48 it made a 64-px recipe's
    network 1.8x faster on this CPU, at 64x64 2x slower). The torch backend keeps its own default,
    since jit there means torch.compile."""
    import keras

    jit_compile = True if xla and keras.backend.backend() != "torch" else "auto"

    # CosineDecay holds its last rate once its steps are done.
    alpha = hold_learning_rate / learning_rate if hold_steps and learning_rate else 0.02
    if steps and warmup_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=steps - hold_steps - warmup_steps,
            alpha=alpha,
            warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
    elif steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            learning_rate, steps - hold_steps, alpha=alpha
        )
    else:
        schedule = learning_rate
    losses = {
        **dict.fromkeys(
            CLASS_HEADS,
            "categorical_crossentropy" if soft_targets else "sparse_categorical_crossentropy",
        ),
        "age": "mean_absolute_error",
    }
    metrics = {**{head: ["accuracy"] for head in CLASS_HEADS}, "age": ["mean_absolute_error"]}
    if intervals and not soft_targets:
        losses["age_group"] = partial_label_crossentropy
        losses["age"] = interval_absolute_error
        metrics["age_group"] = [compatible_accuracy]
        metrics["age"] = [interval_absolute_error]
    elif intervals:
        losses["age_group"] = taught_partial_crossentropy
        losses["age"] = taught_interval_error
        metrics["age_group"] = [_label_part(compatible_accuracy, None)]
        metrics["age"] = [_label_part(interval_absolute_error, 2)]
    weights = {head: float(loss_weights.get(head, 1.0)) for head in HEADS}
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay),
        loss=losses,
        loss_weights=weights,
        metrics=metrics,
        jit_compile=jit_compile,
    )
