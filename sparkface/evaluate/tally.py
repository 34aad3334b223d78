"""Evaluating a model on a labelled folder in Spark: the scoring job's own transform, then only
counts (the tally) reach the driver."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from sparkface.core.config import (
    AgeGroups,
    ConfigError,
    FacesConfig,
    IngestConfig,
    LabelConfig,
    SourceConfig,
    detector_settings,
    folder_source,
)
from sparkface.core.contract import CLASS_HEADS, MAX_AGE
from sparkface.core.labels import age_group, age_group_index, labelled_files
from sparkface.core.package import ModelBundle
from sparkface.evaluate.fairness import gap_figures
from sparkface.evaluate.metrics import CALIBRATION_BINS, TALLY_KEYS, metrics_from_tally, share
from sparkface.evaluate.report import write_evaluation
from sparkface.evaluate.uncertainty import wilson
from sparkface.score.transform import score_images
from sparkface.spark.ingest import read_images
from sparkface.spark.paths import spark_path, writable_folder
from sparkface.train.preparation import assign_split

log = logging.getLogger("sparkface")


def evaluate_folder(
    spark: SparkSession,
    input_dir: str,
    output_dir: str,
    bundle: ModelBundle,
    ingest: IngestConfig,
    labels_config: LabelConfig,
    batch_size: int = 128,
    source: SourceConfig | None = None,
    split: tuple[str, dict[str, float]] | None = None,
    faces: FacesConfig | str = "aligned",
    per_face: bool = False,
) -> dict[str, Any]:
    """Score a labelled folder (or `source`) with the scoring job's own code and write its
    metrics. With `split` (a split's name and the fractions training used), only that split's
    faces, chosen by the same hash of the file name. `faces`: how the scoring job finds them
    (aligned crops, or detect in photos). With `per_face`, also each evaluated file's labels
    and predictions (`per_face_rows`) as Parquet in `output_dir`/faces, for looking into errors.

    The labelled faces of at least the first age group's age (or of a bin that starts there) are
    evaluated; the rest are counted. Faces labelled with an age bin only are scored on gender and
    race, and on whether the age in years falls in their bin (or the next): no age group."""
    source = source or folder_source(input_dir)
    writable_folder(spark, output_dir, ("faces",), source.images)
    groups = labels_config.groups
    images, usable, scored = labelled_scores(
        spark, source, bundle, ingest, labels_config, batch_size, split, faces
    )
    metrics = metrics_from_tally(*tally_spark(scored, usable, bundle.classes, groups), groups.names)
    binned = bin_metrics(scored, usable)
    metrics["intervals"].update(binned.pop("intervals", {}))
    metrics.update(binned)
    metrics.update(gap_figures(metrics))
    metrics["files"] = images.count()
    metrics["not_evaluated"] = metrics["files"] - metrics["faces"]
    metrics["not_evaluated_by_reason"] = not_evaluated(images, usable, scored, groups.min_age)
    if metrics["not_evaluated"]:
        reasons = "; ".join(f"{n} {why}" for why, n in metrics["not_evaluated_by_reason"].items())
        log.warning(
            "%d of %d files were not evaluated (%s); `jobs/profile_faces.py` lists them",
            metrics["not_evaluated"],
            metrics["files"],
            reasons,
        )
    metrics["model_version"] = bundle.descriptor.get("version")
    metrics["face_mode"] = faces if isinstance(faces, str) else "detect"
    where = source.name if source.name != "input" else input_dir
    title = f"Evaluation of {bundle.descriptor.get('name', 'model')} on {where}"
    if split is not None:
        title += f", {split[0]} split"
    title += f", faces {metrics['face_mode']}"
    write_evaluation(metrics, groups.names, output_dir, title)
    if per_face:
        rows = per_face_rows(scored, usable, groups)
        rows.write.mode("overwrite").parquet(spark_path(Path(output_dir) / "faces"))
    usable.unpersist()
    scored.unpersist()
    return metrics


def not_evaluated(
    images: DataFrame, usable: DataFrame, scored: DataFrame, min_age: int
) -> dict[str, int]:
    """Why files are left out of an evaluation, the commonest first: the first clause of their
    label error (`not in the labels table`, `age is not a whole number`), their age, or no
    scored face. Before, a folder of photos named otherwise than UTKFace's was "evaluated 0
    faces", and no word why."""

    def first_clause(text: str) -> Column:
        return F.trim(F.regexp_extract(text, r"^([^:;(]*)", 1))

    unlabelled = images.where(
        F.col("label_error").isNotNull() | (F.col("age_low") < min_age)
    ).select(
        F.when(F.col("label_error").isNotNull(), first_clause("label_error"))
        .otherwise(F.lit(f"younger than {min_age}"))
        .alias("reason")
    )
    unscored = usable.join(scored, "path", "left_anti").select(
        F.lit("no face scored (none found, or the file unreadable)").alias("reason")
    )
    counts = unlabelled.unionByName(unscored).groupBy("reason").count().collect()
    ordered = sorted(counts, key=lambda row: (-row["count"], row["reason"]))
    return {row["reason"]: row["count"] for row in ordered}


def labelled_scores(
    spark: SparkSession,
    source: SourceConfig,
    bundle: ModelBundle,
    ingest: IngestConfig,
    labels_config: LabelConfig,
    batch_size: int = 128,
    split: tuple[str, dict[str, float]] | None = None,
    faces: FacesConfig | str = "aligned",
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """A labelled source's files (of `split`, when given), those usable (labelled, old enough:
    cached) and their scored faces (cached): one per file, the labelled one."""
    groups = labels_config.groups
    if list(groups.names) != list(bundle.classes["age_group"]):
        raise ConfigError(
            f"the model's age groups {bundle.classes['age_group']} differ from the "
            f"labels config's {list(groups.names)}"
        )
    files = read_images(spark, source.images, ingest)
    images = labelled_files(spark, files, source, labels_config.max_age)
    if split is not None:
        name, fractions = split
        images = assign_split(
            images, fractions.get("validation", 0.1), fractions.get("test", 0.1)
        ).where(F.col("split") == name)
    usable = images.where(F.col("label_error").isNull() & (F.col("age_low") >= groups.min_age))
    usable = usable.cache()
    scored = score_images(usable, bundle, batch_size=batch_size, faces=detector_settings(faces))
    return images, usable, labelled_face(scored).cache()


def labelled_face(scored: DataFrame) -> DataFrame:
    """Each file's labelled face among its scored rows. In detect mode a photo may hold several
    faces; labelled photos (FairFace's, All-Age-Faces') are cut around theirs, so it is the one
    whose box centre is nearest the image's centre, as training takes it
    (`sparkface.train.faces.nearest`), not a more confident face at the edge. A crop scored in
    aligned mode (no box) is its own face."""
    box = F.col("face_box")
    off_centre = F.when(box.isNull(), F.lit(0.0)).otherwise(
        F.hypot(
            box["x"] + box["width"] / 2 - F.col("width") / 2,
            box["y"] + box["height"] / 2 - F.col("height") / 2,
        )
    )
    nearest_first = Window.partitionBy("path").orderBy(off_centre, F.col("face_index"))
    return (
        scored.where(F.col("status") == "ok")
        .withColumn("_nearest", F.row_number().over(nearest_first))
        .where(F.col("_nearest") == 1)
        .drop("_nearest")
    )


def per_face_rows(scored: DataFrame, usable: DataFrame, groups: AgeGroups) -> DataFrame:
    """One row per labelled file of evaluable age: its labels (`true_*`; an age bin as its
    bounds) and, where a face was scored, the model's classes, probabilities and age in years;
    `scored` false where none was (no face found, or the file could not be read: the scoring
    job's own output says which)."""
    labels = usable.select(
        "path",
        F.col("age").alias("true_age"),
        F.col("age_low").alias("true_age_low"),
        F.col("age_high").alias("true_age_high"),
        age_group(F.col("age"), groups).alias("true_age_group"),
        F.col("gender").alias("true_gender"),
        F.col("race").alias("true_race"),
    )
    predicted = scored.select(
        "path",
        *[c for head in CLASS_HEADS for c in (head, f"{head}_probability")],
        "age_years",
        "probabilities",
        "face_confidence",
        F.lit(True).alias("scored"),
    )
    joined = labels.join(predicted, "path", "left")
    return joined.withColumn("scored", F.coalesce(F.col("scored"), F.lit(False)))


def labelled_probabilities(
    scored: DataFrame, usable: DataFrame, classes: dict[str, list[str]], groups: AgeGroups
) -> pd.DataFrame:
    """Each scored labelled face, on the driver: its true class index per head (null where its
    labels do not say, as the age group of a face labelled with an age bin) and the model's
    probabilities per head, in class order; in the order of their paths, so that what is fitted
    on them (bootstrap resamples included) is the same from run to run, however Spark
    partitioned the faces. No path leaves this function."""
    vectors = [
        F.array(*[F.col("probabilities")[head][name] for name in classes[head]]).alias(head)
        for head in CLASS_HEADS
    ]
    faces = scored.join(truth(usable, classes, groups), "path").orderBy("path")
    return faces.select(*[f"true_{head}" for head in CLASS_HEADS], *vectors).toPandas()


def bin_metrics(scored: DataFrame, usable: DataFrame) -> dict[str, Any]:
    """For faces labelled with an age bin only: how often the age in years falls in the bin,
    and in it or the next one either way (the source's own bins, in order), with their 95%
    intervals."""
    binned = usable.where(F.col("age").isNull()).select("path", "age_low", "age_high")
    bins = source_bins(binned)
    if not bins:
        return {}
    row = (
        scored.select("path", "age_years")
        .join(binned, "path")
        .select(bins_off(bins).alias("off"))
        .agg(
            F.count("*").alias("faces"),
            F.count_if(F.col("off") == 0).alias("inside"),
            F.count_if(F.abs(F.col("off")) <= 1).alias("near"),
        )
        .first()
    )
    return {
        "age_bins": [f"{low}+" if high >= MAX_AGE else f"{low}-{high}" for low, high in bins],
        "age_bins_faces": row["faces"],
        "age_bin_accuracy": share(row["inside"], row["faces"]),
        "age_bin_within_one": share(row["near"], row["faces"]),
        "intervals": {
            "age_bin_accuracy": wilson(row["inside"], row["faces"]),
            "age_bin_within_one": wilson(row["near"], row["faces"]),
        },
    }


def source_bins(binned: DataFrame) -> list[tuple[int, int]]:
    """The age bins (low, high) of a source's faces labelled with one, in order."""
    return sorted({(r[0], r[1]) for r in binned.select("age_low", "age_high").distinct().collect()})


def bins_off(bins: list[tuple[int, int]]) -> Column:
    """How many of the source's `bins` the age in years (rounded; below the first bin or above
    the last: the nearest end) lies from the face's labelled bin (`age_low`, `age_high`)."""
    position = F.lit(None).cast("int")
    predicted = F.round(F.col("age_years"))
    for index, (low, high) in enumerate(bins):
        position = F.when(predicted.between(low, high), F.lit(index)).otherwise(position)
    position = F.coalesce(
        position, F.when(predicted < bins[0][0], F.lit(0)).otherwise(F.lit(len(bins) - 1))
    )
    truth = F.lit(None).cast("int")
    for index, (low, high) in enumerate(bins):
        truth = F.when((F.col("age_low") == low) & (F.col("age_high") == high), index).otherwise(
            truth
        )
    return position - truth


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
    # Faces labelled with an age bin only have no true age group.
    stacked = functools.reduce(DataFrame.unionByName, parts).where(F.col("true").isNotNull())
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
            F.count("true_age").alias("age_count"),
            F.sum(F.abs(F.col("age_years") - F.col("true_age"))).alias("error_sum"),
            # Over the faces labelled for the head, as its confusion matrix counts them.
            *[
                F.sum(
                    F.when(
                        F.col(f"true_{head}").isNotNull(),
                        F.col("probabilities").getField(head).getItem(name),
                    )
                ).alias(column)
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
