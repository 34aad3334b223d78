"""Paths as Spark takes them (tests/test_scoring.py and tests/test_audience.py write and read
them with Spark)."""

from __future__ import annotations

import os

import pytest

from sparkface.core.errors import OutputError
from sparkface.spark.paths import (
    input_path,
    join,
    literal_path,
    spark_path,
    writable_folder,
    written_path,
)
from tests.conftest import load_job


def test_a_name_is_taken_literally_not_as_a_pattern():
    assert literal_path("/data/cam[1]/{a,b}/*?") == r"/data/cam\[1\]/\{a,b\}/\*\?"
    assert literal_path(r"/data/back\slash") == r"/data/back\\slash"
    assert literal_path("/data/2026-12-07T14:00/cam 1") == "/data/2026-12-07T14:00/cam 1"


def test_a_local_path_is_made_absolute_and_a_uri_is_left_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Relative, `2026-12-07T15:00` would be a URI whose scheme is `2026-12-07T15`.
    assert spark_path("2026-12-07T15:00") == f"{tmp_path}/2026-12-07T15:00"
    assert written_path("night[1]") == rf"{tmp_path}/night\[1\]"
    assert input_path("cam[1]") == rf"{tmp_path}/cam\[1\]"
    # A URI that the job wrote is read as named; one its user gave may be a pattern.
    assert spark_path("hdfs:///out/night[1]") == "hdfs:///out/night[1]"
    assert written_path("hdfs:///out/night[1]") == r"hdfs:///out/night\[1\]"
    assert input_path("s3a://cams/2026-12-*/") == "s3a://cams/2026-12-*/"
    assert input_path("file:/data/cam*") == "file:/data/cam*"
    assert spark_path("2026-12-07T15:00/parquet") == f"{tmp_path}/2026-12-07T15:00/parquet"


def test_a_uri_is_joined_without_losing_its_double_slash():
    assert join("hdfs://nn/out", "report", "audience.html") == "hdfs://nn/out/report/audience.html"
    assert join("s3a://bucket/out/", "parquet") == "s3a://bucket/out/parquet"
    assert join("out", "parquet") == os.path.join("out", "parquet")


@pytest.mark.parametrize(
    "job", ["compare", "convert", "ensemble", "evaluate", "fit", "profile_faces", "soup", "train"]
)
def test_a_job_that_writes_on_the_driver_refuses_a_uri_output(job, capsys):
    # Its files went to a local folder named `hdfs:` beside the job.
    with pytest.raises(SystemExit) as stopped:
        load_job(job).main(["--output", "hdfs://nn/out"])
    assert stopped.value.code == 2
    assert "--output: 'hdfs://nn/out' is a URI; this job writes its files on the driver" in (
        capsys.readouterr().err
    )


def test_an_output_that_cannot_be_written_is_named_before_any_work(tmp_path):
    writable_folder(None, tmp_path / "new" / "out")
    assert (tmp_path / "new" / "out").is_dir() and not list((tmp_path / "new" / "out").iterdir())
    (tmp_path / "taken").write_text("a file where the output's folder would be")
    with pytest.raises(OutputError, match=r"cannot write the output to .*/taken/out: Not a direc"):
        writable_folder(None, tmp_path / "taken" / "out")
