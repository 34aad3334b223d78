"""The shard stream: bounded-memory batches of faces and targets read from the Parquet shards
that preparation writes, for training and for evaluating on a split."""

from __future__ import annotations

import math
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sparkface.core.contract import AGE_SCALE, CLASS_HEADS, GENDERS, RACES
from sparkface.core.errors import InputError
from sparkface.train.augment import augment_batch

# Which shard column each class head learns from, and all the shards' label columns.
TARGETS = {head: f"{head}_index" for head in CLASS_HEADS}
LABEL_COLUMNS = (*TARGETS.values(), "age")
# What shards of several sources add: each face's age bounds (a bin, or twice its exact age), the
# age groups they span, and its source's weight in the loss.
INTERVAL_COLUMNS = ("age_low", "age_high", "age_group_low", "age_group_high", "source_weight")


def shard_files(shards_dir: str | Path, split: str) -> list[Path]:
    """The Parquet files of one split, in a stable order."""
    files = sorted((Path(shards_dir) / f"split={split}").glob("*.parquet"))
    if not files:
        raise InputError(f"no Parquet shards for split {split!r} under {shards_dir}")
    return files


def split_rows(shards_dir: str | Path, split: str) -> int:
    """Every face of one split, whatever its age label (exact or a bin): the count a model's
    `training_data` records (`ParquetFaces(...).rows` counts only exact ages unless it reads
    bins)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in shard_files(shards_dir, split))


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
    variation of its faces (`sparkface.train.augment`; `light` adds light, colour, blur and JPEG;
    `gray`, that share of faces in grey).
    With `workers` above 1, that many threads augment batches side by side (Pillow and NumPy
    release the GIL), each batch with a generator of its own seeded by its index: the same
    batches, in the same order, on every run with as many or any other number of workers above 1
    (one worker keeps the single generator of the streams trained before workers came).

    With `age_groups` (their count), the stream trains on every face, an age bin as much as an
    exact age: the age-group target is the mask of the groups a face's age bounds span (one for
    an exact age) and the age target its bounds (`sparkface.train.model`'s partial-label and
    interval losses), each face weighted by its source. Without it, only faces with an exact age
    are read, with class indices as targets: what evaluation and conversion read.
    `gender_by_race` (race name: factor) multiplies the gender weight of that race's faces, and
    `gender_by_age` ((first year, last year, factor) ranges) that of faces whose age bounds lie in
    a range.
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
        light: bool = False,
        gray: float = 0.0,
        age_groups: int = 0,
        workers: int = 1,
        gender_by_race: dict[str, float] | None = None,
        gender_by_age: list[tuple[int, int, float]] | None = None,
    ) -> None:
        self.files = list(files)
        self.workers = workers
        self.image_size = image_size
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.repeat = repeat
        self.seed = seed
        self.class_weights = class_weights
        self.read_batch = read_batch
        self.augment = augment
        self.light = light
        self.gray = gray
        self.age_groups = age_groups
        # One factor per race index, and a last one (1) for faces without a race label (-1).
        factors = [float((gender_by_race or {}).get(race, 1.0)) for race in RACES]
        self.gender_factors = np.array([*factors, 1.0], dtype="float32")
        self.gender_by_age = list(gender_by_age or [])
        names = pq.ParquetFile(self.files[0]).schema_arrow.names if self.files else []
        self.extra = [column for column in INTERVAL_COLUMNS if column in names]
        self.exact_only = not age_groups and "age_high" in names
        if self.exact_only:
            ages = [pq.read_table(f, columns=["age"]).column("age") for f in self.files]
            self.rows = sum(len(age) - age.null_count for age in ages)
        else:
            self.rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def _chunks(self, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        order = rng.permutation(len(self.files)) if self.shuffle_buffer else range(len(self.files))
        for index in order:
            parquet = pq.ParquetFile(self.files[index])
            columns = ["pixels", *LABEL_COLUMNS, *self.extra]
            for batch in parquet.iter_batches(batch_size=self.read_batch, columns=columns):
                if self.exact_only:
                    batch = batch.filter(batch.column("age").is_valid())
                chunk = {"pixels": pixels_to_array(batch.column("pixels"), self.image_size)}
                for name in (*LABEL_COLUMNS, *self.extra):
                    chunk[name] = batch.column(name).to_numpy(zero_copy_only=False)
                yield chunk

    def _emit(self, chunk: dict[str, np.ndarray], augment_rng: np.random.Generator):
        pixels = chunk["pixels"]
        if self.augment:
            pixels = augment_batch(pixels, augment_rng, light=self.light, gray=self.gray)
        if self.age_groups:
            return (pixels, *self._interval_targets(chunk))
        targets = {head: chunk[column].astype("int32") for head, column in TARGETS.items()}
        targets["age"] = (chunk["age"].astype("float32") / AGE_SCALE).reshape(-1, 1)
        if not self.class_weights:
            return pixels, targets
        weights = {}
        for head in TARGETS:
            targets[head], labelled = _known(targets[head])
            weights[head] = self.class_weights[head][targets[head]] * labelled
        weights["gender"] = weights["gender"] * self._gender_factors(
            chunk, chunk["age"], chunk["age"]
        )
        weights["age"] = np.ones(len(chunk["age"]), dtype="float32")
        return pixels, targets, weights

    def _interval_targets(self, chunk: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """Targets and weights of every face, its age a bin or exact (the class docstring)."""
        rows = len(chunk["age"])
        if "age_high" in chunk:
            low, high = chunk["age_low"], chunk["age_high"]
            first, last = chunk["age_group_low"], chunk["age_group_high"]
        else:  # shards of exact ages only, made before bins were known
            low = high = chunk["age"]
            first = last = chunk["age_group_index"]
        spanned = np.arange(self.age_groups)
        mask = (spanned >= first[:, None]) & (spanned <= last[:, None])
        targets = {
            "age_group": mask.astype("float32"),
            "gender": chunk["gender_index"].astype("int32"),
            "race": chunk["race_index"].astype("int32"),
            "age": (np.stack([low, high], axis=1) / AGE_SCALE).astype("float32"),
        }
        source = chunk.get("source_weight", np.ones(rows)).astype("float32")
        weights = {head: source for head in ("gender", "race", "age", "age_group")}
        if self.class_weights:
            group = self.class_weights["age_group"]
            weights["age_group"] = source * (mask @ group) / mask.sum(axis=1)
        for head in ("gender", "race"):
            targets[head], labelled = _known(targets[head])
            if self.class_weights:
                weights[head] = source * self.class_weights[head][targets[head]]
            weights[head] = weights[head] * labelled
        weights["gender"] = weights["gender"] * self._gender_factors(chunk, low, high)
        return targets, {head: w.astype("float32") for head, w in weights.items()}

    def _gender_factors(
        self, chunk: dict[str, np.ndarray], low: np.ndarray, high: np.ndarray
    ) -> np.ndarray:
        """Each face's factor on its gender weight: its race's, times its age range's."""
        factors = self.gender_factors[chunk["race_index"]]
        for first, last, factor in self.gender_by_age:
            factors = np.where((low >= first) & (high <= last), factors * factor, factors)
        return factors

    def _one_pass(self, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        """One pass's batches, as columns, not yet augmented or turned into targets."""
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
                yield _slice(merged, start, start + self.batch_size)
            buffer, buffered = [_slice(merged, emit, buffered)], buffered - emit
        if buffered:
            merged = _concat(buffer, rng if self.shuffle_buffer else None)
            for start in range(0, buffered, self.batch_size):
                yield _slice(merged, start, start + self.batch_size)

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng(self.seed)
        while True:
            yield from self._one_pass(rng)
            if not self.repeat:
                return

    def __iter__(self) -> Iterator[tuple]:
        if self.workers <= 1 or not self.augment:
            # A generator of its own, so that turning augmentation on never changes the row order.
            augment_rng = np.random.default_rng([self.seed, 1])
            for batch in self._batches():
                yield self._emit(batch, augment_rng)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="sparkface-augment") as pool:
            pending: deque = deque()
            for index, batch in enumerate(self._batches()):
                seeded = np.random.default_rng([self.seed, 2, index])
                pending.append(pool.submit(self._emit, batch, seeded))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def labels(self) -> dict[str, np.ndarray]:
        """All label columns of the faces with exact ages (small: no pixels are read)."""
        table = pa.concat_tables(pq.read_table(f, columns=list(LABEL_COLUMNS)) for f in self.files)
        table = table.filter(table.column("age").is_valid())
        return {name: table.column(name).to_numpy() for name in LABEL_COLUMNS}


def prefetch(batches: Iterator[tuple], size: int = 4) -> Iterator[tuple]:
    """Produce the next `size` batches in a background thread while the caller trains: reading,
    shuffling and augmenting (NumPy and Pillow release the GIL) overlap the training step."""
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


def _known(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class indices with -1 (the face's source has no label for the head) made 0, and the mask
    of the faces that are labelled: their weight in the loss, so the others are left out."""
    labelled = indices >= 0
    return np.where(labelled, indices, 0).astype("int32"), labelled


def class_weights(labels: dict[str, np.ndarray], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """Per-class weights, the square root of inverse frequency, normalised to a mean of 1 over
    the training rows: rare classes count more without drowning the common ones."""
    weights = {}
    for head, column in TARGETS.items():
        known = labels[column][labels[column] >= 0]  # -1: a source without this head's labels
        counts = np.bincount(known, minlength=sizes[head]).astype("float64")
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
