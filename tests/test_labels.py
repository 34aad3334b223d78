from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from sparkface.core.config import parse_age_groups
from sparkface.core.labels import age_group, parse_labels

GROUPS = parse_age_groups(["7-12", "13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"])


def parse(spark, *names):
    df = spark.createDataFrame([(name,) for name in names], "file_name string")
    return {row["file_name"]: row for row in parse_labels(df).collect()}


def test_plain_utkface_name(spark):
    row = parse(spark, "25_1_2_20170116174525125.jpg.chip.jpg")[
        "25_1_2_20170116174525125.jpg.chip.jpg"
    ]
    assert (row.age, row.gender, row.race, row.label_error) == (25, "female", "asian", None)
    assert str(row.captured_at) == "2017-01-16 17:45:25"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("55_0_0_20170116232725357jpg.chip.jpg", (55, "male", "white")),  # no dot before jpg
        ("0_0_4_20170116232725357.jpg", (0, "male", "others")),
        ("116_1_3_20170116232725357.jpg", (116, "female", "indian")),
        (" 30 _1_1_20170116232725357.jpg", (30, "female", "black")),  # stray spaces
        ("30_1_1_2017 0116 copy.jpg", (30, "female", "black")),
        ("41_0_2_émilie_Ωmega.png", (41, "male", "asian")),  # non-ASCII
        ("41_0_2.JPG", (41, "male", "asian")),  # no date at all
    ],
)
def test_names_that_parse(spark, name, expected):
    row = parse(spark, name)[name]
    assert row.label_error is None
    assert (row.age, row.gender, row.race) == expected


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("39_1_20170116174525125.jpg.chip.jpg", "missing race field (found the date"),
        ("117_0_0_20170116174525125.jpg", "age out of range 0-116: 117"),
        ("99999999999_0_0_2017.jpg", "age out of range"),
        ("x_0_0_2017.jpg", "age is not a whole number: 'x'"),
        ("30_2_0_2017.jpg", "gender must be 0 (male) or 1 (female): '2'"),
        ("30_0_5_2017.jpg", "race must be 0-4: '5'"),
        ("30_0.jpg", "missing race field"),
        ("photo.jpg", "missing gender field"),
        ("_0_1_2017.jpg", "missing age field"),
    ],
)
def test_names_that_do_not_parse_are_kept_with_the_reason(spark, name, error):
    row = parse(spark, name)[name]
    assert error in row.label_error
    assert row.age is None and row.gender is None and row.race is None


def test_every_problem_of_a_name_is_named(spark):
    row = parse(spark, "x_7_9.jpg")["x_7_9.jpg"]
    assert row.label_error.count(";") == 2


def test_age_groups_with_the_default_bins(spark):
    ages = [0, 6, 7, 12, 13, 24, 25, 64, 65, 116]
    df = spark.createDataFrame([(a,) for a in ages], "age int")
    got = [r.group for r in df.select(age_group(F.col("age"), GROUPS).alias("group")).collect()]
    assert got == ["<7", "<7", "7-12", "7-12", "13-17", "18-24", "25-34", "55-64", "65+", "65+"]
