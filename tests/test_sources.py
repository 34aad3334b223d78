"""Labelled faces from a table as well as from names (sparkface.core.labels, a source of
conf/sources/): classes mapped onto ours, ages as years or bins, every image accounted for; the
profile and the evaluation of such a source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sparkface.core.config import (
    ConfigError,
    SourceConfig,
    load_ingest,
    load_labels,
    load_source,
    validated,
)
from sparkface.core.contract import RACES
from sparkface.core.labels import labelled_files, table_encoding
from sparkface.core.package import load_bundle
from sparkface.evaluate.tally import evaluate_folder
from sparkface.evaluate.uncertainty import wilson
from sparkface.profile.run import run_profile
from sparkface.spark.ingest import read_images
from tests.conftest import tiny_model_package, write_faces

TABLE = """file,age,gender,race
train/a.jpg,20-29,Male,East Asian
train/b.jpg,70+,Female,Latino_Hispanic
train/c.jpg,35,Female,Black
./train/d.jpg,3-9,Male,White
train/e.jpg,old,Male,White
train/missing.jpg,30-39,Male,White
"""
MAPPING = {
    "gender": {"Male": "male", "Female": "female"},
    "race": {
        "East Asian": "asian",
        "Latino_Hispanic": "others",
        "Black": "black",
        "White": "white",
    },
}


@pytest.fixture
def table_source(tmp_path) -> SourceConfig:
    write_faces(tmp_path / "photos", [f"train/{n}.jpg" for n in "abcdef"], size=(64, 64))
    (tmp_path / "photos" / "labels.csv").write_text(TABLE)
    return SourceConfig(
        name="photos",
        images=str(tmp_path / "photos"),
        labels=str(tmp_path / "photos" / "labels.csv"),
        **MAPPING,
    )


def test_a_table_labels_each_image_by_its_path_with_bins_as_bounds(spark, table_source):
    files = read_images(spark, table_source.images, load_ingest())
    rows = {
        row.file_name: row
        for row in labelled_files(spark, files, table_source).orderBy("file_name").collect()
    }
    assert set(rows) == {f"{n}.jpg" for n in "abcdef"}  # the CSV is not an image
    a, b, c, d = rows["a.jpg"], rows["b.jpg"], rows["c.jpg"], rows["d.jpg"]
    assert (a.age, a.age_low, a.age_high, a.gender, a.race) == (None, 20, 29, "male", "asian")
    assert (b.age_low, b.age_high, b.race) == (70, 116, "others")
    assert (c.age, c.age_low, c.age_high, c.race) == (35, 35, 35, "black")
    assert (d.age_low, d.age_high, d.label_error) == (3, 9, None)  # "./" is the same path
    assert rows["e.jpg"].label_error == "age is not years or a bin 'lo-hi' / 'lo+': 'old'"
    assert rows["f.jpg"].label_error == "not in the labels table"
    assert {row.source for row in rows.values()} == {"photos"}


@pytest.mark.parametrize(
    "form",
    [
        "csv folder",
        "parquet folder",
        "parquet named .csv",
        "_labels.csv",
        "file: csv folder",
        "file: utf-16",
    ],
)
def test_a_table_is_read_as_spark_or_anyone_wrote_it(spark, table_source, tmp_path, form):
    # A folder of CSV files, as Spark writes a table, stopped the job (exit 1): it was read as
    # Parquet. Parquet is known by its bytes, and `_labels.csv` is read as named.
    table = spark.read.option("header", "true").csv(table_source.labels)
    where = tmp_path / "labels"
    if form.endswith("csv folder"):
        table.coalesce(2).write.option("header", "true").csv(str(where))
    elif form == "parquet folder":
        table.write.parquet(str(where))
    elif form == "parquet named .csv":
        where = tmp_path / "labels.csv"
        table.toPandas().to_parquet(where)
    elif form == "_labels.csv":
        where = tmp_path / "_labels.csv"
        where.write_text(TABLE)
    else:
        where = tmp_path / "labels.txt"
        where.write_text(TABLE.replace(",", "\t"), encoding="utf-16")
    labels = f"file:{where}" if form.startswith("file:") else str(where)
    source = table_source.model_copy(update={"labels": labels})
    files = read_images(spark, source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, source).collect()}
    assert {name: (row.age_low, row.race) for name, row in rows.items()} == {
        "a.jpg": (20, "asian"),
        "b.jpg": (70, "others"),
        "c.jpg": (35, "black"),
        "d.jpg": (3, "white"),
        "e.jpg": (None, None),
        "f.jpg": (None, None),
    }


def test_a_file_the_table_labels_twice_differently_has_no_label(spark, table_source):
    # Spark kept either row, so training and evaluation changed from one run to the next.
    table = TABLE + "train/a.jpg,20-29,Male,East Asian\ntrain/c.jpg,36,Female,Black\n"
    table += "train/c.jpg,35,Male,Black\n"
    Path(table_source.labels).write_text(table)
    files = read_images(spark, table_source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, table_source).collect()}
    a, c = rows["a.jpg"], rows["c.jpg"]
    assert (a.age_low, a.gender, a.label_error) == (20, "male", None)  # twice alike: one face
    assert (c.age, c.gender, c.race) == (None, None, None)
    assert c.label_error == "labelled 3 different ways in the labels table"
    assert len(rows) == 6


def test_a_table_may_name_each_image_whole_or_as_windows_writes_it(spark, table_source):
    # A listing of the folder (`find /data/photos -name '*.jpg'`) names each image whole: every
    # image was "not in the labels table".
    folder = table_source.images
    table = "file,age,gender,race\n" + "".join(
        f"{name},20-29,Male,Black\n"
        for name in (
            f"{folder}/train/a.jpg",
            f"file:{folder}/train/b.jpg",
            f"file://{folder}/train/c.jpg",
            "train\\d.jpg",
            "././train/e.jpg",
            "/elsewhere/train/f.jpg",  # another folder's f.jpg is not this one
        )
    )
    Path(table_source.labels).write_text(table)
    files = read_images(spark, folder, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, table_source).collect()}
    assert {name: row.label_error for name, row in rows.items()} == {
        **{f"{n}.jpg": None for n in "abcde"},
        "f.jpg": "not in the labels table",
    }


def test_a_table_may_name_each_image_by_its_file_name_alone(spark, tmp_path):
    # An annotation tool's export names `a.jpg`; the photos lie in a folder a month: each was
    # "not in the labels table".
    names = ["2026-11/a.jpg", "2026-12/b.jpg", "x/c.jpg", "y/c.jpg", "d.jpg", "z/d.jpg"]
    write_faces(tmp_path / "photos", names, size=(40, 40))
    table = "file,age,gender,race\n" + "".join(
        f"{n}.jpg,3{i},Male,Black\n" for i, n in enumerate("abcd")
    )
    (tmp_path / "labels.csv").write_text(table)
    source = SourceConfig(
        name="photos",
        images=str(tmp_path / "photos"),
        labels=str(tmp_path / "labels.csv"),
        **MAPPING,
    )
    files = read_images(spark, source.images, load_ingest())
    rows = labelled_files(spark, files, source).collect()
    by_path = {row.path.split("/photos/")[1]: (row.age, row.label_error) for row in rows}
    two = "the labels table names 'c.jpg' without its folder, and 2 images are so named"
    assert by_path == {
        "2026-11/a.jpg": (30, None),
        "2026-12/b.jpg": (31, None),
        "x/c.jpg": (None, two),  # which one it means, no one can say
        "y/c.jpg": (None, two),
        "d.jpg": (33, None),  # named by its path: the deeper d.jpg is not it
        "z/d.jpg": (None, "not in the labels table"),
    }


def test_ages_written_as_floats_are_years(spark, table_source):
    # pandas writes a float column when one age is missing: every age reads "35.0", and each
    # was "not years or a bin".
    ages = {"a": 35.0, "b": 7.0, "c": 35.5, "d": None}
    table = pd.DataFrame(
        {
            "file": [f"train/{name}.jpg" for name in ages],
            "age": list(ages.values()),
            "gender": "Male",
            "race": "Black",
        }
    )
    table.to_parquet(table_source.images + "/labels.parquet")
    source = table_source.model_copy(update={"labels": table_source.images + "/labels.parquet"})
    files = read_images(spark, source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, source).collect()}
    assert (rows["a.jpg"].age, rows["a.jpg"].age_low, rows["a.jpg"].age_high) == (35, 35, 35)
    assert (rows["b.jpg"].age, rows["b.jpg"].label_error) == (7, None)
    assert rows["c.jpg"].label_error == "age is not years or a bin 'lo-hi' / 'lo+': '35.5'"
    assert rows["d.jpg"].age is None and rows["d.jpg"].label_error.startswith("age is not")


def test_classes_written_as_codes_are_mapped(spark, table_source, tmp_path):
    # `gender: {0: male, 1: female}` stopped the job ("unknown key: Input should be a valid
    # string"); a code column with a missing value is a float column ("1.0") in pandas.
    table = pd.DataFrame(
        {
            "file": [f"train/{name}.jpg" for name in "abc"],
            "age": [30, 41, 52],
            "gender": [0.0, 1.0, None],
            "race": [4, 0, 2],
        }
    )
    table.to_parquet(tmp_path / "codes.parquet")
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "codes.yaml").write_text(
        f"images: {table_source.images}\nlabels: {tmp_path}/codes.parquet\n"
        "gender: {0: male, 1: female}\n"
        "race: {0: white, 1: black, 2: asian, 3: indian, 4: others}\n"
    )
    source = load_source("codes", tmp_path / "sources")
    files = read_images(spark, source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, source).collect()}
    assert (rows["a.jpg"].gender, rows["a.jpg"].race, rows["a.jpg"].label_error) == (
        "male",
        "others",
        None,
    )
    assert (rows["b.jpg"].gender, rows["b.jpg"].race) == ("female", "white")
    assert rows["c.jpg"].label_error == "no gender"


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_spreadsheet_s_csv_is_read_as_it_was_saved(spark, table_source, separator):
    # Where the decimal mark is a comma a spreadsheet saves CSV with ";" (with a byte-order mark
    # and CRLF); its header as typed. Each was "no column(s) ['file', 'age', ...]".
    lines = [["File ", " Age", "GENDER", "race"], ["train/a.jpg", "20-29", "Male", "Black"]]
    text = "\r\n".join(separator.join(line) for line in lines) + "\r\n"
    Path(table_source.labels).write_bytes(b"\xef\xbb\xbf" + text.encode())
    files = read_images(spark, table_source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, table_source).collect()}
    a = rows["a.jpg"]
    assert (a.age_low, a.age_high, a.gender, a.race, a.label_error) == (
        20,
        29,
        "male",
        "black",
        None,
    )


@pytest.mark.parametrize(
    ("encoding", "name", "separator", "configured"),
    [
        ("utf-16", "café.jpg", "\t", "auto"),  # Excel's "Unicode Text": a mark, tabs
        ("cp1252", "café.jpg", ",", "auto"),  # Excel's "CSV" on a Western Windows
        ("cp1251", "фото.jpg", ";", "cp1251"),  # ... on a Russian one, as its source says
        ("latin-1", "café.jpg", ",", "latin-1"),  # a name Python knows and Java spells otherwise
    ],
)
def test_a_table_in_another_encoding_labels_its_names_beyond_ascii(
    spark, table_source, encoding, name, separator, configured
):
    # UTF-16 gave no column at all; another 8-bit encoding left each image whose name has a
    # letter beyond ASCII "not in the labels table".
    write_faces(Path(table_source.images), [f"train/{name}"], size=(64, 64))
    lines = [["file", "age", "gender", "race"], [f"train/{name}", "20-29", "Female", "Black"]]
    lines.append(["train/a.jpg", "30-39", "Male", "White"])
    text = "\r\n".join(separator.join(line) for line in lines) + "\r\n"
    Path(table_source.labels).write_bytes(text.encode(encoding))
    source = table_source.model_copy(update={"encoding": configured})
    files = read_images(spark, source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, source).collect()}
    assert (rows[name].age_low, rows[name].gender, rows[name].label_error) == (20, "female", None)
    assert (rows["a.jpg"].age_low, rows["a.jpg"].race, rows["a.jpg"].label_error) == (
        30,
        "white",
        None,
    )


def test_a_table_s_encoding_is_read_from_its_bytes_or_its_source():
    assert table_encoding("file,age\ncafé.jpg,3\n".encode()) == "UTF-8"
    assert table_encoding(b"\xef\xbb\xbffile,age\n") == "UTF-8"
    assert table_encoding("file\tage\n".encode("utf-16")) == "UTF-16"
    assert table_encoding(b"\xfe\xff\x00f\x00i") == "UTF-16"  # big-endian
    assert table_encoding("file,age\ncafé.jpg,3\n".encode("cp1252")) == "windows-1252"
    assert table_encoding(b"file,age\n", "cp1251") == "cp1251"
    with pytest.raises(ConfigError, match="no encoding 'latin-9000'"):
        validated(SourceConfig, {"name": "x", "images": "/x", "encoding": "latin-9000"}, "x.yaml")


def test_a_class_the_source_does_not_map_is_named(spark, table_source):
    files = read_images(spark, table_source.images, load_ingest())
    partial = table_source.model_copy(update={"race": {"White": "white"}})
    with pytest.raises(ConfigError, match=r"race has class\(es\) \['Black', 'East Asian', 'Lat"):
        labelled_files(spark, files, partial)
    with pytest.raises(ConfigError, match="race.Black: Input should be 'white', 'black'"):
        validated(SourceConfig, {**table_source.model_dump(), "race": {"Black": "dark"}}, "x")


def evaluated(spark, source: SourceConfig, tmp_path, per_face: bool = False) -> dict:
    """The metrics of a tiny model on `source`, its report in tmp_path/evaluation."""
    bundle = load_bundle(tiny_model_package(tmp_path / "model"))
    return evaluate_folder(
        spark, None, str(tmp_path / "evaluation"), bundle, load_ingest(), load_labels(),
        batch_size=4, source=source, per_face=per_face,
    )  # fmt: skip


def test_the_shipped_sources_map_every_fairface_class():
    fairface = load_source("fairface")
    assert set(fairface.race) == {
        "White",
        "Black",
        "Indian",
        "East Asian",
        "Southeast Asian",
        "Latino_Hispanic",
        "Middle Eastern",
    }
    assert (
        fairface.race["Southeast Asian"] == "asian" and fairface.race["Middle Eastern"] == "others"
    )
    assert load_source("utkface").from_names


def test_a_sources_profile_counts_its_bins(spark, table_source, tmp_path):
    rows = "gone.jpg,30-39,Male,White\nf.jpg,40-49,Male,White\n"  # f.jpg is train/f.jpg
    Path(table_source.labels).write_text(TABLE + rows)
    profile, _ = run_profile(
        spark, table_source.images, str(tmp_path / "profile"), load_labels(), load_ingest(),
        source=table_source,
    )  # fmt: skip
    summary = json.loads((tmp_path / "profile" / "summary.json").read_text())
    assert (summary["files"], summary["labelled"], summary["unlabelled"]["count"]) == (6, 5, 1)
    assert summary["by_age_bin"] == {"20-29": 1, "3-9": 1, "40-49": 1, "70+": 1}
    assert summary["age_histogram"]["35"] == 1
    assert summary["by_race"]["others"] == 1
    # Rows naming no image here, by path or by name alone: nothing said so.
    assert summary["labels_without_image"] == {
        "count": 2,
        "files": ["gone.jpg", "train/missing.jpg"],
    }
    report = (tmp_path / "profile" / "report.md").read_text()
    assert "- files the labels table names that are no image here: 2" in report


def test_evaluating_a_source_scores_bins_by_the_age_in_years(spark, table_source, tmp_path):
    metrics = evaluated(spark, table_source, tmp_path)
    # a (20-29), b (70+) and c (35) are of trainable age; d (3-9) starts below 7.
    assert metrics["faces"] == 3 and metrics["exact_ages"] == 1
    assert metrics["age_bins"] == ["20-29", "70+"] and metrics["age_bins_faces"] == 2
    assert metrics["age_bin_accuracy"] in (0.0, 0.5, 1.0)
    inside = round(2 * metrics["age_bin_accuracy"])
    assert metrics["intervals"]["age_bin_accuracy"] == wilson(inside, 2)
    assert sum(metrics["confusion"]["age_group"][i][j] for i in range(8) for j in range(8)) == 1
    assert sum(sum(row) for row in metrics["confusion"]["gender"]) == 3
    report = (tmp_path / "evaluation" / "report.md").read_text()
    assert "faces labelled with a bin" in report
    # Each file left out says why: before, only "not_evaluated": 3.
    assert metrics["not_evaluated_by_reason"] == {
        "younger than 7": 1,
        "age is not years or a bin 'lo-hi' / 'lo+'": 1,
        "not in the labels table": 1,
    }
    assert "Faces: 3, of 6 files; 3 not evaluated (1 age is not years or a bin" in report


def test_a_labelled_file_without_a_scored_face_is_counted_as_such(spark, table_source, tmp_path):
    Path(table_source.labels).write_text(TABLE + "train/g.jpg,40-49,Male,White\n")
    (Path(table_source.images) / "train" / "g.jpg").write_bytes(b"\xff\xd8\xff not a whole JPEG")
    metrics = evaluated(spark, table_source, tmp_path)
    assert (metrics["faces"], metrics["files"], metrics["not_evaluated"]) == (3, 7, 4)
    reasons = metrics["not_evaluated_by_reason"]
    assert reasons["no face scored (none found, or the file unreadable)"] == 1
    assert sum(reasons.values()) == metrics["not_evaluated"]


def test_the_per_face_table_has_every_evaluable_file_once_scored_or_not(
    spark, table_source, tmp_path
):
    (tmp_path / "photos" / "train" / "c.jpg").write_bytes(b"not an image")
    for _ in range(2):  # a rerun replaces the table
        metrics = evaluated(spark, table_source, tmp_path, per_face=True)
    table = pq.read_table(tmp_path / "evaluation" / "faces").to_pandas()
    rows = {
        path.rsplit("/", 1)[-1]: row
        for path, row in zip(table.path, table.itertuples(), strict=True)
    }
    assert len(table) == 3 and sorted(rows) == ["a.jpg", "b.jpg", "c.jpg"]
    assert metrics["faces"] == 2
    a, b, c = rows["a.jpg"], rows["b.jpg"], rows["c.jpg"]
    assert (a.true_age_low, a.true_age_high, a.true_race, a.true_gender) == (
        20,
        29,
        "asian",
        "male",
    )
    assert (
        pd.isna(a.true_age)
        and a.true_age_group is None
        and (b.true_age_low, b.scored) == (70, True)
    )
    assert a.scored and a.gender in ("male", "female") and a.race in RACES
    assert sorted(dict(a.probabilities)) == ["age_group", "gender", "race"]
    assert (c.true_age, c.true_age_group, c.true_race) == (35, "35-44", "black")
    assert not c.scored and c.gender is None and pd.isna(c.age_years)


def test_a_table_without_race_labels_age_and_gender_and_leaves_race_out(spark, tmp_path):
    write_faces(tmp_path / "faces", ["p1.jpg", "p2.jpg", "p3.jpg"], size=(64, 64))
    # Named like a pattern, a table was read as one, and found missing.
    table = tmp_path / "faces" / "labels [v2].csv"
    table.write_text("file,age,gender\np1.jpg,30,F\np2.jpg,41,M\n")
    source = SourceConfig(
        name="faces",
        images=str(tmp_path / "faces"),
        labels=str(table),
        gender={"F": "female", "M": "male"},
        unlabelled=("race",),
    )
    files = read_images(spark, source.images, load_ingest())
    rows = {row.file_name: row for row in labelled_files(spark, files, source).collect()}
    assert (rows["p1.jpg"].age, rows["p1.jpg"].gender, rows["p1.jpg"].race) == (30, "female", None)
    assert rows["p1.jpg"].label_error is None and rows["p2.jpg"].label_error is None
    assert rows["p3.jpg"].label_error == "not in the labels table"

    metrics = evaluated(spark, source, tmp_path)
    assert metrics["faces"] == 2 and metrics["exact_ages"] == 2
    assert sum(sum(row) for row in metrics["confusion"]["gender"]) == 2
    assert sum(sum(row) for row in metrics["confusion"]["race"]) == 0
    assert metrics["race_accuracy"] is None and metrics["by_race_gender"] == []
    assert metrics["calibration_error"]["race"] is None
    report = (tmp_path / "evaluation" / "report.md").read_text()
    assert "No face here has a race label." in report and "### race (distance" not in report
    assert "### gender (distance" in report


def test_a_table_that_names_a_head_unlabelled_need_not_have_its_column(spark, table_source):
    files = read_images(spark, table_source.images, load_ingest())
    with pytest.raises(ConfigError, match=r"no column\(s\) \['ethnicity'\].*`unlabelled` names"):
        renamed = table_source.model_copy(update={"columns": {"race": "ethnicity"}})
        labelled_files(spark, files, renamed)
    with pytest.raises(ConfigError, match="`unlabelled` is for a labels table"):
        validated(SourceConfig, {"name": "x", "images": "x", "unlabelled": ["race"]}, "x")
