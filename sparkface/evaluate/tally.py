"""Evaluating a model on a labelled folder in Spark: the scoring job's own transform, then only
counts (the tally) reach the driver."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkface.core.config import AgeGroups, ConfigError, IngestConfig, LabelConfig
from sparkface.core.contract import CLASS_HEADS
from sparkface.core.labels import age_group_index, parse_labels
from sparkface.core.package import ModelBundle
from sparkface.evaluate.metrics import CALIBRATION_BINS, TALLY_KEYS, metrics_from_tally
from sparkface.evaluate.report import write_evaluation
from sparkface.score.transform import score_images
from sparkface.spark.ingest import read_images


def evaluate_folder(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    bundle: ModelBundle,
    ingest: IngestConfig,
    labels_config: LabelConfig,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Score a labelled folder with the scoring job's own code and write its metrics.

    The labelled faces of at least the first age group's age are evaluated; the rest are counted.
    """
    groups = labels_config.groups
    if list(groups.names) != list(bundle.classes["age_group"]):
        raise ConfigError(
            f"the model's age groups {bundle.classes['age_group']} differ from the "
            f"labels config's {list(groups.names)}"
        )
    images = parse_labels(read_images(spark, input_dir, ingest), labels_config.max_age)
    usable = images.where(F.col("label_error").isNull() & (F.col("age") >= groups.min_age))
    scored = score_images(usable, bundle, batch_size=batch_size)
    metrics = metrics_from_tally(*tally_spark(scored, usable, bundle.classes, groups), groups.names)
    metrics["files"] = images.count()
    metrics["not_evaluated"] = metrics["files"] - metrics["faces"]
    metrics["model_version"] = bundle.descriptor.get("version")
    write_evaluation(
        metrics,
        groups.names,
        output_dir,
        f"Evaluation of {bundle.descriptor.get('name', 'model')} on {input_dir}",
    )
    return metrics


def tally_spark(
    scored: DataFrame, usable: DataFrame, classes: dict[str, list[str]], groups: AgeGroups
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """The counts of `tally_arrays`, aggregated in Spark: only counts reach the driver."""
    faces = scored.where(F.col("status") == "ok").join(truth(usable, classes, groups), "path")
    faces = faces.cache()
    tally = head_tally(faces, classes)
    age_tally, probability_sums = group_tally(faces, classes)
    faces.unpersist()
    return tally, age_tally, probability_sums


def _index_of(column: Column, names: list[str] | tuple[str, ...]) -> Column:
    return (F.array_position(F.array(*[F.lit(n) for n in names]), column) - 1).cast("int")


def truth(usable: DataFrame, classes: dict[str, list[str]], groups: AgeGroups) -> DataFrame:
    """Each labelled face's true age and class indices, by path."""
    return usable.select(
        "path",
        F.col("age").alias("true_age"),
        age_group_index(F.col("age"), groups).alias("true_age_group"),
        _index_of(F.col("race"), classes["race"]).alias("true_race"),
        _index_of(F.col("gender"), classes["gender"]).alias("true_gender"),
    )


def head_tally(faces: DataFrame, classes: dict[str, list[str]]) -> pd.DataFrame:
    """Per head: faces by (race, gender, true class, predicted class, confidence bin), with the
    sum of their confidences."""
    parts = []
    for head in CLASS_HEADS:
        confidence = F.col(f"{head}_probability")
        parts.append(
            faces.select(
                F.col("true_race").alias("race"),
                F.col("true_gender").alias("gender"),
                F.lit(head).alias("head"),
                F.col(f"true_{head}").alias("true"),
                _index_of(F.col(head), classes[head]).alias("predicted"),
                F.least(
                    F.greatest(F.ceil(confidence * CALIBRATION_BINS) - 1, F.lit(0)),
                    F.lit(CALIBRATION_BINS - 1),
                )
                .cast("int")
                .alias("bin"),
                confidence.alias("confidence"),
            )
        )
    stacked = functools.reduce(DataFrame.unionByName, parts)
    return (
        stacked.groupBy(*TALLY_KEYS)
        .agg(F.count("*").alias("count"), F.sum("confidence").alias("confidence_sum"))
        .toPandas()
    )


def group_tally(
    faces: DataFrame, classes: dict[str, list[str]]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per race x gender, in one pass: the faces, their age errors and each class's probability;
    the probabilities summed over the groups."""
    sums = {
        (head, name): f"p_{head}_{index}"
        for head in CLASS_HEADS
        for index, name in enumerate(classes[head])
    }
    age_tally = (
        faces.groupBy(F.col("true_race").alias("race"), F.col("true_gender").alias("gender"))
        .agg(
            F.count("*").alias("count"),
            F.sum(F.abs(F.col("age_years") - F.col("true_age"))).alias("error_sum"),
            *[
                F.sum(F.col("probabilities").getField(head).getItem(name)).alias(column)
                for (head, name), column in sums.items()
            ],
        )
        .toPandas()
    )
    probability_sums = {
        head: np.array(
            [age_tally[sums[head, name]].fillna(0.0).sum() for name in classes[head]], "float64"
        )
        for head in CLASS_HEADS
    }
    return age_tally.drop(columns=list(sums.values())), probability_sums
