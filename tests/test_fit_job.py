"""jobs/fit.py: training on shards prepared earlier, without Spark (for a GPU node). Its whole
run on real shards is in tests/test_jobs.py."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import NO_SPARK, ROOT


def test_fit_job_runs_without_spark_and_says_when_no_shards_were_prepared(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", NO_SPARK, "--output", str(tmp_path), "--input", "faces"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no shards prepared with this config's data settings" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "model").exists()
