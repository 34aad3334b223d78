from __future__ import annotations

import json

import pandas as pd
import pytest

from sparkface.core.config import IngestConfig, LabelConfig
from sparkface.profile.run import run_profile
from sparkface.spark.ingest import InputError, list_files
from tests.conftest import write_faces

NAMES = [
    "30_0_0_20170116174525125.jpg.chip.jpg",
    "31_0_0_20170116174525126.jpg.chip.jpg",
    "32_1_0_20170116174525127.jpg.chip.jpg",
    "5_1_1_20170116174525128.jpg.chip.jpg",  # under 7
    "70_0_2_20170116174525129.JPG",
    "sub/deeper/45_1_3_20170116174525130.png",
    "sub/20_1_4_20170116174525131.jpeg",
    "sub/39_1_20170116174525125.jpg.chip.jpg",  # no race field
    "it's me.webp",  # not a UTKFace name
]


@pytest.fixture(scope="module")
def profiled(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    write_faces(folder, NAMES)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub" / "thumbs.db").write_bytes(b"\x00" * 10)
    (folder / "77_0_0_broken.jpg").write_bytes(b"<html>404 not found</html>")
    # A camera's "_" name is a face; "." names are hidden: counted, not listed.
    write_faces(folder / "_archive", ["40_0_1_20170116174525132.jpg.chip.jpg"])
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    write_faces(folder / "sub" / ".thumbnails", ["41_0_1_20170116174525133.jpg.chip.jpg"])
    out = tmp_path_factory.mktemp("profile")
    result, timings = run_profile(
        spark, str(folder), str(out), LabelConfig(), IngestConfig(), decode_check=True
    )
    return result, timings, out


def test_counts_files_labels_and_ignored(profiled):
    _, _, out = profiled
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == 11
    assert summary["ignored_files"] == 2
    assert summary["hidden"] == 2
    assert summary["labelled"] == 9
    assert summary["unlabelled"]["count"] == 2
    errors = {row["file_name"]: row["label_error"] for row in summary["unlabelled"]["files"]}
    assert "missing race field" in errors["39_1_20170116174525125.jpg.chip.jpg"]
    assert "it's me.webp" in errors
    assert summary["under_min_age"] == 1


def test_tables_by_class_include_empty_classes(profiled):
    _, _, out = profiled
    summary = json.loads((out / "summary.json").read_text())
    assert summary["by_gender"] == {"male": 5, "female": 4}  # the HTML file is labelled by name
    assert summary["by_race"] == {"white": 4, "black": 2, "asian": 1, "indian": 1, "others": 1}
    assert summary["by_age_group"]["25-34"] == 3
    assert summary["by_age_group"]["<7"] == 1
    assert summary["by_age_group"]["13-17"] == 0
    assert summary["age_histogram"]["30"] == 1 and summary["age_histogram"]["29"] == 0
    white_male = [
        r for r in summary["by_race_gender"] if r["race"] == "white" and r["gender"] == "male"
    ]
    assert white_male == [{"race": "white", "gender": "male", "count": 3}]


def test_parquet_tables_match_the_json(profiled):
    _, _, out = profiled
    table = pd.read_parquet(out / "tables" / "by_race_gender.parquet")
    assert len(table) == 10
    assert int(table["count"].sum()) == 9


def test_decode_check_names_the_unreadable_file(profiled):
    result, _, out = profiled
    assert result.unreadable == 1
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["unreadable"]["files"]
    assert row["file_name"] == "77_0_0_broken.jpg"
    assert "HTML" in row["error"]


def test_report_and_charts(profiled):
    _, timings, out = profiled
    report = (out / "report.md").read_text()
    for chart in (
        "race_gender.png",
        "age_histogram.png",
        "age_histogram_by_gender.png",
        "age_histogram_by_race.png",
        "age_groups.png",
    ):
        assert (out / chart).stat().st_size > 1000
        assert f"({chart})" in report
    assert "Smallest race x gender x age-group cells" in report
    assert set(timings) >= {"listing", "parsing and counting", "writing"}


def test_missing_folder_is_an_input_error(spark, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_files(spark, str(tmp_path / "nowhere"), IngestConfig())


def test_empty_folder_profiles_to_zero(spark, tmp_path):
    (tmp_path / "in").mkdir()
    result, _ = run_profile(
        spark, str(tmp_path / "in"), str(tmp_path / "out"), LabelConfig(), IngestConfig()
    )
    assert (result.files, result.labelled, result.unlabelled) == (0, 0, 0)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["files"] == 0
