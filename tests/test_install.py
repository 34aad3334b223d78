"""Runs wherever it is installed: the wheel carries the defaults, the shipped model and the jobs,
and a job run from outside the checkout scores with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, build_wheel, utk_names, write_faces

pytestmark = pytest.mark.slow


def test_a_job_of_the_installed_wheel_scores_from_another_directory(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    # The fresh environment borrows the test environment's dependencies (TensorFlow, pyspark:
    # gigabytes) through a .pth file, not its sparkface: that one comes from the wheel.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    probe = "import sparkface.core.home as h, sparkface; print(sparkface.__file__); print(h.home())"
    where = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout.split()
    assert where[0].startswith(site) and where[1] == str(Path(site) / "sparkface" / "_home")

    work = tmp_path / "elsewhere"
    write_faces(work / "faces", utk_names(12, seed=2), size=(60, 60))
    job = Path(where[1]) / "jobs" / "score.py"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SPARK_CONF_DIR", "PYTHONPATH")},
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    scored = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]", str(job)]
        + ["--input", "faces", "--output", "out", "--format", "parquet", "--faces", "aligned"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=600,
    )
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr[-3000:]
    rows = pq.read_table(work / "out" / "parquet").to_pandas()
    shipped = json.loads((ROOT / "models" / "sparkface-cnn" / "model.json").read_text())
    assert len(rows) == 12 and (rows["status"] == "ok").all()
    assert set(rows["model_version"]) == {shipped["version"]}
