"""Training on the driver: a bounded-memory stream from the Parquet shards into Keras 3."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sparkface.augment import augment_batch
from sparkface.config import AgeGroups, TrainConfig
from sparkface.labels import GENDERS, RACES
from sparkface.model import AGE_SCALE, HEADS, compile_model, make_model

log = logging.getLogger("sparkface")

LABEL_COLUMNS = ("age_group_index", "gender_index", "race_index", "age")
TARGETS = {"age_group": "age_group_index", "gender": "gender_index", "race": "race_index"}


def shard_files(shards_dir: str | Path, split: str) -> list[Path]:
    """The Parquet files of one split, in a stable order."""
    files = sorted((Path(shards_dir) / f"split={split}").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet shards for split {split!r} under {shards_dir}")
    return files


def pixels_to_array(column: pa.Array, image_size: int) -> np.ndarray:
    """A binary Arrow column of size*size*3 bytes per row as an (n, size, size, 3) uint8 array,
    without a Python object per row."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        raise ValueError("pixels column has nulls: the shards hold undecoded rows")
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        column.offset : column.offset + len(column) + 1
    ]
    expected = image_size * image_size * 3
    if len(column) and not np.all(np.diff(offsets) == expected):
        raise ValueError(
            f"pixels rows are not {image_size}x{image_size}x3 bytes: wrong image_size?"
        )
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(column), image_size, image_size, 3)


class ParquetFaces:
    """Batches of (faces, targets[, sample weights]) streamed from Parquet shards.

    Memory is bounded by the shuffle buffer plus one Arrow batch, whatever the shards' size.
    With `repeat`, it loops forever (one pass = `len(self)` batches), reshuffling the file order
    and, through the buffer, the rows each pass. With `augment`, each batch is a random
    variation of its faces (`sparkface.augment`).
    """

    def __init__(
        self,
        files: list[Path],
        image_size: int,
        batch_size: int,
        *,
        shuffle_buffer: int = 0,
        repeat: bool = False,
        seed: int = 0,
        class_weights: dict[str, np.ndarray] | None = None,
        read_batch: int = 512,
        augment: bool = False,
    ) -> None:
        self.files = list(files)
        self.image_size = image_size
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.repeat = repeat
        self.seed = seed
        self.class_weights = class_weights
        self.read_batch = read_batch
        self.augment = augment
        self.rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def _chunks(self, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        order = rng.permutation(len(self.files)) if self.shuffle_buffer else range(len(self.files))
        for index in order:
            parquet = pq.ParquetFile(self.files[index])
            for batch in parquet.iter_batches(
                batch_size=self.read_batch, columns=["pixels", *LABEL_COLUMNS]
            ):
                chunk = {"pixels": pixels_to_array(batch.column("pixels"), self.image_size)}
                for name in LABEL_COLUMNS:
                    chunk[name] = batch.column(name).to_numpy(zero_copy_only=False)
                yield chunk

    def _emit(self, chunk: dict[str, np.ndarray], augment_rng: np.random.Generator):
        pixels = augment_batch(chunk["pixels"], augment_rng) if self.augment else chunk["pixels"]
        targets = {head: chunk[column].astype("int32") for head, column in TARGETS.items()}
        targets["age"] = (chunk["age"].astype("float32") / AGE_SCALE).reshape(-1, 1)
        if not self.class_weights:
            return pixels, targets
        weights = {head: self.class_weights[head][targets[head]] for head in TARGETS}
        weights["age"] = np.ones(len(chunk["age"]), dtype="float32")
        return pixels, targets, weights

    def _one_pass(
        self, rng: np.random.Generator, augment_rng: np.random.Generator
    ) -> Iterator[tuple]:
        buffer: list[dict[str, np.ndarray]] = []
        buffered = 0
        for chunk in self._chunks(rng):
            buffer.append(chunk)
            buffered += len(chunk["age"])
            if buffered < max(self.shuffle_buffer, self.batch_size) + self.read_batch:
                continue
            merged = _concat(buffer, rng if self.shuffle_buffer else None)
            emit = (buffered - self.shuffle_buffer) // self.batch_size * self.batch_size
            for start in range(0, emit, self.batch_size):
                yield self._emit(_slice(merged, start, start + self.batch_size), augment_rng)
            buffer, buffered = [_slice(merged, emit, buffered)], buffered - emit
        if buffered:
            merged = _concat(buffer, rng if self.shuffle_buffer else None)
            for start in range(0, buffered, self.batch_size):
                yield self._emit(_slice(merged, start, start + self.batch_size), augment_rng)

    def __iter__(self) -> Iterator[tuple]:
        rng = np.random.default_rng(self.seed)
        # A generator of its own, so that turning augmentation on never changes the row order.
        augment_rng = np.random.default_rng([self.seed, 1])
        while True:
            yield from self._one_pass(rng, augment_rng)
            if not self.repeat:
                return

    def labels(self) -> dict[str, np.ndarray]:
        """All label columns of the shards (small: no pixels are read)."""
        table = pa.concat_tables(pq.read_table(f, columns=list(LABEL_COLUMNS)) for f in self.files)
        return {name: table.column(name).to_numpy() for name in LABEL_COLUMNS}


def prefetch(batches: Iterator[tuple], size: int = 4) -> Iterator[tuple]:
    """Produce the next `size` batches in a background thread while the caller trains: reading,
    shuffling and augmenting (NumPy and Pillow release the GIL) overlap the training step."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                ready.put(batch)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            ready.put(error)
        ready.put(done)

    threading.Thread(target=produce, name="sparkface-prefetch", daemon=True).start()
    while (item := ready.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _concat(parts: list[dict[str, np.ndarray]], rng: np.random.Generator | None):
    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    if rng is not None:
        order = rng.permutation(len(merged["age"]))
        merged = {key: value[order] for key, value in merged.items()}
    return merged


def _slice(chunk: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {key: value[start:stop] for key, value in chunk.items()}


def class_weights(labels: dict[str, np.ndarray], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Per-class weights, the square root of inverse frequency, normalised to a mean of 1 over
    the training rows: rare classes count more without drowning the common ones."""
    weights = {}
    for head, column in TARGETS.items():
        counts = np.bincount(labels[column], minlength=sizes[head]).astype("float64")
        raw = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
        mean = (raw * counts).sum() / counts.sum()
        weights[head] = (raw / mean).astype("float32")
    return weights


def train_class_weights(
    shards_dir: str | Path, image_size: int, n_age_groups: int
) -> dict[str, np.ndarray]:
    """The class weights of the shards' train split per head, as training uses them."""
    sizes = {"age_group": n_age_groups, "gender": len(GENDERS), "race": len(RACES)}
    probe = ParquetFaces(shard_files(shards_dir, "train"), image_size, 256)
    return class_weights(probe.labels(), sizes)


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


def load_initial_weights(model, package: str | Path) -> str:
    """Copy the weights of a saved model package into `model`, layer by layer by name, and return
    the package's version. The network is convolutional up to a global pooling, so a package
    trained at another input size fits as long as the layers are the same; any layer that is
    missing or has other shapes is an error naming it."""
    from sparkface.inference import MODEL_FILE, load_model_file, read_descriptor

    source = load_model_file(Path(package) / MODEL_FILE)
    saved = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in saved:
            raise ValueError(f"initial model {package}: has no layer {layer.name!r}")
        weights = saved[layer.name].get_weights()
        shapes = [tuple(w.shape) for w in weights]
        expected = [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            raise ValueError(
                f"initial model {package}: layer {layer.name!r} has weights of shapes "
                f"{shapes}, this model {expected}"
            )
        layer.set_weights(weights)
    return str(read_descriptor(package).get("version", "unversioned"))


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
    if device:
        keras.mixed_precision.set_global_policy("mixed_float16")
    log.info("training on %s with the %s backend", device or "the CPU", keras.backend.backend())
    settings = config.training
    sizes = {"age_group": len(groups.names), "gender": len(GENDERS), "race": len(RACES)}
    train_files = shard_files(shards_dir, "train")
    weights = None
    if settings.class_weights:
        weights = train_class_weights(shards_dir, config.image_size, sizes["age_group"])
        log.info("class weights: %s", {k: np.round(v, 2).tolist() for k, v in weights.items()})
    train_stream = ParquetFaces(
        train_files,
        config.image_size,
        settings.batch_size,
        shuffle_buffer=settings.shuffle_buffer,
        repeat=True,
        seed=config.seed,
        class_weights=weights,
        augment=config.model.augment,
    )
    validation_stream = ParquetFaces(
        shard_files(shards_dir, "validation"),
        config.image_size,
        settings.batch_size,
        repeat=True,
    )
    steps = settings.steps_per_epoch or len(train_stream)
    model = make_model(config.model, config.image_size, sizes["age_group"], seed=config.seed)
    initial = None
    if settings.initial_model:
        initial = load_initial_weights(model, settings.initial_model)
        log.info("starting from the weights of %s (%s)", settings.initial_model, initial)
    compile_model(
        model,
        settings.learning_rate,
        settings.weight_decay,
        settings.loss_weights,
        steps=steps * settings.epochs,
        xla=settings.xla,
        warmup_steps=steps * settings.warmup_epochs,
    )
    checkpoint = output_dir / "best.keras"
    callbacks = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=settings.patience, restore_best_weights=True
        ),
        keras.callbacks.CSVLogger(str(output_dir / "history.csv")),
    ]
    log.info(
        "%d training rows (%d steps an epoch), %d validation rows",
        train_stream.rows,
        steps,
        validation_stream.rows,
    )
    started = time.perf_counter()
    history = model.fit(
        prefetch(iter(train_stream)),
        steps_per_epoch=steps,
        epochs=settings.epochs,
        validation_data=iter(validation_stream),
        validation_steps=len(validation_stream),
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])
    best_epoch = int(np.argmin(history.history["val_loss"])) + 1
    run = {
        "device": device or "cpu",
        "initial_model": initial,
        "backend": keras.backend.backend(),
        "train_rows": train_stream.rows,
        "validation_rows": validation_stream.rows,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "training_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
        "images_per_second": round(steps * settings.batch_size * epochs_run / seconds, 1),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in history.history.items()},
    }
    (output_dir / "training.json").write_text(json.dumps(run, indent=2) + "\n")
    return model, run


__all__ = [
    "HEADS",
    "ParquetFaces",
    "class_weights",
    "shard_files",
    "train",
    "train_class_weights",
]
