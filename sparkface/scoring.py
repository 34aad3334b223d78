"""Scoring images on the executors: the model travels as broadcast bytes, is loaded once per Python
worker, and runs in batches inside `mapInArrow`. Every input file gives exactly one row."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.config import IngestConfig
from sparkface.images import ImageError, ImageSpec, decode_face
from sparkface.ingest import read_images, require_columns

log = logging.getLogger("sparkface")

CLASS_HEADS = ("age_group", "gender", "race")
PROBABILITIES = pa.struct([(head, pa.map_(pa.string(), pa.float64())) for head in CLASS_HEADS])
PASSED_THROUGH = ("path", "file_name", "file_size", "modified_at")
SCORED_ARROW = pa.schema(
    [
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("age_group", pa.string()),
        ("age_group_probability", pa.float64()),
        ("age_years", pa.float64()),
        ("gender", pa.string()),
        ("gender_probability", pa.float64()),
        ("race", pa.string()),
        ("race_probability", pa.float64()),
        ("probabilities", PROBABILITIES),
    ]
)
SCORED_SCHEMA = (
    "path string, file_name string, file_size long, modified_at timestamp, width int, "
    "height int, status string, error string, age_group string, "
    "age_group_probability double, age_years double, gender string, gender_probability double, "
    "race string, race_probability double, probabilities struct<age_group: map<string, double>, "
    "gender: map<string, double>, race: map<string, double>>"
)
OUTPUT_COLUMNS = (
    "path",
    "file_name",
    "file_size",
    "modified_at",
    "width",
    "height",
    "status",
    "error",
    "age_group",
    "age_group_probability",
    "age_years",
    "gender",
    "gender_probability",
    "race",
    "race_probability",
    "probabilities",
    "model_version",
    "run_id",
    "scored_at",
)


@dataclasses.dataclass(frozen=True)
class ModelBundle:
    """What executors need to score: the model file's bytes and its descriptor."""

    model_bytes: bytes
    sha256: str
    descriptor: dict[str, Any]

    @property
    def image_spec(self) -> ImageSpec:
        return ImageSpec(size=int(self.descriptor["input_size"][0]))

    @property
    def classes(self) -> dict[str, list[str]]:
        return self.descriptor["classes"]


# One model per Python worker, kept across tasks (Spark reuses workers between tasks).
_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _set_threads(cores: int) -> None:
    """Limit the framework to the cores this task has (spark.task.cpus): Spark runs one task per
    core, and each framework thread pool would otherwise claim every core of the machine."""
    for variable in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = str(cores)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault(
        "XLA_FLAGS",
        f"--xla_force_host_platform_device_count=1 "
        f"--xla_cpu_multi_thread_eigen={'true' if cores > 1 else 'false'}",
    )
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(cores)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        elif backend == "torch":
            import torch

            torch.set_num_threads(cores)
    except RuntimeError:  # the runtime was already initialised in this process: keep its pools
        log.debug("thread pools already set for %s", backend)


def cached_model(bundle: ModelBundle, cores: int = 1):
    """The bundle's Keras model, loaded from its bytes once per process."""
    with _MODELS_LOCK:
        if bundle.sha256 not in _MODELS:
            _set_threads(cores)
            from sparkface.inference import load_model_file

            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model.keras")
                with open(path, "wb") as handle:
                    handle.write(bundle.model_bytes)
                _MODELS[bundle.sha256] = load_model_file(path)
        return _MODELS[bundle.sha256]


def _class_map(names: list[str], probabilities: np.ndarray) -> list[list[tuple[str, float]]]:
    return [list(zip(names, row.tolist(), strict=True)) for row in probabilities]


def score_batch(
    contents: list[bytes | None],
    bundle: ModelBundle,
    model,
    flip: bool,
    sizes: list[int] | None = None,
) -> dict[str, list]:
    """Decode and score one batch; a file that fails gets status 'error' and the reason."""
    from sparkface.inference import predict

    spec = bundle.image_spec
    count = len(contents)
    columns: dict[str, list] = {name: [None] * count for name in SCORED_ARROW.names}
    faces, positions = [], []
    for position, content in enumerate(contents):
        try:
            if sizes is not None and sizes[position] > spec.max_file_bytes:
                raise ImageError(
                    f"file too large: {sizes[position]} bytes, limit {spec.max_file_bytes}"
                )
            face = decode_face(content, spec)
        except ImageError as error:
            columns["status"][position] = "error"
            columns["error"][position] = str(error)
            continue
        columns["width"][position] = face.width
        columns["height"][position] = face.height
        faces.append(face.pixels)
        positions.append(position)
    if faces:
        outputs = predict(model, np.stack(faces), flip=flip)
        probability_maps = {
            head: _class_map(bundle.classes[head], outputs[head]) for head in CLASS_HEADS
        }
        best = {head: outputs[head].argmax(axis=1) for head in CLASS_HEADS}
        for row, position in enumerate(positions):
            columns["status"][position] = "ok"
            for head in CLASS_HEADS:
                columns[head][position] = bundle.classes[head][best[head][row]]
                columns[f"{head}_probability"][position] = float(
                    outputs[head][row, best[head][row]]
                )
            columns["age_years"][position] = round(float(outputs["age"][row]), 2)
            columns["probabilities"][position] = {
                head: probability_maps[head][row] for head in CLASS_HEADS
            }
    return columns


def _maybe_inject_failure() -> None:
    """Fault injection for tests: with SPARKFACE_FAIL_FIRST_ATTEMPT=1 in the executors'
    environment (`--conf spark.executorEnv.SPARKFACE_FAIL_FIRST_ATTEMPT=1`), the first attempt of
    partition 0 fails, so a test can show that Spark retries it without duplicating rows."""
    if os.environ.get("SPARKFACE_FAIL_FIRST_ATTEMPT") != "1":
        return
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is not None and context.partitionId() == 0 and context.attemptNumber() == 0:
        raise RuntimeError("injected failure of the first attempt of partition 0")


def score_partitions(bundle_broadcast, batch_size: int, flip: bool, cores: int):
    """The function `mapInArrow` runs: Arrow batches of (path, file_size, content) in, scored
    Arrow batches out, `batch_size` images at a time."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _maybe_inject_failure()
        bundle = bundle_broadcast.value
        model = cached_model(bundle, cores)
        for batch in batches:
            for start in range(0, batch.num_rows, batch_size):
                part = batch.slice(start, batch_size)
                columns = score_batch(
                    part.column("content").to_pylist(),
                    bundle,
                    model,
                    flip,
                    part.column("file_size").to_pylist(),
                )
                scored = pa.RecordBatch.from_pydict(columns, schema=SCORED_ARROW)
                yield pa.RecordBatch.from_arrays(
                    [part.column(name) for name in PASSED_THROUGH] + scored.columns,
                    names=[*PASSED_THROUGH, *SCORED_ARROW.names],
                )

    return run


def images_to_score(
    spark: SparkSession, input_dir: str, ingest: IngestConfig, spec: ImageSpec
) -> DataFrame:
    """Every image file under `input_dir`: bytes for those within the size limit, none (and an
    error later) for larger ones, so a huge file is never read into a worker's memory."""
    return read_images(spark, input_dir, ingest, max_bytes=spec.max_file_bytes)


def score_images(
    images: DataFrame,
    bundle: ModelBundle,
    *,
    batch_size: int = 128,
    flip: bool | None = None,
    run_id: str = "",
    scored_at: str | None = None,
) -> DataFrame:
    """One scored row per image row: predictions, or status 'error' with the reason."""
    require_columns(
        images, ["path", "file_name", "file_size", "modified_at", "content"], "score_images"
    )
    spark = images.sparkSession
    flip = bundle.descriptor.get("flip_test_time", True) if flip is None else flip
    cores = int(spark.conf.get("spark.task.cpus", "1"))
    broadcast = spark.sparkContext.broadcast(bundle)
    scored = images.select(*PASSED_THROUGH, "content").mapInArrow(
        score_partitions(broadcast, batch_size, flip, cores), SCORED_SCHEMA
    )
    timestamp = F.to_timestamp(F.lit(scored_at)) if scored_at else F.current_timestamp()
    return (
        scored.withColumn("model_version", F.lit(str(bundle.descriptor.get("version", "unknown"))))
        .withColumn("run_id", F.lit(run_id))
        .withColumn("scored_at", timestamp)
        .select(*OUTPUT_COLUMNS)
    )


def load_bundle(model_dir: str) -> ModelBundle:
    """Read a model package (model.keras + model.json) into bytes the executors can receive."""
    from pathlib import Path

    from sparkface.inference import MODEL_FILE, file_sha256, read_descriptor

    directory = Path(model_dir)
    descriptor = read_descriptor(directory)
    model_path = directory / MODEL_FILE
    if not model_path.is_file():
        raise FileNotFoundError(f"no {MODEL_FILE} in {directory}")
    return ModelBundle(model_path.read_bytes(), file_sha256(model_path), descriptor)


def run_scoring(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    bundle: ModelBundle,
    ingest: IngestConfig,
    formats: tuple[str, ...] = ("parquet", "json"),
    batch_size: int = 128,
    run_id: str = "",
) -> dict[str, Any]:
    """Score every image under `input_dir` into `output_dir`/{parquet,json}; return the summary."""
    import json
    import time
    from datetime import datetime
    from pathlib import Path

    from sparkface.outputs import summarise, write_predictions
    from sparkface.progress import log_progress

    started = time.perf_counter()
    scored_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    images = images_to_score(spark, input_dir, ingest, bundle.image_spec)
    scored = score_images(images, bundle, batch_size=batch_size, run_id=run_id, scored_at=scored_at)
    log.info(
        "scoring %s with model %s (batch %d)",
        input_dir,
        bundle.descriptor.get("version"),
        batch_size,
    )
    with log_progress(spark.sparkContext):
        written = write_predictions(scored, output_dir, formats)
        summary = summarise(written)
    seconds = time.perf_counter() - started
    summary.update(
        {
            "input": input_dir,
            "output": output_dir,
            "model_version": bundle.descriptor.get("version"),
            "run_id": run_id,
            "seconds": round(seconds, 2),
            "images_per_second": round(summary["files"] / seconds, 1) if seconds else None,
        }
    )
    if "://" not in output_dir:
        Path(output_dir, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "%d files: %d scored, %d errors %s; %.1f images/s",
        summary["files"],
        summary["scored"],
        summary["errors"],
        summary["errors_by_reason"],
        summary["images_per_second"] or 0,
    )
    return summary
