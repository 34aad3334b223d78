"""Fitting the network on the driver: the stream of the train split into Keras 3, early stopping
on the validation split, the best checkpoint kept."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sparkface.core.config import AgeGroups, TrainConfig
from sparkface.core.contract import GENDERS, KERAS_FILE, RACES
from sparkface.core.package import flip_for, load_model_file, read_descriptor
from sparkface.train.averaging import keep_better, weight_averager
from sparkface.train.distill import taught, with_one_hot_labels
from sparkface.train.model import compile_model, make_model
from sparkface.train.resume import (
    RESUME_FOLDER,
    Resumption,
    RunState,
    recipe_fingerprint,
    resumed_early_stopping,
    saver,
    stream_seed,
)
from sparkface.train.shards import ParquetFaces, prefetch, shard_files, train_class_weights

log = logging.getLogger("sparkface")


def accelerator() -> str | None:
    """The name of a visible GPU for the active Keras backend, or None for the CPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return gpus[0].name if gpus else None
        if backend == "jax":
            import jax

            devices = [d for d in jax.devices() if d.platform == "gpu"]
            return str(devices[0]) if devices else None
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken driver means: train on the CPU
        return None
    return None


def load_initial_weights(
    model, package: str | Path, member: int | None = None, fresh_from: str | None = None
) -> str:
    """Copy the weights of a saved model package into `model`, layer by layer by name, and return
    the package's version. The network is convolutional up to a global pooling, so a package
    trained at another input size fits as long as the layers are the same; any layer that is
    missing or has other shapes is an error naming it. With `fresh_from`, that layer and every
    one after it in `model` keep the fresh weights they have.

    With `member`, the package is an ensemble (`sparkface.train.ensemble`) and the weights are
    its member `m{member}_`'s as that member was trained: a convolution the ensemble stores as
    its centre tap gets its full kernel back (zeros around the centre, the same outputs), and
    class weights the ensemble took out of a head are put back into its bias."""
    source = load_model_file(Path(package) / KERAS_FILE)
    descriptor = read_descriptor(package)
    prefix = "" if member is None else f"m{member}_"
    saved = {layer.name: layer for layer in source.layers}
    ensemble = descriptor.get("ensemble", {}) if member is not None else {}
    undone = ensemble.get("class_weights_undone", {})
    fresh = model.layers[layer_index(model, fresh_from, "fresh_from") :] if fresh_from else []
    for layer in model.layers:
        if not layer.weights or layer in fresh:
            continue
        name = prefix + layer.name
        if name not in saved:
            raise ValueError(f"initial model {package}: has no layer {name!r}")
        weights = saved[name].get_weights()
        expected = [tuple(w.shape) for w in layer.weights]
        if member is not None and weights and len(weights[0].shape) == 4:
            weights[0] = _full_kernel(weights[0], expected[0])
        shapes = [tuple(w.shape) for w in weights]
        if shapes != expected:
            raise ValueError(
                f"initial model {package}: layer {name!r} has weights of shapes "
                f"{shapes}, this model {expected}"
            )
        if layer.name in undone:
            weights[1] = (weights[1] + np.log(np.asarray(undone[layer.name]))).astype(
                weights[1].dtype
            )
        layer.set_weights(weights)
    version = str(descriptor.get("version", "unversioned"))
    return version if member is None else f"{version} member {member}"


def layer_index(model, name: str, setting: str) -> int:
    """The position of the layer `name` in `model`; an unknown name is an error naming `setting`
    and the layers there are."""
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ValueError(f"{setting}: the network has no layer {name!r}; it has {names}")
    return names.index(name)


def freeze_through(model, name: str, fresh_from: str | None = None) -> int:
    """Make `model`'s layers up to and including `name` untrainable (batch normalisation then runs
    in inference mode); they must all come before `fresh_from`. Returns how many were frozen."""
    last = layer_index(model, name, "frozen_through")
    if fresh_from and last >= layer_index(model, fresh_from, "fresh_from"):
        raise ValueError(f"frozen_through: {name!r} must come before fresh_from {fresh_from!r}")
    for layer in model.layers[: last + 1]:
        layer.trainable = False
    return last + 1


def _full_kernel(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A convolution kernel stored as its centre tap (1x1), back at its trained `shape`."""
    if kernel.shape[:2] != (1, 1) or kernel.shape[2:] != shape[2:] or shape[:2] == (1, 1):
        return kernel
    full = np.zeros(shape, dtype=kernel.dtype)
    full[shape[0] // 2, shape[1] // 2] = kernel[0, 0]
    return full


def train(
    shards_dir: str | Path,
    config: TrainConfig,
    groups: AgeGroups,
    output_dir: str | Path,
    verbose: int = 2,
):
    """Train on the shards' train split with early stopping on the validation split; keep the best
    checkpoint. Returns the trained model and a summary of the run."""
    import keras

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    device = accelerator()
    log.info("training on %s with the %s backend", device or "the CPU", keras.backend.backend())
    with precision_policy("mixed_float16" if device else None):
        model, run = _fit(shards_dir, config, groups, output_dir, device, verbose)
    return in_float32(model, config, len(groups.names)), run


def in_float32(model, config: TrainConfig, n_age_groups: int):
    """The scoring network with float32 layers and `model`'s weights. A network trained on a GPU
    under mixed precision keeps float32 weights but computes in float16, and a package saved so
    would score in float16 everywhere; this copy scores as one trained on the CPU does."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    copy = make_model(config.model, config.image_size, n_age_groups, seed=config.seed)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


@contextlib.contextmanager
def precision_policy(name: str | None) -> Iterator[None]:
    """Keras's global dtype policy set to `name` (None: left as it is) inside the block, and given
    back when it ends, however it ends: a process that trains then scores must not score in
    float16 by accident."""
    import keras

    if name is None:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _fit(
    shards_dir: str | Path,
    config: TrainConfig,
    groups: AgeGroups,
    output_dir: Path,
    device: str | None,
    verbose: int,
):
    """`train` under the chosen precision policy: streams, model, fit, summary."""
    import keras

    resumption = Resumption(output_dir / RESUME_FOLDER, recipe_fingerprint(config, shards_dir))
    state = resumption.load()
    train_stream, validation_stream = streams(
        shards_dir, config, len(groups.names), seed=stream_seed(config.seed, state.epoch)
    )
    steps = config.training.steps_per_epoch or len(train_stream)
    model, initial = build_model(config, len(groups.names), steps, train_stream.age_groups > 0)
    settings = config.training
    averager = None
    if settings.average_epochs:
        averager = weight_averager(settings.epochs - settings.average_epochs)
    if state.epoch:
        mean = resumption.restore(model, state)
        if averager is not None and mean is not None:
            averager.mean, averager.epochs = mean, list(state.averaged_epochs)
        state.resumed_after.append(state.epoch)
        log.info(
            "resuming the run stopped after epoch %d of %d (%s)",
            state.epoch,
            settings.epochs,
            resumption.directory,
        )
    train_batches, validation_batches = iter(train_stream), iter(validation_stream)
    teacher = config.training.teacher
    if teacher:
        train_batches, validation_batches = distilled(
            train_batches, validation_batches, config, len(groups.names)
        )
    log.info(
        "%d training rows (%d steps an epoch), %d validation rows",
        train_stream.rows,
        steps,
        validation_stream.rows,
    )
    started, before = time.perf_counter(), state.seconds
    model.fit(
        prefetch(train_batches),
        steps_per_epoch=steps,
        epochs=settings.epochs,
        initial_epoch=state.epoch,
        validation_data=validation_batches,
        validation_steps=len(validation_stream),
        callbacks=callbacks(
            output_dir,
            settings.patience,
            state,
            resumption,
            averager,
            lambda: before + time.perf_counter() - started,
        ),
        verbose=verbose,
    )
    averaging = None
    if averager is not None:
        averaging = keep_better(
            model,
            averager,
            iter(train_stream),
            validation_batches,
            len(validation_stream),
            min(state.history["val_loss"]),
            norm_batches=steps,
        )
        log.info("weight averaging: %s", averaging)
    for layer in model.layers:  # the package is a whole network again, every layer trainable
        layer.trainable = True
    run = {
        "device": device or "cpu",
        "initial_model": initial,
        "teacher": _teacher_version(teacher),
        "backend": keras.backend.backend(),
        "train_rows": train_stream.rows,
        "validation_rows": validation_stream.rows,
        **history_summary(state.history, state.seconds, steps, config),
        **({"averaging": averaging} if averaging else {}),
        **({"resumed_after_epochs": state.resumed_after} if state.resumed_after else {}),
    }
    (output_dir / "training.json").write_text(json.dumps(run, indent=2) + "\n")
    resumption.remove()
    return model, run


def distilled(train_batches, validation_batches, config: TrainConfig, n_age_groups: int):
    """The train batches with targets mixed from the teacher's predictions and the labels, and the
    validation batches with one-hot labels (sparkface.train.distill)."""
    settings = config.training
    teacher = load_model_file(Path(settings.teacher) / KERAS_FILE)
    flip = flip_for(read_descriptor(settings.teacher))
    classes = {"age_group": n_age_groups, "gender": len(GENDERS), "race": len(RACES)}
    log.info(
        "targets: %.2f x %s's predictions + the rest x the labels",
        settings.teacher_share,
        settings.teacher,
    )
    return (
        taught(train_batches, teacher, settings.teacher_share, flip, classes),
        with_one_hot_labels(validation_batches, classes),
    )


def _teacher_version(teacher: str | None) -> str | None:
    return str(read_descriptor(teacher).get("version", "unversioned")) if teacher else None


def streams(
    shards_dir: str | Path, config: TrainConfig, n_age_groups: int, seed: int | None = None
) -> tuple[ParquetFaces, ParquetFaces]:
    """The repeating, shuffled (augmented, class-weighted) train stream, from `seed` (default:
    the recipe's), and the validation one; over shards with age bounds (any made since sources
    came), every face, bins too."""
    settings = config.training
    files = shard_files(shards_dir, "train")
    with_bounds = "age_high" in pq.ParquetFile(files[0]).schema_arrow.names
    groups = n_age_groups if with_bounds else 0
    weights = None
    if settings.class_weights:
        weights = train_class_weights(shards_dir, config.image_size, n_age_groups)
        log.info("class weights: %s", {k: np.round(v, 2).tolist() for k, v in weights.items()})
    train_stream = ParquetFaces(
        shard_files(shards_dir, "train"),
        config.image_size,
        settings.batch_size,
        shuffle_buffer=settings.shuffle_buffer,
        repeat=True,
        seed=config.seed if seed is None else seed,
        class_weights=weights,
        augment=config.model.augment,
        light=config.model.augment_light,
        gray=config.model.augment_gray,
        age_groups=groups,
        workers=settings.augment_workers,
        gender_by_race=settings.gender_weight_by_race,
        gender_by_age=settings.gender_age_ranges(),
    )
    validation_stream = ParquetFaces(
        shard_files(shards_dir, "validation"),
        config.image_size,
        settings.batch_size,
        repeat=True,
        age_groups=groups,
    )
    return train_stream, validation_stream


def build_model(
    config: TrainConfig, n_age_groups: int, steps: int, intervals: bool = False
) -> tuple[object, str | None]:
    """The compiled network, from the initial model's weights when the config names one; and
    that model's version. With `intervals`, its age heads learn from age bounds (bins too)."""
    settings = config.training
    model = make_model(config.model, config.image_size, n_age_groups, seed=config.seed)
    initial = None
    if settings.initial_model:
        initial = load_initial_weights(
            model, settings.initial_model, settings.initial_member, settings.fresh_from
        )
        log.info("starting from the weights of %s (%s)", settings.initial_model, initial)
        if settings.fresh_from:
            log.info("fresh weights from layer %s on", settings.fresh_from)
    if settings.frozen_through:
        frozen = freeze_through(model, settings.frozen_through, settings.fresh_from)
        log.info("the first %d layers, to %s, not trained", frozen, settings.frozen_through)
    compile_model(
        model,
        settings.learning_rate,
        settings.weight_decay,
        settings.loss_weights,
        steps=steps * settings.epochs,
        xla=settings.xla,
        warmup_steps=steps * settings.warmup_epochs,
        soft_targets=settings.teacher is not None,
        intervals=intervals,
        hold_steps=steps * settings.average_epochs,
        hold_learning_rate=settings.average_learning_rate,
    )
    return model, initial


def callbacks(
    output_dir: Path,
    patience: int,
    state: RunState,
    resumption: Resumption,
    averager,
    clock,
) -> list:
    """Keep the best epoch's weights by validation loss, stop early, log every epoch to CSV, and
    save the run's state after each epoch (`sparkface.train.resume`): from `state`'s epoch on
    when the run is resumed. The averager, if any, comes before the state's saving."""
    import keras

    best = best_weights(output_dir / "best.weights.h5", state.best_loss)
    early_stopping = resumed_early_stopping(patience, state, output_dir / "best.weights.h5")
    return [
        best,
        early_stopping,
        keras.callbacks.CSVLogger(str(output_dir / "history.csv"), append=state.epoch > 0),
        *([averager] if averager is not None else []),
        saver(resumption, state, early_stopping, best, averager, clock),
    ]


def best_weights(path: Path, best: float | None = None):
    """A Keras callback that writes the network's weights to `path` whenever an epoch's
    validation loss is the lowest yet: the weights alone, without the optimiser's state (twice
    as much again, as keras.callbacks.ModelCheckpoint keeps even with save_weights_only), so
    that a run stopped by its time limit on a GPU machine can still be brought back and
    packaged (scripts/gpu/train.sh, research/jobs/untrained.py --weights)."""
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.path = path
            self.best = float("inf") if best is None else best

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("val_loss")
            if loss is not None and loss < self.best:
                self.best = loss
                # The same layers in an uncompiled model: their weights, no optimiser.
                keras.Model(self.model.input, self.model.output).save_weights(path)

    return BestWeights()


def history_summary(
    history: dict[str, list[float]], seconds: float, steps: int, config: TrainConfig
) -> dict[str, object]:
    """Epochs run, the best one, speed, and the rounded per-epoch history."""
    epochs_run = len(history["loss"])
    return {
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "training_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
        "images_per_second": round(steps * config.training.batch_size * epochs_run / seconds, 1),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.items()},
    }
