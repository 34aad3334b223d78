"""A Keras model package converted for TensorFlow Lite, checked against the Keras model on the
shards' validation and test splits before it is written.

The converted package scores like its source (same input, classes and preprocessing; `runtime:
tflite` in its descriptor), with or without the mirror image (`flip`: the source's choice unless
told; true, false, or one per mode as `sparkface.core.package.flip_for` reads it). It records how
far its answers lie from the Keras model's scored the same way (the shards are face crops, scored
as aligned mode scores): per head, the share of faces whose predicted class changed and the
largest difference in a probability, and the largest difference in age. A conversion that
changes more classes than `max_changed` allows is refused rather than written. Its metrics stand
beside the Keras model's as the source scores (with its own flip), so that what dropping the
mirror costs is on record.

With int8 activations, the ranges of every layer are calibrated on `calibration_count` faces of
the shards' train split, each also mirrored.

A package already converted can change only its mirror setting (`remirror_package`): the same
`model.tflite`, byte for byte, with another `flip_test_time`, its metrics measured again and how
far its answers lie from the package's own, so that a policy change ships without a new network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sparkface.core.contract import CLASS_HEADS, DESCRIPTOR_FILE, KERAS_FILE, TFLITE_FILE
from sparkface.core.errors import PackageError, UserError
from sparkface.core.package import (
    file_sha256,
    flip_for,
    flip_in_mode,
    load_model_file,
    mirrored,
    new_version,
    read_descriptor,
)
from sparkface.core.runtime import TFLiteModel, runtime_of, to_tflite
from sparkface.evaluate.metrics import compute_metrics, headline
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.split import predict_stream
from sparkface.train.shards import ParquetFaces, shard_files, split_rows

CALIBRATION_SEED = 0


class ConversionError(UserError):
    """The converted model's answers differ from the Keras model's by more than allowed."""


def agreement(converted: dict[str, np.ndarray], keras: dict[str, np.ndarray]) -> dict[str, Any]:
    """How far the converted model's predictions lie from the Keras model's, head by head."""
    result: dict[str, Any] = {}
    for head in CLASS_HEADS:
        result[head] = {
            "class_changed": round(
                float(np.mean(converted[head].argmax(1) != keras[head].argmax(1))), 5
            ),
            "max_probability_difference": round(
                float(np.abs(converted[head] - keras[head]).max()), 5
            ),
        }
    result["age"] = {
        "max_years_difference": round(float(np.abs(converted["age"] - keras["age"]).max()), 3)
    }
    return result


def calibration_faces(shards_dir: str | Path, size: int, count: int) -> list[np.ndarray]:
    """`count` faces of the train split (shuffled with a fixed seed), each batch followed by its
    mirror image: what int8 activations are calibrated on."""
    stream = ParquetFaces(
        shard_files(shards_dir, "train"), size, 64, shuffle_buffer=2048, seed=CALIBRATION_SEED
    )
    batches: list[np.ndarray] = []
    taken = 0
    for faces, *_ in stream:
        faces = faces[: count - taken]
        batches += [faces, mirrored(faces)]
        taken += len(faces)
        if taken >= count:
            break
    return batches


def refuse_changes(check: dict[str, Any], split: str, max_changed: float, doing: str) -> None:
    """Refuse a package whose predicted class changes for more than `max_changed` of a split's
    faces in any head (`check`: `agreement`'s answer on that split)."""
    for head in CLASS_HEADS:
        changed = check[head]["class_changed"]
        if changed > max_changed:
            raise ConversionError(
                f"{doing}, {head} changes class for {changed:.1%} of the {split} faces "
                f"(at most {max_changed:.1%} allowed)"
            )


def check_split_rows(shards_dir: str | Path, split: str, descriptor: dict[str, Any]) -> None:
    """Refuse shards whose `split` does not hold as many faces as the model was trained with."""
    expected = descriptor.get("training_data", {}).get(split)
    rows = split_rows(shards_dir, split)
    if expected is not None and rows != expected:
        raise PackageError(
            f"{shards_dir}: the {split} split has {rows} faces, the model was "
            f"trained with {expected}: not its shards"
        )


def convert_package(
    model_dir: str | Path,
    shards_dir: str | Path,
    output_dir: str | Path,
    weights: str = "int8",
    max_changed: float = 0.02,
    activations: str = "float32",
    flip: bool | float | dict[str, bool] | None = None,
    calibration_count: int = 512,
) -> dict[str, Any]:
    """Convert the Keras package `model_dir` into a TensorFlow Lite package in `output_dir`,
    after checking on both splits of `shards_dir` (the shards it was trained on) that no head's
    predicted class changes for more than `max_changed` of the faces."""
    source = Path(model_dir)
    descriptor = read_descriptor(source)
    if runtime_of(descriptor) != "keras":
        raise PackageError(
            f"{source}: already converted (runtime {runtime_of(descriptor)}); "
            "remirror_package changes its mirror setting"
        )
    if not (source / KERAS_FILE).is_file():
        raise PackageError(f"no {KERAS_FILE} in {source}")
    model = load_model_file(source / KERAS_FILE)
    size = int(descriptor["input_size"][0])
    calibration = (
        calibration_faces(shards_dir, size, calibration_count) if activations == "int8" else []
    )
    content = to_tflite(model, weights, activations, calibration)
    converted = TFLiteModel(content)
    groups = tuple(descriptor["classes"]["age_group"])
    source_flip = flip_for(descriptor)
    setting = descriptor.get("flip_test_time", True) if flip is None else flip
    # The shards hold face crops: they are scored as aligned mode scores.
    flip = flip_in_mode(setting, "aligned")
    checks, metrics, keras_metrics = {}, {}, {}
    for split in ("validation", "test"):
        stream = ParquetFaces(shard_files(shards_dir, split), size, 256)
        check_split_rows(shards_dir, split, descriptor)
        keras_predictions, truth = predict_stream(model, stream, flip)
        predictions, _ = predict_stream(converted, stream, flip)
        if flip != source_flip:
            keras_predictions_as_source, _ = predict_stream(model, stream, source_flip)
        else:
            keras_predictions_as_source = keras_predictions
        keras_metrics[split] = headline(compute_metrics(keras_predictions_as_source, truth, groups))
        checks[split] = agreement(predictions, keras_predictions)
        metrics[split] = compute_metrics(predictions, truth, groups)
        refuse_changes(checks[split], split, max_changed, f"converted with {weights} weights")
    converted_descriptor = {
        **{k: v for k, v in descriptor.items() if k not in ("metrics", "validation_metrics")},
        "version": new_version(),
        "runtime": "tflite",
        "flip_test_time": setting,
        "metrics": headline(metrics["test"]),
        "validation_metrics": headline(metrics["validation"]),
        "conversion": {
            "from_version": descriptor.get("version"),
            "from_sha256": descriptor.get("model_sha256"),
            "weights": weights,
            "activations": activations,
            "calibration_faces": sum(len(batch) for batch in calibration),
            "flip_test_time": {"keras": source_flip, "converted": setting},
            "agreement_with_keras": checks,
            "keras_metrics": keras_metrics,
        },
    }
    title = (
        f"Test split ({metrics['test']['faces']} faces), {descriptor.get('version')} "
        f"converted for TensorFlow Lite ({weights} weights, {activations} activations, "
        f"{'with' if flip else 'without'} the mirror image)"
    )
    return write_converted(
        output_dir, content, converted_descriptor, metrics["test"], groups, title
    )


def remirror_package(
    source: str | Path,
    shards_dir: str | Path,
    output_dir: str | Path,
    flip: bool | float | dict[str, bool] | None,
    max_changed: float | None = None,
) -> dict[str, Any]:
    """The converted package `source` with the mirror setting `flip`, written to `output_dir`:
    its `model.tflite` copied unchanged, its metrics measured again on both splits of
    `shards_dir` (the shards it was trained on). How many answers change from the package's own
    is recorded; with `max_changed`, a setting that changes more of a split's faces is refused
    (the mirror's answer for a face the network is unsure of moves its age group often: the
    metrics, not the agreement, say whether the change is worth it)."""
    if flip is None:
        raise UserError(f"{source}: already converted; only its --flip can change")
    source = Path(source)
    descriptor = read_descriptor(source)
    content = (source / TFLITE_FILE).read_bytes()
    model = TFLiteModel(content)
    size = int(descriptor["input_size"][0])
    groups = tuple(descriptor["classes"]["age_group"])
    before, after = flip_for(descriptor), flip_in_mode(flip, "aligned")
    checks, metrics, source_metrics = {}, {}, {}
    for split in ("validation", "test"):
        stream = ParquetFaces(shard_files(shards_dir, split), size, 256)
        check_split_rows(shards_dir, split, descriptor)
        own, truth = predict_stream(model, stream, before)
        predictions, _ = predict_stream(model, stream, after)
        source_metrics[split] = headline(compute_metrics(own, truth, groups))
        checks[split] = agreement(predictions, own)
        metrics[split] = compute_metrics(predictions, truth, groups)
        if max_changed is not None:
            refuse_changes(checks[split], split, max_changed, f"with the mirror setting {flip}")
    written = {
        **descriptor,
        "version": new_version(),
        "flip_test_time": flip,
        "metrics": headline(metrics["test"]),
        "validation_metrics": headline(metrics["validation"]),
        "mirror_changed": {
            "from_version": descriptor.get("version"),
            "flip_test_time": {"before": descriptor.get("flip_test_time", True), "after": flip},
            "agreement_with_before": checks,
            "metrics_before": source_metrics,
        },
    }
    title = (
        f"Test split ({metrics['test']['faces']} faces), {descriptor.get('version')} with the "
        f"mirror setting {flip} (the same TensorFlow Lite network)"
    )
    return write_converted(output_dir, content, written, metrics["test"], groups, title)


def write_converted(
    output_dir: str | Path,
    content: bytes,
    descriptor: dict[str, Any],
    test_metrics: dict[str, Any],
    groups: tuple[str, ...],
    title: str,
) -> dict[str, Any]:
    """Write a TensorFlow Lite package: `model.tflite`, its descriptor (with the file's SHA-256)
    and the test split's evaluation; the descriptor as written."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / TFLITE_FILE).write_bytes(content)
    descriptor = {**descriptor, "model_sha256": file_sha256(output / TFLITE_FILE)}
    (output / DESCRIPTOR_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    write_evaluation(test_metrics, groups, output / "test-evaluation", title)
    return descriptor
