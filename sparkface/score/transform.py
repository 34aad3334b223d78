"""Scoring images on the executors: the model travels as broadcast bytes, is loaded once per Python
worker, and runs in batches inside `mapInArrow`. Every input file gives exactly one row."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sparkface.core.config import ConfigError, FacesConfig
from sparkface.core.contract import CLASS_HEADS, RUNTIME_FILES
from sparkface.core.images import (
    ImageError,
    capture_time,
    check_listed,
    decode_each,
    square_pixels,
)
from sparkface.core.package import Flip, ModelBundle, flip_for, predict
from sparkface.core.runtime import load_runner, require_keras
from sparkface.detect.blazeface import USED_KEYPOINTS
from sparkface.detect.faces import Face, FaceFinder, cached_finder, faces_in
from sparkface.spark.ingest import require_columns

log = logging.getLogger("sparkface")


# The output schema, defined once: the file's columns (passed through from the input), what
# scoring adds on the executors, and what the run adds. Spark's schema and the column order
# derive from it.
FILE_FIELDS = pa.schema(
    [
        ("path", pa.string()),
        ("file_name", pa.string()),
        ("file_size", pa.int64()),
        ("modified_at", pa.timestamp("us", tz="UTC")),
    ]
)
# When the photo was taken (EXIF), when known, and the offset from UTC its camera wrote (null:
# the camera's clock, read as UTC): audiences count faces by it (sparkface.audience).
CAPTURE_FIELDS = pa.schema(
    [("captured_at", pa.timestamp("us", tz="UTC")), ("captured_offset", pa.string())]
)
PROBABILITIES = pa.struct([(head, pa.map_(pa.string(), pa.float64())) for head in CLASS_HEADS])
POINT = pa.struct([("x", pa.float64()), ("y", pa.float64())])
FACE_BOX = pa.struct([(name, pa.int32()) for name in ("x", "y", "width", "height")])
FACE_LANDMARKS = pa.struct([(name, POINT) for name in USED_KEYPOINTS])
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
        ("face_index", pa.int32()),
        ("face_box", FACE_BOX),
        ("face_confidence", pa.float64()),
        ("face_landmarks", FACE_LANDMARKS),
    ]
)
RUN_FIELDS = pa.schema(
    [
        ("model_version", pa.string()),
        ("run_id", pa.string()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
    ]
)
PASSED_THROUGH = tuple(FILE_FIELDS.names)
SCORED_SCHEMA = from_arrow_schema(pa.unify_schemas([FILE_FIELDS, CAPTURE_FIELDS, SCORED_ARROW]))
OUTPUT_SCHEMA = from_arrow_schema(
    pa.unify_schemas([FILE_FIELDS, CAPTURE_FIELDS, SCORED_ARROW, RUN_FIELDS])
)
OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)


# spark.executor.pyspark.memory caps each Python worker's address space (RLIMIT_AS), not its
# resident memory. TensorFlow maps and reserves far more address space than it touches: measured
# here (TF 2.21, the shipped model, one thread) 2.0 GB of address space for 0.8 GB resident, and
# on a cluster with the cap at 1g and 3g every task failed (cannot map libtensorflow_cc, or
# std::bad_alloc), at 2g a worker spun for 13 minutes without end, at 4g it scored (0.9 GB
# resident). A TensorFlow Lite package runs on LiteRT and never imports TensorFlow: one process
# that scores 256 faces with the shipped package peaks at 0.44 GB of address space for 0.17 GB
# resident, and the job on 2,000 crops failed in every task at 384m and 512m (numpy and Arrow
# could not allocate) and scored every face at 768m and 1g, as did `detect` on 3,635 frames and
# crops and on 3840x2160 frames at 1g. So 1g for TensorFlow Lite, a third above the least that
# worked. A smaller cap than the package's runtime needs is refused before any work starts.
MIN_PYSPARK_MEMORY_MB = {"keras": 4096, "tflite": 1024}


def python_memory_problem(setting: str | None, runtime: str) -> str | None:
    """Why a spark.executor.pyspark.memory setting cannot score with a package of `runtime`, or
    None when it can."""
    if not setting:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", setting.lower())
    if not match:
        return f"spark.executor.pyspark.memory={setting!r} is not a size such as 4g"
    scale = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2)]
    megabytes = int(match.group(1)) * scale
    least = MIN_PYSPARK_MEMORY_MB[runtime]
    if megabytes >= least:
        return None
    framework = "TensorFlow" if runtime == "keras" else "LiteRT"
    return (
        f"spark.executor.pyspark.memory={setting} is too small for a {runtime} package: it caps "
        f"each Python worker's address space, and {framework} needs {least // 1024}g of it; set "
        f"at least {least // 1024}g, or leave it unset and cap the executors with "
        "spark.executor.memory"
    )


# One model per Python worker, kept across tasks (Spark reuses workers between tasks).
_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def _set_threads(cores: int, runtime: str) -> None:
    """Limit the framework to the cores this task has (spark.task.cpus): Spark runs one task per
    core, and each framework thread pool would otherwise claim every core of the machine. A
    TensorFlow Lite package takes its threads from its interpreter (`load_runner`), so Keras is
    imported, and its backend's pools set, only for a Keras package."""
    for variable in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = str(cores)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault(
        "XLA_FLAGS",
        f"--xla_force_host_platform_device_count=1 "
        f"--xla_cpu_multi_thread_eigen={'true' if cores > 1 else 'false'}",
    )
    if runtime != "keras":
        return
    require_keras("a Keras package")
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
    """The bundle's model in its runtime (Keras, or TensorFlow Lite), loaded from its bytes once
    per process."""
    with _MODELS_LOCK:
        if bundle.sha256 not in _MODELS:
            _set_threads(cores, bundle.runtime)
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, RUNTIME_FILES[bundle.runtime])
                with open(path, "wb") as handle:
                    handle.write(bundle.model_bytes)
                _MODELS[bundle.sha256] = load_runner(path, bundle.runtime, cores)
        return _MODELS[bundle.sha256]


def _class_map(names: list[str], probabilities: np.ndarray) -> list[list[tuple[str, float]]]:
    return [list(zip(names, row.tolist(), strict=True)) for row in probabilities]


def _predict_into(
    columns: dict[str, list],
    positions: list[int],
    faces: list[np.ndarray],
    bundle: ModelBundle,
    model,
    flip: Flip,
) -> None:
    """Score `faces` and write each one's predictions into `columns` at its position."""
    if not faces:
        return
    outputs = predict(model, np.stack(faces), flip=flip)
    probability_maps = {
        head: _class_map(bundle.classes[head], outputs[head]) for head in CLASS_HEADS
    }
    best = {head: outputs[head].argmax(axis=1) for head in CLASS_HEADS}
    for row, position in enumerate(positions):
        columns["status"][position] = "ok"
        for head in CLASS_HEADS:
            columns[head][position] = bundle.classes[head][best[head][row]]
            columns[f"{head}_probability"][position] = float(outputs[head][row, best[head][row]])
        columns["age_years"][position] = round(float(outputs["age"][row]), 2)
        columns["probabilities"][position] = {
            head: probability_maps[head][row] for head in CLASS_HEADS
        }


def score_batch(
    contents: list[bytes | None],
    bundle: ModelBundle,
    model,
    flip: Flip,
    sizes: list[int] | None = None,
) -> dict[str, list]:
    """`aligned` mode: each file is one face crop. Decode and score one batch; a file that fails
    gets status 'error' and the reason."""
    count = len(contents)
    columns: dict[str, list] = {name: [None] * count for name in SCORED_ARROW.names}
    faces, positions = [], []
    decoded = decode_each(contents, bundle.image_spec, sizes)
    for position, (face, error) in enumerate(decoded):
        if face is None:
            columns["status"][position] = "error"
            columns["error"][position] = error
            continue
        columns["width"][position] = face.width
        columns["height"][position] = face.height
        faces.append(face.pixels)
        positions.append(position)
    _predict_into(columns, positions, faces, bundle, model, flip)
    return columns


def _face_columns(index: int, face: Face) -> dict[str, Any]:
    x, y, width, height = face.box
    return {
        "face_index": index,
        "face_box": {"x": x, "y": y, "width": width, "height": height},
        "face_confidence": face.confidence,
        "face_landmarks": {
            name: {"x": round(float(px), 1), "y": round(float(py), 1)}
            for name, (px, py) in zip(USED_KEYPOINTS, face.keypoints, strict=True)
        },
    }


def detect_batch(
    contents: list[bytes | None],
    sizes: list[int],
    bundle: ModelBundle,
    model,
    flip: Flip,
    finder: FaceFinder,
    settings: FacesConfig,
) -> tuple[dict[str, list], list[int]]:
    """`detect` mode: one row per face found in each file, 'no_face' for an image without one,
    'error' for a file that is not a usable image; with each row's file (its position in the
    batch)."""
    columns: dict[str, list] = {name: [] for name in SCORED_ARROW.names}
    sources: list[int] = []
    faces, positions = [], []

    def add_row(source: int, **values: Any) -> int:
        for name in SCORED_ARROW.names:
            columns[name].append(values.get(name))
        sources.append(source)
        return len(sources) - 1

    spec = bundle.image_spec
    for source, (content, size) in enumerate(zip(contents, sizes, strict=True)):
        try:
            check_listed(content, size, spec)
            found, width, height = faces_in(content, spec, finder, settings)
        except ImageError as error:
            add_row(source, status="error", error=str(error))
            continue
        if not found:
            add_row(source, status="no_face", width=width, height=height)
        for index, face in enumerate(found):
            row = add_row(source, width=width, height=height, **_face_columns(index, face))
            faces.append(square_pixels(face.crop, spec.size))
            positions.append(row)
    _predict_into(columns, positions, faces, bundle, model, flip)
    return columns, sources


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


def score_partitions(
    bundle_broadcast, batch_size: int, flip: Flip, cores: int, faces: FacesConfig | None = None
):
    """The function `mapInArrow` runs: Arrow batches of (path, file_size, content) in, scored
    Arrow batches out, `batch_size` images at a time. With `faces` (detect mode), each file gives
    a row per face found."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _maybe_inject_failure()
        bundle = bundle_broadcast.value
        model = cached_model(bundle, cores)
        finder = cached_finder(faces) if faces is not None else None
        for batch in batches:
            for start in range(0, batch.num_rows, batch_size):
                part = batch.slice(start, batch_size)
                contents = part.column("content").to_pylist()
                sizes = part.column("file_size").to_pylist()
                captures = [capture_time(content) for content in contents]
                passed = [part.column(name) for name in PASSED_THROUGH] + [
                    pa.array([at for at, _ in captures], CAPTURE_FIELDS.types[0]),
                    pa.array([offset for _, offset in captures], CAPTURE_FIELDS.types[1]),
                ]
                if faces is None:
                    columns = score_batch(contents, bundle, model, flip, sizes)
                else:
                    columns, sources = detect_batch(
                        contents, sizes, bundle, model, flip, finder, faces
                    )
                    rows = pa.array(sources, type=pa.int32())
                    passed = [column.take(rows) for column in passed]
                scored = pa.RecordBatch.from_pydict(columns, schema=SCORED_ARROW)
                yield pa.RecordBatch.from_arrays(
                    passed + scored.columns,
                    names=[*PASSED_THROUGH, *CAPTURE_FIELDS.names, *SCORED_ARROW.names],
                )

    return run


def score_images(
    images: DataFrame,
    bundle: ModelBundle,
    *,
    batch_size: int = 128,
    flip: Flip | None = None,
    run_id: str = "",
    scored_at: str | None = None,
    faces: FacesConfig | None = None,
) -> DataFrame:
    """Scored rows: with `faces` None (aligned mode) one per image row, a prediction or status
    'error' with the reason; with `faces` (detect mode) one per face found, 'no_face' for an image
    without one, 'error' as before."""
    require_columns(images, [*PASSED_THROUGH, "content"], "score_images")
    if bundle.runtime == "keras":
        require_keras("a Keras package")  # on the driver, before any task starts
    spark = images.sparkSession
    cap = spark.conf.get("spark.executor.pyspark.memory", None)
    if problem := python_memory_problem(cap, bundle.runtime):
        raise ConfigError(problem)
    if flip is None:
        flip = flip_for(bundle.descriptor, "aligned" if faces is None else "detect")
    cores = int(spark.conf.get("spark.task.cpus", "1"))
    broadcast = spark.sparkContext.broadcast(bundle)
    scored = images.select(*PASSED_THROUGH, "content").mapInArrow(
        score_partitions(broadcast, batch_size, flip, cores, faces), SCORED_SCHEMA
    )
    timestamp = F.to_timestamp(F.lit(scored_at)) if scored_at else F.current_timestamp()
    return (
        scored.withColumn("model_version", F.lit(str(bundle.descriptor.get("version", "unknown"))))
        .withColumn("run_id", F.lit(run_id))
        .withColumn("scored_at", timestamp)
        .select(*OUTPUT_COLUMNS)
    )
