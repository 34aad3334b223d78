"""Two models judged on the same labelled faces, face by face: is the difference between their
figures more than chance?

Each model's accuracies come with their own 95% intervals (sparkface.evaluate.uncertainty), but
two models evaluated on the same faces are far more alike than two samples: most faces both get
right or both get wrong, and only the faces where they disagree say which is better. Paired, a
difference of a point on 1,765 faces can be told from noise where the two models' own intervals
(±1.3 to ±2.4 points on FairFace's validation photos) overlap. Reads the per-face tables
`jobs/evaluate.py --per-face` writes (OUTPUT/faces), in Spark: only counts reach the driver.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparkface.core.errors import InputError
from sparkface.evaluate.metrics import percent
from sparkface.evaluate.tally import bins_off, source_bins
from sparkface.evaluate.uncertainty import mean_difference, paired_difference

# A head's right answer per face, from a per-face row; null where the face is not labelled for it.
JUDGED = ("gender", "race", "age_group", "age_bin")
PER_FACE_COLUMNS = (
    "path",
    "scored",
    "true_age",
    "true_age_low",
    "true_age_high",
    "true_age_group",
    "true_gender",
    "true_race",
    "age_group",
    "gender",
    "race",
    "age_years",
)


def outcomes(faces: DataFrame) -> DataFrame:
    """Per scored face: whether each head was right (null where the face has no label for it)
    and the absolute error of the age in years (null without an exact age)."""
    missing = [name for name in PER_FACE_COLUMNS if name not in faces.columns]
    if missing:
        raise InputError(f"a per-face table (jobs/evaluate.py --per-face) lacks columns {missing}")
    scored = faces.where(F.col("scored")).withColumnsRenamed(
        {"true_age_low": "age_low", "true_age_high": "age_high"}
    )
    bins = source_bins(scored.where(F.col("true_age").isNull()))
    in_bin = F.lit(None).cast("boolean")
    if bins:
        in_bin = F.when(F.col("true_age").isNull(), bins_off(bins) == 0)
    return scored.select(
        "path",
        *[_right(head).alias(head) for head in ("gender", "race", "age_group")],
        in_bin.alias("age_bin"),
        F.abs(F.col("age_years") - F.col("true_age")).alias("age_error"),
    )


def _right(head: str) -> Column:
    truth = F.col(f"true_{head}")
    return F.when(truth.isNotNull(), F.col(head) == truth)


def compare_faces(before: DataFrame, after: DataFrame) -> dict[str, Any]:
    """Per head, the paired difference of accuracy (after minus before) over the faces both
    models scored and the head's labels judge, and the paired difference of the age's mean
    absolute error where ages are exact; with the faces only one of them scored. Two evaluations
    that share no scored face (another source or split) are an error that says so."""
    # One full outer join and one aggregation: the faces both scored and those only one did.
    left = outcomes(before).withColumn("scored", F.lit(True))
    right = outcomes(after).withColumn("scored", F.lit(True))
    pairs = left.alias("b").join(right.alias("a"), "path", "full_outer")
    both = F.col("b.scored").isNotNull() & F.col("a.scored").isNotNull()
    counts = []
    for head in JUDGED:
        b, a = F.col(f"b.{head}"), F.col(f"a.{head}")
        judged = b.isNotNull() & a.isNotNull()
        counts += [
            F.count_if(judged & b & a).alias(f"{head}_both"),
            F.count_if(judged & b & ~a).alias(f"{head}_before_only"),
            F.count_if(judged & ~b & a).alias(f"{head}_after_only"),
            F.count_if(judged & ~b & ~a).alias(f"{head}_neither"),
        ]
    change = F.col("a.age_error") - F.col("b.age_error")
    row = pairs.agg(
        *counts,
        F.count(change).alias("age_faces"),
        F.sum(change).alias("age_sum"),
        F.sum(change * change).alias("age_squares"),
        F.count_if(both).alias("paired"),
        F.count_if(~both).alias("one_only"),
    ).first()
    if not row["paired"]:
        raise InputError(
            "the two evaluations share no scored face: compare evaluations of one source, split "
            "and face mode"
        )
    heads = {
        head: paired_difference(
            row[f"{head}_both"],
            row[f"{head}_before_only"],
            row[f"{head}_after_only"],
            row[f"{head}_neither"],
        )
        for head in JUDGED
    }
    return {
        "faces_paired": row["paired"],
        "scored_by_one_only": row["one_only"],
        "heads": {head: figures for head, figures in heads.items() if figures},
        "age_mae_years": mean_difference(
            row["age_sum"] or 0.0, row["age_squares"] or 0.0, row["age_faces"]
        ),
    }


def write_comparison(comparison: dict[str, Any], out: str | Path, title: str) -> None:
    """comparison.json and comparison.md in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    lines = [
        f"# {title}",
        "",
        f"Faces scored by both: {comparison['faces_paired']}; by one only: "
        f"{comparison['scored_by_one_only']}.",
        "",
        "| head | faces | before | after | after − before (95% interval) | right only before | "
        "right only after | McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for head, row in comparison["heads"].items():
        low, high = row["interval"]
        lines.append(
            f"| {head} | {row['faces']} | {percent(row['before'])} | {percent(row['after'])} | "
            f"{100 * row['difference']:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}) points | "
            f"{row['before_only']} | {row['after_only']} | {row['p_value']:.3f} |"
        )
    age = comparison["age_mae_years"]
    if age:
        low, high = age["interval"]
        lines += [
            "",
            f"Age mean absolute error, after − before: {age['difference']:+.2f} years "
            f"({low:+.2f} to {high:+.2f}; {age['faces']} faces with an exact age).",
        ]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
