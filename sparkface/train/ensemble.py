"""Several trained models of the same inputs and classes as one model that averages them.

The averaged model is an ordinary Keras model with the same input and the same four outputs, so
scoring, evaluation and the package format do not change. Averaging the predictions of
independently trained networks lowers their variance: on this data it gained about a point of
race accuracy and 0.2-0.3 years of age error (models/README.md).

Each member is copied over fresh layers, and a 3x3 convolution that only ever sees a 1x1 feature
map (the last cycle of a 48x48 network, after five poolings) is stored as its centre tap, a 1x1
convolution: with "same" padding the other eight taps multiply zeros, so the result is exactly
the same while the member's weights shrink by more than half.

Members trained with class weights predict rare classes more often than they occur. For a head
where accuracy matters more than rare classes' recall, the ensemble can take those weights back
out of each member (`undo_class_weights`): on this data that gained a point of exact age group
on the validation split (models/README.md).

Networks of one architecture fine-tuned from one network can instead be averaged weight by weight
(`build_weight_average`, a "model soup": Wortsman et al. 2022): one network, scored at one
network's cost. It works only where the members stay in one basin of the loss, so the validation
split decides whether a soup is kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sparkface.core.config import ModelConfig, TrainingConfig
from sparkface.core.contract import CLASS_HEADS, HEADS, KERAS_FILE
from sparkface.core.errors import UserError
from sparkface.core.package import (
    flip_for,
    load_model_file,
    new_version,
    read_descriptor,
    save_package,
)
from sparkface.evaluate.metrics import headline
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.split import evaluate_split
from sparkface.train.averaging import recalibrate_batch_norm
from sparkface.train.model import undo_class_weights
from sparkface.train.shards import (
    ParquetFaces,
    shard_files,
    split_rows,
    train_class_weights,
)


class EnsembleError(UserError):
    """Members, shards or options that do not fit together; the message says which."""


# Descriptor keys every member must agree on: they define what the model takes and predicts.
SHARED_KEYS = (
    "input_size",
    "input_dtype",
    "preprocessing",
    "flip_test_time",
    "classes",
    "training_faces",
)


def sees_one_pixel(layer) -> bool:
    """A stride-1, "same"-padded convolution whose input is 1x1: only its centre tap counts."""
    import keras

    return (
        isinstance(layer, keras.layers.Conv2D)
        and layer.padding == "same"
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and all(k % 2 == 1 for k in layer.kernel_size)
        and tuple(layer.input.shape[1:3]) == (1, 1)
    )


def centre_tap(kernel: np.ndarray) -> np.ndarray:
    """A Keras convolution kernel (height, width, in, out) cut to its centre tap: all that counts
    of a convolution that `sees_one_pixel`."""
    row, column = kernel.shape[0] // 2, kernel.shape[1] // 2
    return kernel[row : row + 1, column : column + 1]


def compact_copy(model, prefix: str, inputs):
    """`model` rebuilt on `inputs` over new layers named `prefix` + name, with every convolution
    that sees a 1x1 feature map reduced to its centre tap; the outputs, as a dict by head."""
    import keras

    reduced = {layer.name for layer in model.layers if sees_one_pixel(layer)}

    def clone(layer):
        config = layer.get_config()
        config["name"] = f"{prefix}{layer.name}"
        if layer.name in reduced:
            config["kernel_size"] = (1, 1)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = layer.get_weights()
        if layer.name in reduced:
            weights[0] = centre_tap(weights[0])
        copy.get_layer(f"{prefix}{layer.name}").set_weights(weights)
    return copy.output


def average_models(models: list, name: str = "sparkface_ensemble"):
    """One model over the shared input whose every output is the mean of the members' outputs."""
    import keras

    first = models[0]
    inputs = keras.Input(
        shape=first.input.shape[1:], dtype=first.input.dtype, name=first.input.name
    )
    outputs = [compact_copy(model, f"m{index}_", inputs) for index, model in enumerate(models)]
    averaged = {
        head: keras.layers.Average(name=head)([output[head] for output in outputs])
        if len(outputs) > 1
        else keras.layers.Identity(name=head)(outputs[0][head])
        for head in HEADS
    }
    return keras.Model(inputs, averaged, name=name)


def _check_members(descriptors: list[dict[str, Any]], paths: list[str]) -> None:
    first = descriptors[0]
    for path, descriptor in zip(paths[1:], descriptors[1:], strict=True):
        for key in SHARED_KEYS:
            if descriptor.get(key) != first.get(key):
                raise EnsembleError(f"{path}: {key} differs from {paths[0]}'s")
        fingerprint = descriptor.get("training_data", {}).get("fingerprint")
        if fingerprint != first.get("training_data", {}).get("fingerprint"):
            raise EnsembleError(
                f"{path}: trained on other data than {paths[0]} (training data fingerprint "
                "differs), so its test split is not theirs"
            )


def _training_class_weights(
    heads: tuple[str, ...], descriptors: list[dict[str, Any]], paths: list[str], shards: Path
) -> dict[str, list[float]]:
    """The class weights the members were trained with, for `heads`: recomputed from the shards'
    train split exactly as training computes them."""
    for head in heads:
        if head not in CLASS_HEADS:
            raise EnsembleError(f"--undo-class-weights {head}: not a class head")
    for path, descriptor in zip(paths, descriptors, strict=True):
        if not descriptor.get("config", {}).get("training", {}).get("class_weights"):
            raise EnsembleError(f"{path}: trained without class weights, there are none to undo")
    first = descriptors[0]
    weights = train_class_weights(
        shards, int(first["input_size"][0]), len(first["classes"]["age_group"])
    )
    return {head: [round(float(w), 6) for w in weights[head]] for head in heads}


def build_ensemble(
    members: list[str],
    shards_dir: str | Path,
    output_dir: str | Path,
    name: str = "sparkface-cnn",
    undo: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Average the model packages `members` into one package in `output_dir`, evaluated on the
    validation and test splits of `shards_dir` (the shards the members were trained on). For
    each head in `undo`, the class weights the members were trained with are first taken out of
    every member's predictions. Member i's training history, when its run left one, is copied to
    `members/m{i}-history.csv`."""
    descriptors = [read_descriptor(member) for member in members]
    _check_members(descriptors, members)
    shards = Path(shards_dir)
    # Undone class weights come from the train split: it too must be the members'.
    _check_shards(shards, descriptors[0], ("train", "validation", "test") if undo else ())
    undone = _training_class_weights(undo, descriptors, members, shards) if undo else {}
    loaded = [load_model_file(Path(member) / KERAS_FILE) for member in members]
    for member_model in loaded:
        for head, weights in undone.items():
            undo_class_weights(member_model, head, weights)
    model = average_models(loaded)
    validation, metrics = _evaluate(model, shards, descriptors[0], Path(output_dir), len(members))
    how = {
        "method": "mean of the members' outputs (probabilities and age)",
        # Per head: the training class weights taken out of every member's probabilities.
        "class_weights_undone": undone,
    }
    return _write_package(
        model, members, descriptors, output_dir, name, validation, metrics, "ensemble", how
    )


def mean_weights(models: list, shares: list[float] | None = None) -> dict[str, list[np.ndarray]]:
    """The element-wise mean of the weights of networks with the same layers (names and shapes),
    batch-normalisation statistics included, by layer name, each network weighing its share
    (equal by default); an error naming the first layer that differs."""
    first = models[0]
    weighted = [layer for layer in first.layers if layer.weights]
    for index, model in enumerate(models[1:], start=1):
        theirs = {layer.name: layer for layer in model.layers if layer.weights}
        for layer in weighted:
            other = theirs.pop(layer.name, None)
            shapes = [tuple(w.shape) for w in layer.weights]
            if other is None or [tuple(w.shape) for w in other.weights] != shapes:
                raise EnsembleError(
                    f"member {index}: layer {layer.name!r} is missing or has other shapes than "
                    "member 0's; only networks of one architecture can be averaged weight by weight"
                )
        if theirs:
            raise EnsembleError(f"member {index}: has layers member 0 lacks: {sorted(theirs)}")
    averaged = {}
    for layer in weighted:
        stacks = zip(*(model.get_layer(layer.name).get_weights() for model in models), strict=True)
        averaged[layer.name] = [
            np.average(np.stack(stack).astype("float64"), axis=0, weights=shares).astype(
                stack[0].dtype
            )
            for stack in stacks
        ]
    return averaged


def build_weight_average(
    members: list[str],
    shards_dir: str | Path,
    output_dir: str | Path,
    name: str = "sparkface-cnn",
    norm_batches: int = 200,
) -> dict[str, Any]:
    """One network whose weights are the mean of the single networks `members` (same architecture,
    same training data), its batch-normalisation statistics estimated again over `norm_batches`
    augmented batches of the train split as the members were trained on it, evaluated on the
    validation and test splits of `shards_dir` and saved as a package in `output_dir`."""
    descriptors = [read_descriptor(member) for member in members]
    _check_members(descriptors, members)
    for member, descriptor in zip(members, descriptors, strict=True):
        if "ensemble" in descriptor:
            raise EnsembleError(f"{member}: an ensemble; average single networks weight by weight")
    shards = Path(shards_dir)
    _check_shards(shards, descriptors[0], ("train", "validation", "test"))
    loaded = [load_model_file(Path(member) / KERAS_FILE) for member in members]
    model = loaded[0]
    for layer_name, weights in mean_weights(loaded).items():
        model.get_layer(layer_name).set_weights(weights)
    used = recalibrate_batch_norm(model, iter(_train_stream(shards, descriptors[0])), norm_batches)
    validation, metrics = _evaluate(model, shards, descriptors[0], Path(output_dir), len(members))
    how = {
        "method": "mean of the members' weights, batch-norm statistics estimated again",
        "batch_norm_batches": used,
    }
    # One network of the members' architecture: its config is theirs (for later rounds from it).
    return _write_package(
        model, members, descriptors, output_dir, name, validation, metrics, "weight_average", how,
        kept=("config",),
    )  # fmt: skip


def _train_stream(shards: Path, descriptor: dict[str, Any]) -> ParquetFaces:
    """The train split streamed as the member described trained on it: its batch size, shuffle
    buffer, seed and augmentation (the config's defaults where its descriptor has none)."""
    config = descriptor.get("config", {})
    training = {**TrainingConfig().model_dump(), **config.get("training", {})}
    model = {**ModelConfig().model_dump(), **config.get("model", {})}
    return ParquetFaces(
        shard_files(shards, "train"),
        int(descriptor["input_size"][0]),
        int(training["batch_size"]),
        shuffle_buffer=int(training["shuffle_buffer"]),
        repeat=True,
        seed=int(config.get("seed", 0)),
        augment=bool(model["augment"]),
        light=bool(model.get("augment_light", False)),
        gray=float(model.get("augment_gray", 0.0)),
    )


def _write_package(
    model,
    members: list[str],
    descriptors: list[dict[str, Any]],
    output_dir: str | Path,
    name: str,
    validation: dict[str, Any],
    metrics: dict[str, Any],
    section: str,
    how: dict[str, Any],
    kept: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Save the averaged `model` as a package with its descriptor: what the members share (and
    the first member's `kept` keys), both splits' metrics, and under `section` how they were
    averaged (`how`) and who they were. Member histories are copied beside it."""
    descriptor = {
        **{key: descriptors[0].get(key) for key in (*SHARED_KEYS, "training_data", *kept)},
        "name": name,
        "version": new_version(),
        "metrics": headline(metrics),
        "validation_metrics": headline(validation),
        section: {
            **how,
            "members": [
                _member_entry(member, descriptor)
                for member, descriptor in zip(members, descriptors, strict=True)
            ],
        },
    }
    save_package(model, descriptor, output_dir)
    _copy_histories(members, Path(output_dir))
    return descriptor


def _check_shards(shards: Path, first: dict[str, Any], splits: tuple[str, ...]) -> None:
    """The shards' splits (validation and test, and `splits`) hold the members' row counts."""
    expected = first["training_data"]
    for split in dict.fromkeys((*splits, "validation", "test")):
        rows = split_rows(shards, split)
        if split in expected and rows != expected[split]:
            raise EnsembleError(
                f"{shards}: the {split} split has {rows} faces, the members were trained with "
                f"{expected[split]}: not their shards"
            )


def _evaluate(
    model, shards: Path, first: dict[str, Any], output: Path, members: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The averaged model's validation and test metrics; the test report in the package."""
    size = int(first["input_size"][0])
    groups = tuple(first["classes"]["age_group"])
    flip = flip_for(first)
    validation = evaluate_split(model, shards, "validation", size, flip, groups)
    metrics = evaluate_split(model, shards, "test", size, flip, groups)
    write_evaluation(
        metrics,
        groups,
        output / "test-evaluation",
        f"Test split of {first['training_data'].get('input')} ({metrics['faces']} faces), "
        f"average of {members} models",
    )
    return validation, metrics


def _member_entry(path: str, descriptor: dict[str, Any]) -> dict[str, Any]:
    """What the ensemble's descriptor keeps of a member."""
    keys = (
        "gender_accuracy",
        "race_accuracy",
        "age_group_accuracy",
        "age_group_within_one",
        "age_mae_years",
    )
    return {
        "path": str(path),
        "version": descriptor.get("version"),
        "test_metrics": {k: descriptor.get("metrics", {}).get(k) for k in keys},
        "training": descriptor.get("training"),
        "config": descriptor.get("config"),
    }


def _copy_histories(members: list[str], output: Path) -> None:
    for index, member in enumerate(members):
        # A training run leaves its per-epoch history beside its package (OUT/training/).
        history = Path(member).parent / "training" / "history.csv"
        if history.is_file():
            (output / "members").mkdir(exist_ok=True)
            shutil.copyfile(history, output / "members" / f"m{index}-history.csv")
