"""Listing a local input without Spark: the files Spark's scan leaves out, what the job may not
read, and folders reached by links (tests/test_scoring.py reads them with Spark)."""

from __future__ import annotations

import os

import pytest

from sparkface.core.errors import InputError
from sparkface.spark.ingest import java_regex, walk_input


def tree(root):
    for name, data in {
        "cam1/a.jpg": b"x",
        "cam1/empty.jpg": b"",
        "cam1/IMG_0001.HEIC": b"v",
        "cam2/b.jpg": b"y",
        "cam2/secret.jpg": b"z",
        "locked/c.jpg": b"w",
        ".hidden/d.jpg": b"",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_the_walk_lists_the_empty_files_and_the_entries_spark_leaves_out(tmp_path):
    tree(tmp_path)
    # No regular file behind the name: a link to a file that is gone, a pipe (a read of which
    # would wait for a writer). Spark lists neither.
    os.symlink(tmp_path / "gone.jpg", tmp_path / "cam1" / "gone.jpg")
    os.mkfifo(tmp_path / "cam2" / "pipe.jpg")
    walk = walk_input(None, str(tmp_path))
    assert walk.roots == [str(tmp_path)] and walk.aliases == []
    assert walk.suffixes == {".jpg": 7, ".heic": 1}  # counted, to say what has no row
    rows = sorted(walk.unread)
    assert [(path, size, content) for path, _, size, content in rows] == [
        (f"file:{tmp_path}/cam1/empty.jpg", 0, b""),
        (f"file:{tmp_path}/cam1/gone.jpg", None, None),
        (f"file:{tmp_path}/cam2/pipe.jpg", None, None),
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
        walk_input(None, str(tmp_path))
    said = str(refused.value)
    assert "2 of the input's files or folders cannot be read (permission denied)" in said
    assert f"{tmp_path}/cam2/secret.jpg, {tmp_path}/locked/" in said


def test_a_folder_is_walked_once_however_many_links_lead_to_it(tmp_path):
    tree(tmp_path / "input")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "empty.jpg").write_bytes(b"")
    links = {
        "latest": tmp_path / "input" / "cam1",  # a dated folder's alias, inside the input
        "loop": tmp_path / "input",  # back to the top: Spark goes forty deep
        "mounted": tmp_path / "elsewhere",  # a folder outside: walked, once
        "mounted_again": tmp_path / "elsewhere",
    }
    for name, target in links.items():
        os.symlink(target, tmp_path / "input" / "cam2" / name)
    walk = walk_input(None, str(tmp_path / "input"))
    assert walk.aliases == [
        f"{tmp_path}/input/cam2/{name}" for name in ("latest", "loop", "mounted_again")
    ]
    # Spark lists what holds no alias, and the files beside one: never a link back in.
    assert walk.roots == [
        f"{tmp_path}/input/{name}"
        for name in ("cam1", "locked", "cam2/b.jpg", "cam2/secret.jpg", "cam2/mounted")
    ]
    assert sorted(path for path, *_ in walk.unread) == [
        f"file:{tmp_path}/input/cam1/empty.jpg",
        f"file:{tmp_path}/input/cam2/mounted/empty.jpg",
    ]


def test_a_folder_keeps_its_own_path_and_a_wider_link_adds_only_what_is_new(tmp_path):
    for name in ("input/zcam/empty.jpg", "elsewhere/cam/empty.jpg", "elsewhere/new/empty.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    # A link whose name comes first does not take the folder's own path from it.
    os.symlink(tmp_path / "input" / "zcam", tmp_path / "input" / "a_link")
    # Two links out: the second leads to a folder holding the first's.
    os.symlink(tmp_path / "elsewhere" / "cam", tmp_path / "input" / "b_cam")
    os.symlink(tmp_path / "elsewhere", tmp_path / "input" / "c_wide")
    walk = walk_input(None, str(tmp_path / "input"))
    top = f"{tmp_path}/input"
    assert walk.aliases == [f"{top}/a_link", f"{top}/c_wide/cam"]
    assert sorted(path for path, *_ in walk.unread) == [
        f"file:{top}/b_cam/empty.jpg",
        f"file:{top}/c_wide/new/empty.jpg",
        f"file:{top}/zcam/empty.jpg",
    ]
    assert walk.roots == [f"{top}/zcam", f"{top}/b_cam", f"{top}/c_wide/new"]


def test_names_starting_with_an_underscore_are_walked_and_hidden_ones_counted(tmp_path):
    for name in ("cam/_DSC0001.JPG", "_archive/a.jpg", ".thumbnails/a.jpg", "cam/.DS_Store"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    walk = walk_input(None, str(tmp_path))
    assert sorted(path for path, *_ in walk.unread) == [
        f"file:{tmp_path}/_archive/a.jpg",
        f"file:{tmp_path}/cam/_DSC0001.JPG",
    ]
    assert walk.suffixes == {".jpg": 2} and walk.hidden == 2  # a hidden folder once


@pytest.mark.parametrize(
    ("python", "java"),
    [
        (r"^cam\d+_", r"^cam\d+_"),
        (r"/screens/(?P<source>[^/]+)/", r"/screens/(?<g0source>[^/]+)/"),
        # Java takes letters and digits only in a group's name, and spells a back-reference so.
        (r"(?P<cam_id>\d)(?P<_x>a)(?P=cam_id)", r"(?<g0camid>\d)(?<g1x>a)\k<g0camid>"),
    ],
)
def test_a_pattern_checked_as_python_s_is_run_as_java_s(python, java):
    assert java_regex(python) == java


def test_a_name_that_is_not_utf8_is_listed_with_its_bytes_escaped(tmp_path):
    with open(os.fsencode(tmp_path) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(b"jpeg bytes")
    (path, _, size, content), *others = walk_input(None, str(tmp_path)).unread
    assert (path, size, content, others) == (f"file:{tmp_path}/caf\\xe9.jpg", 10, None, [])
