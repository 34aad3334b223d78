"""The scoring job on a real Spark standalone cluster (scripts/cluster.sh): same answers as local
mode, executor loss, and a retried task."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkface.core.package import default_model_dir
from tests.conftest import (
    ROOT,
    SHARED_FACES,
    build_wheel,
    job_environment,
    spark_submit,
    tiny_model_package,
    utk_names,
    write_faces,
)

pytestmark = pytest.mark.slow


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
    return spark_submit(
        "score.py",
        *("--input", str(faces), "--output", str(out), "--model", str(model)),
        *("--format", "parquet", "--batch-size", "16", "--faces", "aligned"),
        master=master,
        conf=conf,
    )


def environment() -> dict[str, str]:
    return job_environment()


def run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, env=environment(), capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "parquet").sort_values("path").reset_index(drop=True)


def assert_same_rows(on_cluster: pd.DataFrame, local: pd.DataFrame) -> None:
    assert len(on_cluster) == len(local) == 300
    assert list(on_cluster["path"]) == list(local["path"])
    for head in ("age_group", "gender", "race"):
        assert list(on_cluster[head]) == list(local[head])
        for a, b in zip(on_cluster["probabilities"], local["probabilities"], strict=True):
            left, right = dict(a[head]), dict(b[head])
            assert left.keys() == right.keys()
            np.testing.assert_allclose(list(left.values()), [right[k] for k in left], atol=1e-5)


def test_cluster_gives_the_same_rows_as_local_mode(cluster, faces, model_dir, tmp_path):
    master, _ = cluster
    run(score_command(master, faces, tmp_path / "cluster", model_dir))
    run(score_command("local[2]", faces, tmp_path / "local", model_dir))
    assert_same_rows(rows(tmp_path / "cluster"), rows(tmp_path / "local"))


def test_the_packed_environment_route_scores_on_the_cluster(cluster, faces, tmp_path):
    """The README's route for YARN or standalone: a virtual environment with sparkface installed
    from its wheel, packed by venv-pack, shipped with --archives; the executors run its Python.
    A plain install, without the keras extra: it scores the shipped TensorFlow Lite package on
    LiteRT, with neither TensorFlow nor Keras in the archive."""
    master, cluster_dir = cluster
    model_dir = default_model_dir()
    wheel = build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    installed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
        + [str(wheel), "venv-pack==0.2.0"],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"pyspark", "ai-edge-litert"} <= names and not names & {"tensorflow", "keras"}
    archive = tmp_path / "sparkface-env.tar.gz"
    subprocess.run(
        [str(env_dir / "bin" / "venv-pack"), "-p", str(env_dir), "-o", str(archive), "--quiet"],
        check=True,
    )
    command = score_command(master, faces, tmp_path / "packed", model_dir)
    command[1:1] = ["--archives", f"{archive}#environment"]
    env = job_environment(
        PYSPARK_DRIVER_PYTHON=str(env_dir / "bin" / "python"),
        PYSPARK_PYTHON="./environment/bin/python",
    )
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # The executors unpacked the archive beside them: ./environment/bin/python exists only there.
    unpacked = [p for p in cluster_dir.glob("work*/app-*/*/environment/bin/python")]
    assert unpacked, "no executor unpacked the environment"
    run(score_command("local[2]", faces, tmp_path / "local", model_dir))
    assert_same_rows(rows(tmp_path / "packed"), rows(tmp_path / "local"))


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


def python_workers(executor: int) -> list[int]:
    """The Python processes an executor JVM started: it has run a Python task."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == executor:  # its parent
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def executor_id(pid: int) -> str | None:
    """The id an executor JVM was started with (its --executor-id argument); None once it has
    exited (an exiting process's command line reads empty, or the process is gone)."""
    try:
        arguments = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if "--executor-id" not in arguments:
        return None
    return arguments[arguments.index("--executor-id") + 1]


def busy_executors(ui_port: int) -> set[str]:
    """Ids of the executors the driver counts tasks active on, from its REST API; empty while
    the driver's UI is not up yet."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    try:
        with urllib.request.urlopen(base, timeout=2) as reply:
            (application,) = json.load(reply)
        with urllib.request.urlopen(f"{base}/{application['id']}/executors", timeout=2) as reply:
            executors = json.load(reply)
    except (OSError, ValueError):
        return set()
    return {e["id"] for e in executors if e["activeTasks"] > 0}


def spark_events(folder: Path) -> list[dict]:
    """Every event of the application's event log (JSON lines; Spark 4 writes it rolling, in
    files events_N_APP inside a folder eventlog_v2_APP)."""
    logs = sorted(folder.rglob("events_*"), key=lambda path: int(path.name.split("_")[1]))
    assert logs, f"no event log in {folder}"
    return [json.loads(line) for log in logs for line in log.read_text().splitlines() if line]


def test_job_survives_the_loss_of_an_executor(cluster, faces, model_dir, tmp_path):
    master, cluster_dir = cluster
    many = tmp_path / "many"
    for copy in range(4):  # 1,200 files: long enough to kill an executor mid-run
        target = many / f"copy{copy}"
        target.mkdir(parents=True)
        for path in faces.iterdir():
            os.link(path, target / path.name)
    events = tmp_path / "events"
    events.mkdir()
    ui_port = free_port()
    command = score_command(
        master,
        many,
        tmp_path / "out",
        model_dir,
        "spark.sql.files.maxPartitionBytes=2000000",
        "spark.eventLog.enabled=true",
        f"spark.eventLog.dir=file://{events}",
        "spark.eventLog.compress=false",
        "spark.ui.enabled=true",
        f"spark.ui.port={ui_port}",
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
        while time.time() < deadline and process.poll() is None:
            # Kill worker1's executor while it runs a scoring task (a Python worker is up and
            # the driver counts a task active on it), so that the task is lost with it.
            victims = [
                pid
                for pid in executor_pids(cluster_dir, "worker1")
                if python_workers(pid) and executor_id(pid) in busy_executors(ui_port)
            ]
            if victims:
                break
            time.sleep(0.2)
        assert victims, "no executor of worker1 ran a Python task"
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
    # Spark's own record: the executor was lost, tasks failed with it and ran again elsewhere.
    log = spark_events(events)
    removed = [e for e in log if e["Event"] == "SparkListenerExecutorRemoved"]
    assert removed, "Spark never saw an executor go"
    lost = [
        e
        for e in log
        if e["Event"] == "SparkListenerTaskEnd"
        and e["Task End Reason"]["Reason"] == "ExecutorLostFailure"
    ]
    assert lost, "no task was lost with the executor"
    retried = {(e["Stage ID"], e["Task Info"]["Index"]) for e in lost}
    succeeded = {
        (e["Stage ID"], e["Task Info"]["Index"])
        for e in log
        if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] == "Success"
    }
    assert retried <= succeeded  # every lost task succeeded on a later attempt


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
