"""The scoring job on a real Spark standalone cluster (scripts/cluster.sh): same answers as local
mode, executor loss, and a retried task."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, SHARED_FACES, tiny_model_package, utk_names, write_faces

pytestmark = pytest.mark.slow

SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "CLUSTER_DIR": str(folder),
        "SPARK_MASTER_PORT": str(free_port()),
        "SPARK_MASTER_WEBUI_PORT": str(free_port()),
        "SPARK_WORKER_WEBUI_PORT": str(free_port()),
        "WORKERS": "2",
        "WORKER_CORES": "1",
        "WORKER_MEMORY": "2g",
        "PYTHON": sys.executable,
    }
    script = ROOT / "scripts" / "cluster.sh"
    try:
        started = subprocess.run(
            [str(script), "start"], env=env, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, started.stdout + started.stderr
        yield (folder / "master.url").read_text().strip(), folder
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=120)
    for pid_file in folder.glob("*.pid"):
        pytest.fail(f"{pid_file} left behind")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    if SHARED_FACES.is_dir():
        for path in sorted(SHARED_FACES.iterdir())[:300]:
            os.link(path, folder / path.name)
    else:
        write_faces(folder, utk_names(300, seed=5), size=(100, 100))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_package(tmp_path_factory.mktemp("model"))


def score_command(master: str, faces: Path, out: Path, model: Path, *conf: str) -> list[str]:
    options = [item for pair in conf for item in ("--conf", pair)]
    return [
        str(SPARK_SUBMIT),
        "--master",
        master,
        "--conf",
        "spark.ui.enabled=false",
        *options,
        str(ROOT / "jobs" / "score.py"),
        "--input",
        str(faces),
        "--output",
        str(out),
        "--model",
        str(model),
        "--format",
        "parquet",
        "--batch-size",
        "16",
    ]


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_CONF_DIR": str(ROOT / "conf" / "spark"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, env=environment(), capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "parquet").sort_values("path").reset_index(drop=True)


def test_cluster_gives_the_same_rows_as_local_mode(cluster, faces, model_dir, tmp_path):
    master, _ = cluster
    run(score_command(master, faces, tmp_path / "cluster", model_dir))
    run(score_command("local[2]", faces, tmp_path / "local", model_dir))
    on_cluster, local = rows(tmp_path / "cluster"), rows(tmp_path / "local")
    assert len(on_cluster) == len(local) == 300
    assert list(on_cluster["path"]) == list(local["path"])
    for head in ("age_group", "gender", "race"):
        assert list(on_cluster[head]) == list(local[head])
        for a, b in zip(on_cluster["probabilities"], local["probabilities"], strict=True):
            left, right = dict(a[head]), dict(b[head])
            assert left.keys() == right.keys()
            np.testing.assert_allclose(list(left.values()), [right[k] for k in left], atol=1e-5)


def executor_pids(cluster_dir: Path, worker: str) -> list[int]:
    """Executor JVMs started by one worker (its process group)."""
    group = int((cluster_dir / f"{worker}.pid").read_text())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if b"CoarseGrainedExecutorBackend" in command and os.getpgid(int(entry.name)) == group:
                found.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_job_survives_the_loss_of_an_executor(cluster, faces, model_dir, tmp_path):
    master, cluster_dir = cluster
    many = tmp_path / "many"
    for copy in range(4):  # 1,200 files: long enough to kill an executor mid-run
        target = many / f"copy{copy}"
        target.mkdir(parents=True)
        for path in faces.iterdir():
            os.link(path, target / path.name)
    command = score_command(
        master, many, tmp_path / "out", model_dir, "spark.sql.files.maxPartitionBytes=2000000"
    )
    process = subprocess.Popen(
        command,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.time() + 240
        victims: list[int] = []
        while time.time() < deadline and not victims and process.poll() is None:
            victims = executor_pids(cluster_dir, "worker1")
            time.sleep(1)
        assert victims, "no executor started on worker1"
        time.sleep(20)  # let it take tasks and load the model
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        _, errors = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors[-4000:]
    result = rows(tmp_path / "out")
    assert len(result) == 1200
    assert result["path"].is_unique
    assert (result["status"] == "ok").all()


def test_a_failed_task_is_retried_without_duplicates(cluster, faces, model_dir, tmp_path):
    master, _ = cluster
    result = run(
        score_command(
            master,
            faces,
            tmp_path / "out",
            model_dir,
            "spark.executorEnv.SPARKFACE_FAIL_FIRST_ATTEMPT=1",
            "spark.task.maxFailures=4",
        )
    )
    assert "injected failure" in result.stderr
    scored = rows(tmp_path / "out")
    assert len(scored) == 300 and scored["path"].is_unique


def test_cluster_script_status_and_usage(cluster):
    _, cluster_dir = cluster
    env = {**os.environ, "CLUSTER_DIR": str(cluster_dir), "PYTHON": sys.executable}
    status = subprocess.run(
        [str(ROOT / "scripts" / "cluster.sh"), "status"], env=env, capture_output=True, text=True
    )
    assert status.returncode == 0 and "worker2: running" in status.stdout
    usage = subprocess.run(
        [str(ROOT / "scripts" / "cluster.sh"), "restart"], env=env, capture_output=True, text=True
    )
    assert usage.returncode == 2
    assert shutil.which("setsid")
