"""The container image, built here with podman (scripts/build_image.sh): it scores a read-only
folder like a local run, holds the pinned packages, and serves as the image of a standalone
cluster whose master and workers are each a container.

These tests need podman. They run where it is installed, and wherever SPARKFACE_IMAGE_TESTS=1
(CI sets it; the build script then installs podman, runc and mmdebstrap with apt)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, SHARED_FACES, job_environment, spark_submit, utk_names, write_faces
from tests.test_cluster import free_port

pytestmark = pytest.mark.slow

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
IMAGE = f"sparkface:{PROJECT['version']}"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "docker" / "containers.conf")}


def podman(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def image():
    if not shutil.which("podman") and os.environ.get("SPARKFACE_IMAGE_TESTS") != "1":
        pytest.skip("podman is not installed (make image installs it; CI runs these tests)")
    built = subprocess.run(
        [str(ROOT / "scripts" / "build_image.sh")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return IMAGE


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """40 faces and one file that is not an image, in a folder the containers mount read-only."""
    folder = tmp_path_factory.mktemp("faces")
    if SHARED_FACES.is_dir():
        for path in sorted(SHARED_FACES.iterdir())[:40]:
            shutil.copy(path, folder / path.name)
    else:
        write_faces(folder, utk_names(40, seed=3), size=(100, 100))
    (folder / "not_an_image.jpg").write_bytes(b"plain text, not a JPEG")
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def local_rows(faces, tmp_path_factory):
    """The same folder scored by a local run on this machine, with the checkout's shipped model."""
    out = tmp_path_factory.mktemp("local") / "predictions"
    result = subprocess.run(
        spark_submit("score.py", "--input", str(faces), "--output", str(out)),
        env=job_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return rows(out)


def writable_folder(tmp_path: Path) -> Path:
    """An output folder the image's user (uid 185) may write to."""
    folder = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def rows(out: Path) -> pd.DataFrame:
    """Rows keyed by file name and face: the containers see the folder under another path."""
    frame = pd.read_parquet(out / "parquet")
    frame["name"] = frame["path"].str.rsplit("/", n=1).str[-1]
    frame["face"] = frame["face_index"].fillna(-1)
    return frame.sort_values(["name", "face"]).reset_index(drop=True)


def assert_same_rows(found: pd.DataFrame, local: pd.DataFrame) -> None:
    """The same rows (detect mode, the default: a row per face found) as a local run's."""
    assert found["name"].nunique() == local["name"].nunique() == 41
    assert found[["name", "face"]].values.tolist() == local[["name", "face"]].values.tolist()
    for column in ("status", "error", "age_group", "gender", "race", "model_version"):
        assert found[column].tolist() == local[column].tolist(), column
    for column in ("age_years", "age_group_probability", "gender_probability", "race_probability"):
        np.testing.assert_allclose(found[column].fillna(-1), local[column].fillna(-1), atol=1e-4)
    assert found["face_box"].tolist() == local["face_box"].tolist()
    if SHARED_FACES.is_dir():  # real crops: faces were found (the made-up ones hold none)
        assert (found["status"] == "ok").sum() >= 36


def test_the_image_scores_a_read_only_folder_like_a_local_run(image, faces, local_rows, tmp_path):
    out = writable_folder(tmp_path)
    result = podman(
        "run", "--rm", "-e", "SPARK_LOCAL_IP=127.0.0.1",
        "-v", f"{faces}:/data/faces:ro", "-v", f"{out}:/data/out",
        image,
        "spark-submit", "--conf", "spark.ui.enabled=false", "jobs/score.py",
        "--input", "/data/faces", "--output", "/data/out/predictions",
    )  # fmt: skip
    assert "41 files: " in result.stdout + result.stderr
    assert "1 errors {'not an image': 1}" in result.stdout + result.stderr
    in_image = rows(out / "predictions")
    assert in_image["path"].str.startswith("file:/data/faces/").all()
    assert_same_rows(in_image, local_rows)


def test_the_image_holds_the_pinned_packages(image):
    wanted = dict(pin.split("==") for pin in PROJECT["dependencies"])
    script = (
        "import importlib.metadata as m, importlib.util as u, json, sys, sparkface.core.home as h; "
        "print(json.dumps({'versions': {name: m.version(name) for name in sys.argv[1:]}, "
        "'python': sys.version_info[:2], 'home': str(h.home()), "
        "'absent': [name for name in ('tensorflow', 'keras') if u.find_spec(name) is None]}))"
    )
    shown = podman("run", "--rm", image, "python3", "-c", script, *wanted).stdout
    found = json.loads(shown.strip().splitlines()[-1])
    assert found["versions"] == wanted
    assert found["absent"] == ["tensorflow", "keras"]  # the scoring image: no keras extra
    assert found["python"] == [3, 11]
    assert found["home"].endswith("site-packages/sparkface/_home")  # the installed package's
    java = podman("run", "--rm", image, "java", "-version").stderr
    assert 'version "17.' in java


def alive_workers(webui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=2) as answer:
            return json.load(answer).get("aliveworkers", 0)
    except OSError:
        return 0


@pytest.fixture
def container_cluster(image, faces, tmp_path):
    """A master and two workers, each in its own container on the host network; every worker
    mounts the input read-only and the output folder at the same paths as the host, as shared
    storage would be. Every container is removed afterwards."""
    prefix = f"sparkface-test-{uuid.uuid4().hex[:8]}"
    port, webui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    out = writable_folder(tmp_path)
    # The workers' executors write where the driver (here) made the job's folders: they run as
    # this user, as the machines of a cluster share one user for its storage.
    user = f"{os.getuid()}:{os.getgid()}"
    common = ("--detach", "--user", user, "-e", "SPARK_LOCAL_IP=127.0.0.1")
    try:
        podman(
            "run", *common, "--name", f"{prefix}-master", image,
            "spark-class", "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui),
        )  # fmt: skip
        for worker in (1, 2):
            podman(
                "run", *common, "--name", f"{prefix}-worker{worker}",
                "-v", f"{faces}:{faces}:ro", "-v", f"{out}:{out}",
                image,
                "spark-class", "org.apache.spark.deploy.worker.Worker",
                "--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
                "--webui-port", str(free_port()), "--work-dir", "/tmp/work", master,
            )  # fmt: skip
        deadline = time.time() + 120
        while alive_workers(webui) < 2 and time.time() < deadline:
            time.sleep(1)
        assert alive_workers(webui) == 2, podman("logs", f"{prefix}-worker1").stderr[-3000:]
        yield master, prefix, out
    finally:
        names = [f"{prefix}-{name}" for name in ("master", "worker1", "worker2")]
        podman("rm", "--force", "--time", "5", *names, check=False)
    left = podman("ps", "--all", "--filter", f"name={prefix}", "--format", "{{.Names}}").stdout
    assert left.strip() == "", f"containers left behind: {left}"


def test_a_cluster_of_containers_scores_like_a_local_run(
    container_cluster, faces, local_rows, tmp_path
):
    master, prefix, out = container_cluster
    # The driver runs here; the executors run the image's Python (python3 on its PATH). Every
    # container shares the host's name but not its disk: shuffle blocks are fetched over the
    # network, not read from a "host-local" directory that is in another container.
    command = spark_submit(
        "score.py", "--input", str(faces), "--output", str(out / "predictions"),
        master=master, conf=("spark.executor.memory=1g", "spark.shuffle.readHostLocalDisk=false"),
    )  # fmt: skip
    result = subprocess.run(
        command,
        env=job_environment(PYSPARK_PYTHON="python3"),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert_same_rows(rows(out / "predictions"), local_rows)
    # Each worker container ran executors of this application, inside its own file system.
    for worker in ("worker1", "worker2"):
        listing = podman("exec", f"{prefix}-{worker}", "ls", "/tmp/work").stdout.split()
        assert any(name.startswith("app-") for name in listing), (worker, listing)
