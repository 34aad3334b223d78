"""A TensorFlow Lite package scores on LiteRT: the executors' Python workers never import
TensorFlow or Keras for it, so each one starts in about a second and fits in a 1g address-space cap
(spark.executor.pyspark.memory), where TensorFlow needs 4g. A plain install (no `keras` extra)
scores it without either installed; what needs Keras says how to install it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


# A sitecustomize that makes Keras and TensorFlow impossible to import, as in a plain install.
WITHOUT_KERAS = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tensorflow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
"""


def without_keras(folder: Path) -> dict[str, str]:
    """A job's environment in which no Python process (driver or worker) can import Keras or
    TensorFlow: a sitecustomize first on PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(WITHOUT_KERAS)
    paths = [str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return job_environment(PYTHONPATH=os.pathsep.join(path for path in paths if path))


def worker_run(package, mode: str, env: dict[str, str] | None = None) -> dict:
    done = worker_process(package, mode, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_process(package, mode: str, env: dict[str, str] | None) -> subprocess.CompletedProcess:
    files = {name: content.hex() for name, (content, _) in bad_and_odd_files().items()}
    return subprocess.run(
        [sys.executable, "-c", WORKER, str(package), mode],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or job_environment(),
        timeout=300,
    )


@pytest.mark.parametrize("mode", ["aligned", "detect"])
def test_a_tflite_package_scores_in_a_worker_that_never_imports_tensorflow(mode):
    package = default_model_dir()
    assert json.loads((package / "model.json").read_text())["runtime"] == "tflite"
    result = worker_run(package, mode)
    assert_scored(result["statuses"], mode)
    assert result["imported"] == []


def assert_scored(statuses: list[str], mode: str) -> None:
    """An error row for each bad file; a prediction for each good one (aligned mode)."""
    files = bad_and_odd_files()
    errors = sum(reason is not None for _, reason in files.values())
    assert statuses.count("error") == errors
    if mode == "aligned":
        assert statuses.count("ok") == len(files) - errors
    else:
        assert set(statuses) <= {"ok", "no_face", "error"}


def test_a_keras_package_still_sets_its_frameworks_threads(tmp_path):
    """The probe above can see an import: a Keras package's worker imports Keras (and through it
    TensorFlow) to load the model and set its thread pools."""
    from tests.conftest import tiny_model_package

    result = worker_run(tiny_model_package(tmp_path / "keras-package"), "aligned")
    assert "ok" in result["statuses"]
    assert result["imported"] == ["keras", "tensorflow"]


@pytest.mark.parametrize("mode", ["aligned", "detect"])
def test_without_keras_installed_the_shipped_package_scores_and_a_keras_one_says_what_to_install(
    mode, tmp_path
):
    env = without_keras(tmp_path / "site")
    blocked = subprocess.run(
        [sys.executable, "-c", "import keras"], capture_output=True, text=True, env=env
    )
    assert blocked.returncode == 1 and "No module named 'keras'" in blocked.stderr
    assert_scored(worker_run(default_model_dir(), mode, env)["statuses"], mode)

    from tests.conftest import tiny_model_package

    keras_package = tiny_model_package(tmp_path / "keras-package")
    refused = worker_process(keras_package, mode, env)
    assert refused.returncode == 1
    assert "MissingFramework: a Keras package needs Keras and TensorFlow" in refused.stderr
    assert "pip install 'sparkface[keras]'" in refused.stderr


@pytest.mark.parametrize(
    "job, arguments",
    [
        ("train.py", ["--input", "in", "--output", "out"]),
        ("fit.py", ["--input", "in", "--output", "out"]),
        ("convert.py", ["--model", "m", "--shards", "s", "--output", "out"]),
        ("ensemble.py", ["--members", "a", "b", "--shards", "s", "--output", "out"]),
    ],
)
def test_without_keras_installed_the_jobs_that_need_it_stop_at_once_and_say_why(
    job, arguments, tmp_path
):
    done = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / job), *arguments],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=without_keras(tmp_path / "site"),
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "needs Keras and TensorFlow" in done.stderr
    assert "pip install 'sparkface[keras]'" in done.stderr
    assert not (tmp_path / "out").exists()


def score_job(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """jobs/score.py on tmp_path/in, aligned, under a 1g Python cap, with no Keras anywhere."""
    return subprocess.run(
        spark_submit(
            "score.py",
            *("--input", str(tmp_path / "in"), "--faces", "aligned", "--format", "parquet"),
            *arguments,
            conf=("spark.executor.pyspark.memory=1g",),
        ),
        capture_output=True,
        text=True,
        env=without_keras(tmp_path / "site"),
        timeout=600,
    )


@pytest.mark.slow  # runs the job
def test_without_keras_the_job_scores_a_tflite_package_under_a_1g_python_memory_cap(tmp_path):
    """Every worker of the job fits in 1g of address space with the shipped package (TensorFlow
    alone maps more than that), and every file still gets its row, on a Python that cannot import
    Keras or TensorFlow (a plain install); a Keras package is refused before any task runs."""
    names = [
        f"{age}_{index % 2}_{index % 5}_2017011{index:09d}.jpg"
        for index, age in enumerate(range(20, 80))
    ]
    write_faces(tmp_path / "in", names, size=(200, 200))
    for name, (content, _) in bad_and_odd_files().items():
        (tmp_path / "in" / name).write_bytes(content)
    done = score_job(tmp_path, "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "out" / "parquet").to_pylist()
    files = bad_and_odd_files()
    errors = sum(reason is not None for _, reason in files.values())
    assert len(rows) == len(names) + len(files)
    statuses = [row["status"] for row in rows]
    assert statuses.count("error") == errors
    assert statuses.count("ok") == len(names) + len(files) - errors

    from tests.conftest import tiny_model_package

    keras_package = tiny_model_package(tmp_path / "keras-package")
    refused = score_job(
        tmp_path, "--output", str(tmp_path / "keras-out"), "--model", str(keras_package)
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    said = refused.stdout + refused.stderr
    assert "a Keras package needs Keras and TensorFlow" in said
    assert "pip install 'sparkface[keras]'" in said
    assert not list((tmp_path / "keras-out").rglob("*.parquet"))


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
