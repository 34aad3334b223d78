"""A TensorFlow Lite package scores on LiteRT: the executors' Python workers never import
TensorFlow or Keras for it, so each one starts in about a second and fits in a 1g address-space cap
(spark.executor.pyspark.memory), where TensorFlow needs 4g."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sparkface.core.package import default_model_dir
from tests.conftest import ROOT, bad_and_odd_files, job_environment, spark_submit, write_faces

# The worker's own function (score_partitions) on one Arrow batch, in a fresh process; prints the
# statuses and which of TensorFlow and Keras that process imported.
WORKER = """
import json, sys
import pyarrow as pa
from sparkface.core.config import load_faces
from sparkface.core.package import load_bundle
from sparkface.score.transform import score_partitions

class Broadcast:
    value = load_bundle(sys.argv[1])

files = json.loads(sys.stdin.read())
contents = [bytes.fromhex(content) for content in files.values()]
batch = pa.RecordBatch.from_pydict({
    "path": list(files), "file_name": list(files),
    "file_size": [len(content) for content in contents],
    "modified_at": pa.array([None] * len(files), pa.timestamp("us", tz="UTC")),
    "content": contents,
})
faces = load_faces() if sys.argv[2] == "detect" else None
run = score_partitions(Broadcast, 64, True, 1, faces)
statuses = [status for out in run(iter([batch])) for status in out.column("status").to_pylist()]
imported = sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "keras"})
print(json.dumps({"statuses": statuses, "imported": imported}))
"""


def worker_run(package, mode: str) -> dict:
    files = {name: content.hex() for name, (content, _) in bad_and_odd_files().items()}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(package), mode],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=job_environment(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["aligned", "detect"])
def test_a_tflite_package_scores_in_a_worker_that_never_imports_tensorflow(mode):
    package = default_model_dir()
    assert json.loads((package / "model.json").read_text())["runtime"] == "tflite"
    result = worker_run(package, mode)
    files = bad_and_odd_files()
    errors = sum(reason is not None for _, reason in files.values())
    assert result["statuses"].count("error") == errors
    if mode == "aligned":
        assert result["statuses"].count("ok") == len(files) - errors
    else:
        assert set(result["statuses"]) <= {"ok", "no_face", "error"}
    assert result["imported"] == []


def test_a_keras_package_still_sets_its_frameworks_threads(tmp_path):
    """The probe above can see an import: a Keras package's worker imports Keras (and through it
    TensorFlow) to load the model and set its thread pools."""
    from tests.conftest import tiny_model_package

    result = worker_run(tiny_model_package(tmp_path / "keras-package"), "aligned")
    assert "ok" in result["statuses"]
    assert result["imported"] == ["keras", "tensorflow"]


@pytest.mark.slow  # runs the job
def test_the_job_scores_a_tflite_package_under_a_1g_python_memory_cap(tmp_path):
    """Every worker of the job fits in 1g of address space with the shipped package (TensorFlow
    alone maps more than that), and every file still gets its row."""
    names = [
        f"{age}_{index % 2}_{index % 5}_2017011{index:09d}.jpg"
        for index, age in enumerate(range(20, 80))
    ]
    write_faces(tmp_path / "in", names, size=(200, 200))
    for name, (content, _) in bad_and_odd_files().items():
        (tmp_path / "in" / name).write_bytes(content)
    done = subprocess.run(
        spark_submit(
            "score.py",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "out"),
            "--faces",
            "aligned",
            "--format",
            "parquet",
            conf=("spark.executor.pyspark.memory=1g",),
        ),
        capture_output=True,
        text=True,
        env=job_environment(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "out" / "parquet").to_pylist()
    files = bad_and_odd_files()
    errors = sum(reason is not None for _, reason in files.values())
    assert len(rows) == len(names) + len(files)
    statuses = [row["status"] for row in rows]
    assert statuses.count("error") == errors
    assert statuses.count("ok") == len(names) + len(files) - errors


def test_litert_gives_tf_lite_s_answers_to_the_bit():
    """The shipped package and both BlazeFace models answer the same on LiteRT as on TensorFlow's
    deprecated `tf.lite.Interpreter`, at the detector's native and scanned sizes, so the figures
    measured on the one hold for the other."""
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from sparkface.detect.blazeface import model_path

    rng = np.random.default_rng(0)
    cases = [
        (dict(model_path=str(default_model_dir() / "model.tflite")), None, np.uint8),
        (dict(model_path=str(model_path("full"))), None, np.float32),
        (dict(model_path=str(model_path("short"))), (1, 384, 512, 3), np.float32),
    ]
    for source, shape, dtype in cases:
        interpreters = [
            make(**source, num_threads=1) for make in (Interpreter, tf.lite.Interpreter)
        ]
        for interpreter in interpreters:
            if shape:
                interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], shape)
            interpreter.allocate_tensors()
        size = tuple(interpreters[0].get_input_details()[0]["shape"])
        if dtype is np.uint8:
            faces = rng.integers(0, 256, size, dtype=np.uint8)
        else:
            faces = rng.uniform(-1, 1, size).astype(dtype)
        answers = []
        for interpreter in interpreters:
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], faces)
            interpreter.invoke()
            outputs = interpreter.get_output_details()
            answers.append([interpreter.get_tensor(output["index"]) for output in outputs])
        for litert, tensorflow in zip(*answers, strict=True):
            np.testing.assert_array_equal(litert, tensorflow)
