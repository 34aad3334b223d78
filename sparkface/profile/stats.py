"""The balance of a labelled image set: counts by gender, race, age, computed in Spark.

Spark reduces the files to one small table of counts per (age, gender, race); every report
table is derived from it on the driver, so no per-image data is collected.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkface.core.config import AgeGroups
from sparkface.core.contract import GENDERS, MAX_AGE, RACES
from sparkface.core.labels import age_group_index
from sparkface.spark.ingest import require_columns

UNLABELLED_IN_JSON = 1000


@dataclasses.dataclass
class Profile:
    """What a folder holds. `counts` has one row per (age, age_bin, gender, race) with its count:
    `age` for an exact age, `age_bin` (e.g. "20-29") for a face labelled with a bin only."""

    files: int
    ignored_files: int
    labelled: int
    unlabelled: int
    unlabelled_examples: pd.DataFrame
    counts: pd.DataFrame
    groups: AgeGroups
    unreadable: int | None = None
    unreadable_examples: pd.DataFrame | None = None
    hidden: int = 0  # files and folders named with a leading "." (a folder once): not listed
    # A labels table's files that are no image here (None for labels in the file names).
    without_image: int | None = None
    without_image_examples: list[str] = dataclasses.field(default_factory=list)

    def by(self, *columns: str) -> pd.DataFrame:
        """Counts grouped by columns, every combination of known classes listed (zeros too)."""
        levels = {
            "gender": list(GENDERS),
            "race": list(RACES),
            "age_group": [self.groups.below_first, *self.groups.names],
        }
        grouped = self.counts.groupby(list(columns), observed=True)["count"].sum()
        if all(column in levels for column in columns):
            if len(columns) == 1:
                index = pd.Index(levels[columns[0]], name=columns[0])
            else:
                index = pd.MultiIndex.from_product([levels[c] for c in columns], names=columns)
            grouped = grouped.reindex(index, fill_value=0)
        return grouped.reset_index().astype({"count": "int64"})

    def age_histogram(self) -> pd.DataFrame:
        """Counts per year of age, every year from 0 to the oldest present (exact ages)."""
        grouped = self.counts.dropna(subset=["age"]).groupby("age")["count"].sum()
        top = int(grouped.index.max()) if len(grouped) else 0
        return grouped.reindex(range(top + 1), fill_value=0).rename_axis("age").reset_index()

    def smallest_cells(self, limit: int = 10) -> pd.DataFrame:
        """The race x gender x age-group cells (of trainable ages) with the fewest faces."""
        cells = self.by("race", "gender", "age_group")
        cells = cells[cells["age_group"] != self.groups.below_first]
        return cells.sort_values(["count", "race", "gender", "age_group"]).head(limit)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "by_gender": self.by("gender"),
            "by_race": self.by("race"),
            "by_race_gender": self.by("race", "gender"),
            "by_age_group": self.by("age_group"),
            "by_race_gender_age_group": self.by("race", "gender", "age_group"),
            "age_histogram": self.age_histogram(),
            "by_age_bin": self.counts.dropna(subset=["age_bin"])
            .groupby("age_bin")["count"]
            .sum()
            .reset_index(),
        }

    def summary(self) -> dict:
        """The JSON summary: counts and small tables."""

        def records(frame: pd.DataFrame) -> list[dict]:
            return [
                {
                    k: (int(v) if isinstance(v, (int,)) or hasattr(v, "item") else v)
                    for k, v in row.items()
                }
                for row in frame.to_dict(orient="records")
            ]

        tables = self.tables()
        result = {
            "files": self.files,
            "ignored_files": self.ignored_files,
            "hidden": self.hidden,
            "labelled": self.labelled,
            "unlabelled": {
                "count": self.unlabelled,
                "files": records(self.unlabelled_examples),
                "listed": len(self.unlabelled_examples),
            },
            "under_min_age": int(
                self.counts.loc[self.counts["age"] < self.groups.min_age, "count"].sum()
            ),
            "by_gender": {r["gender"]: r["count"] for r in records(tables["by_gender"])},
            "by_race": {r["race"]: r["count"] for r in records(tables["by_race"])},
            "by_race_gender": records(tables["by_race_gender"]),
            "by_age_group": {r["age_group"]: r["count"] for r in records(tables["by_age_group"])},
            "age_histogram": {str(r["age"]): r["count"] for r in records(tables["age_histogram"])},
            "by_age_bin": {r["age_bin"]: r["count"] for r in records(tables["by_age_bin"])},
            "smallest_cells": records(self.smallest_cells()),
        }
        if self.without_image is not None:
            result["labels_without_image"] = {
                "count": self.without_image,
                "files": self.without_image_examples,
            }
        if self.unreadable is not None:
            result["unreadable"] = {
                "count": self.unreadable,
                "files": records(self.unreadable_examples),
            }
        return result


def profile(files: DataFrame, groups: AgeGroups) -> Profile:
    """Count files, labels and classes. `files` comes from `list_files` + `parse_labels`."""
    require_columns(
        files, ["path", "file_name", "is_image", "age", "gender", "race", "label_error"], "profile"
    )
    images = files.where("is_image")
    totals = (
        files.groupBy(F.col("is_image"), F.col("label_error").isNull().alias("labelled"))
        .count()
        .collect()
    )
    count = {(row["is_image"], row["labelled"]): row["count"] for row in totals}
    image_files = count.get((True, True), 0) + count.get((True, False), 0)
    ignored = count.get((False, True), 0) + count.get((False, False), 0)

    low = F.col("age_low") if "age_low" in files.columns else F.col("age")
    high = F.col("age_high") if "age_high" in files.columns else F.col("age")
    age_bin = F.when(
        F.col("age").isNull() & low.isNotNull(),
        F.when(high >= MAX_AGE, F.format_string("%d+", low)).otherwise(
            F.format_string("%d-%d", low, high)
        ),
    ).alias("age_bin")
    counts = (
        images.where(F.col("label_error").isNull())
        .groupBy("age", age_bin, "gender", "race")
        .count()
        .withColumn("age_group_index", age_group_index(F.col("age"), groups))
        .toPandas()
    )
    names = [groups.below_first, *groups.names]
    counts["age_group"] = [
        None if pd.isna(i) else names[int(i) + 1] for i in counts["age_group_index"]
    ]
    counts = counts.drop(columns="age_group_index").astype({"count": "int64", "age": "Int64"})

    unlabelled_examples = (
        images.where(F.col("label_error").isNotNull())
        .select("file_name", "label_error", "path")
        .orderBy("file_name")
        .limit(UNLABELLED_IN_JSON)
        .toPandas()
    )
    return Profile(
        files=image_files,
        ignored_files=ignored,
        labelled=count.get((True, True), 0),
        unlabelled=count.get((True, False), 0),
        unlabelled_examples=unlabelled_examples,
        counts=counts,
        groups=groups,
    )
