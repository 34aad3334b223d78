"""Listing a local input without Spark: the files Spark's scan leaves out, what the job may not
read, and folder names that look like patterns (tests/test_scoring.py reads them with Spark)."""

from __future__ import annotations

import os

import pytest

from sparkface.core.errors import InputError
from sparkface.spark.ingest import literal_path, unread_files


def tree(root):
    for name, data in {
        "cam1/a.jpg": b"x",
        "cam1/empty.jpg": b"",
        "cam2/b.jpg": b"y",
        "cam2/secret.jpg": b"z",
        "locked/c.jpg": b"w",
        ".hidden/d.jpg": b"",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_the_walk_lists_the_empty_files_spark_leaves_out(tmp_path):
    tree(tmp_path)
    rows = unread_files(None, str(tmp_path))
    assert [(path, size, content) for path, _, size, content in rows] == [
        (f"file:{tmp_path}/cam1/empty.jpg", 0, b"")
    ]


def test_what_the_job_may_not_read_stops_it_with_each_entry_named(tmp_path, monkeypatch):
    # As root (CI) every file is readable: the refusals a service user meets are simulated.
    tree(tmp_path)
    scandir, access = os.scandir, os.access

    def refusing_scandir(path):
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    monkeypatch.setattr(
        os, "access", lambda path, mode: "secret" not in path and access(path, mode)
    )
    with pytest.raises(InputError) as refused:
        unread_files(None, str(tmp_path))
    said = str(refused.value)
    assert "2 of the input's files or folders cannot be read (permission denied)" in said
    assert f"{tmp_path}/cam2/secret.jpg, {tmp_path}/locked/" in said


def test_a_folder_name_is_taken_literally_not_as_a_pattern():
    assert literal_path("/data/cam[1]/{a,b}/*?") == r"/data/cam\[1\]/\{a,b\}/\*\?"
    assert literal_path(r"/data/back\slash") == r"/data/back\\slash"
    assert literal_path("/data/2026-12-07T14:00/cam 1") == "/data/2026-12-07T14:00/cam 1"
