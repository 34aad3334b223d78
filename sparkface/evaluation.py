"""Metrics of a model on labelled faces: accuracy, calibration, and results per race x gender."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparkface.inference import predict
from sparkface.labels import GENDERS, RACES
from sparkface.training import ParquetFaces, shard_files

log = logging.getLogger("sparkface")

CLASS_HEADS = ("age_group", "gender", "race")


def predict_stream(model, stream: ParquetFaces, flip: bool) -> tuple[dict, dict]:
    """Predictions and labels for every row of a (non-repeating) stream."""
    predictions: dict[str, list] = {}
    labels: dict[str, list] = {}
    for faces, targets, *_ in stream:
        for name, value in predict(model, faces, flip).items():
            predictions.setdefault(name, []).append(value)
        for name, value in targets.items():
            labels.setdefault(name, []).append(np.asarray(value).reshape(len(faces), -1)[:, 0])
    merged_predictions = {k: np.concatenate(v) for k, v in predictions.items()}
    merged_labels = {k: np.concatenate(v) for k, v in labels.items()}
    merged_labels["age"] = np.rint(merged_labels["age"] * 100.0).astype(int)
    return merged_predictions, merged_labels


def evaluate_split(
    model, shards_dir, split: str, image_size: int, flip: bool, age_groups: tuple[str, ...]
) -> dict[str, Any]:
    """Metrics of `model` on one split of training shards."""
    stream = ParquetFaces(shard_files(shards_dir, split), image_size, 256)
    predictions, truth = predict_stream(model, stream, flip)
    return compute_metrics(predictions, truth, age_groups)


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics a model descriptor keeps: all but the confusion matrices and per-class rows."""
    return {k: v for k, v in metrics.items() if k not in ("confusion", "per_class")}


CALIBRATION_BINS = 15
TALLY_KEYS = ["race", "gender", "head", "true", "predicted", "bin"]


def confidence_bin(confidence: np.ndarray) -> np.ndarray:
    """Equal-width confidence bins (low, high], numbered 0..CALIBRATION_BINS-1."""
    return np.clip(np.ceil(confidence * CALIBRATION_BINS) - 1, 0, CALIBRATION_BINS - 1).astype(int)


def tally_arrays(
    predictions: dict, labels: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Counts from arrays, in the form `metrics_from_tally` reads (see `tally_spark`)."""
    parts = []
    for head in CLASS_HEADS:
        confidence = predictions[head].max(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "race": labels["race"],
                    "gender": labels["gender"],
                    "head": head,
                    "true": labels[head],
                    "predicted": predictions[head].argmax(axis=1),
                    "bin": confidence_bin(confidence),
                    "confidence": confidence,
                }
            )
        )
    faces = pd.concat(parts)
    tally = faces.groupby(TALLY_KEYS, as_index=False).agg(
        count=("confidence", "size"), confidence_sum=("confidence", "sum")
    )
    ages = pd.DataFrame(
        {
            "race": labels["race"],
            "gender": labels["gender"],
            "error": np.abs(predictions["age"] - labels["age"]),
        }
    )
    age_tally = ages.groupby(["race", "gender"], as_index=False).agg(
        count=("error", "size"), error_sum=("error", "sum")
    )
    probability_sums = {head: predictions[head].sum(axis=0) for head in CLASS_HEADS}
    return tally, age_tally, probability_sums


def per_class(matrix: np.ndarray, names: tuple[str, ...]) -> dict:
    result = {}
    for index, name in enumerate(names):
        hits = int(matrix[index, index])
        predicted, actual = int(matrix[:, index].sum()), int(matrix[index, :].sum())
        result[name] = {
            "precision": round(hits / predicted, 4) if predicted else None,
            "recall": round(hits / actual, 4) if actual else None,
            "support": actual,
        }
    return result


def shares(matrix: np.ndarray, probability_sum: np.ndarray, names: tuple[str, ...]) -> dict:
    """Each class's share of the faces, true and estimated two ways: by counting each face's most
    probable class, and as the mean of the class's probability. `distance`: half the sum of the
    absolute differences from the true shares (0: exact, 1: disjoint)."""
    total = max(int(matrix.sum()), 1)
    true, counted = matrix.sum(axis=1) / total, matrix.sum(axis=0) / total
    mean = np.asarray(probability_sum, dtype="float64") / total
    return {
        "classes": {
            name: {
                "true": round(float(true[i]), 4),
                "counted": round(float(counted[i]), 4),
                "mean_probability": round(float(mean[i]), 4),
            }
            for i, name in enumerate(names)
        },
        "distance": {
            "counted": round(float(np.abs(counted - true).sum() / 2), 4),
            "mean_probability": round(float(np.abs(mean - true).sum() / 2), 4),
        },
    }


def metrics_from_tally(
    tally: pd.DataFrame,
    age_tally: pd.DataFrame,
    probability_sums: dict[str, np.ndarray],
    age_groups: tuple[str, ...],
) -> dict[str, Any]:
    """Every figure of metrics.json from counts: per head, (true, predicted, confidence bin)
    counts by race x gender, the sum of each class's probability over the faces, and the age
    error sums by race x gender."""
    names = {"age_group": age_groups, "gender": GENDERS, "race": RACES}
    metrics: dict[str, Any] = {"faces": int(age_tally["count"].sum())}
    matrices = {}
    for head in CLASS_HEADS:
        rows = tally[tally["head"] == head]
        matrix = np.zeros((len(names[head]),) * 2, dtype=np.int64)
        np.add.at(
            matrix,
            (rows["true"].to_numpy(int), rows["predicted"].to_numpy(int)),
            rows["count"].to_numpy(np.int64),
        )
        matrices[head] = matrix
        total = max(int(matrix.sum()), 1)
        metrics[f"{head}_accuracy"] = round(float(np.trace(matrix)) / total, 4)
    distance = np.abs(np.subtract.outer(np.arange(len(age_groups)), np.arange(len(age_groups))))
    metrics["age_group_within_one"] = round(
        float(matrices["age_group"][distance <= 1].sum())
        / max(int(matrices["age_group"].sum()), 1),
        4,
    )
    metrics["age_mae_years"] = round(
        float(age_tally["error_sum"].sum()) / max(metrics["faces"], 1), 3
    )
    calibration = {}
    for head in CLASS_HEADS:
        rows = tally[tally["head"] == head].assign(
            correct=lambda f: (f["true"] == f["predicted"]) * f["count"]
        )
        bins = rows.groupby("bin")[["count", "correct", "confidence_sum"]].sum()
        calibration[head] = round(
            float((bins["correct"] - bins["confidence_sum"]).abs().sum())
            / max(int(bins["count"].sum()), 1),
            4,
        )
    metrics["calibration_error"] = calibration
    metrics["per_class"] = {head: per_class(matrices[head], names[head]) for head in CLASS_HEADS}
    metrics["shares"] = {
        head: shares(matrices[head], probability_sums[head], names[head]) for head in CLASS_HEADS
    }
    metrics["confusion"] = {head: matrices[head].tolist() for head in CLASS_HEADS}
    groups = []
    correct = tally.assign(correct=(tally["true"] == tally["predicted"]) * tally["count"])
    for race_index, race in enumerate(RACES):
        for gender_index, gender in enumerate(GENDERS):
            ages = age_tally[
                (age_tally["race"] == race_index) & (age_tally["gender"] == gender_index)
            ]
            faces = int(ages["count"].sum())
            if not faces:
                continue
            row: dict[str, Any] = {"race": race, "gender": gender, "faces": faces}
            inside = correct[(correct["race"] == race_index) & (correct["gender"] == gender_index)]
            for head in CLASS_HEADS:
                row[f"{head}_accuracy"] = round(
                    float(inside.loc[inside["head"] == head, "correct"].sum()) / faces, 4
                )
            row["age_mae_years"] = round(float(ages["error_sum"].sum()) / faces, 2)
            groups.append(row)
    metrics["by_race_gender"] = groups
    return metrics


def compute_metrics(predictions: dict, labels: dict, age_groups: tuple[str, ...]) -> dict[str, Any]:
    """Every figure of metrics.json from arrays of predictions and labels."""
    return metrics_from_tally(*tally_arrays(predictions, labels), age_groups)


def write_confusion_charts(metrics: dict, age_groups: tuple[str, ...], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"age_group": age_groups, "gender": GENDERS, "race": RACES}
    written = []
    for head in CLASS_HEADS:
        matrix = np.asarray(metrics["confusion"][head], dtype=float)
        rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        figure, axes = plt.subplots(figsize=(1.0 + 0.7 * len(names[head]),) * 2)
        axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(
                j,
                i,
                int(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rows[i, j] > 0.5 else "black",
            )
        axes.set_xticks(range(len(names[head])), names[head], rotation=45, ha="right")
        axes.set_yticks(range(len(names[head])), names[head])
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(f"{head}: accuracy {metrics[f'{head}_accuracy']:.1%}")
        figure.tight_layout()
        figure.savefig(out / f"confusion_{head}.png", dpi=110)
        plt.close(figure)
        written.append(f"confusion_{head}.png")
    return written


def write_evaluation(
    metrics: dict, age_groups: tuple[str, ...], out: str | Path, title: str
) -> None:
    """metrics.json, confusion-matrix PNGs and report.md in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    charts = write_confusion_charts(metrics, age_groups, out)
    lines = [
        f"# {title}",
        "",
        f"Faces: {metrics['faces']}",
        "",
        "| head | accuracy | calibration error |",
        "|---|---|---|",
    ]
    for head in CLASS_HEADS:
        lines.append(
            f"| {head} | {metrics[f'{head}_accuracy']:.1%} | "
            f"{metrics['calibration_error'][head]:.3f} |"
        )
    lines += [
        "",
        f"- age group within one group: {metrics['age_group_within_one']:.1%}",
        f"- age mean absolute error: {metrics['age_mae_years']:.2f} years",
        "",
        "## By race x gender",
        "",
        "| race | gender | faces | age group | gender | race | age MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in metrics["by_race_gender"]:
        lines.append(
            f"| {row['race']} | {row['gender']} | {row['faces']} | {row['age_group_accuracy']:.1%}"
            f" | {row['gender_accuracy']:.1%} | {row['race_accuracy']:.1%} | "
            f"{row['age_mae_years']:.1f} |"
        )
    lines += ["", "## Per class", ""]
    for head in CLASS_HEADS:
        lines += [f"### {head}", "", "| class | precision | recall | faces |", "|---|---|---|---|"]
        for name, row in metrics["per_class"][head].items():
            lines.append(f"| {name} | {row['precision']} | {row['recall']} | {row['support']} |")
        lines.append("")
    lines += [
        "## Shares of the faces",
        "",
        "Estimated by counting each face's most probable class, or as the mean of the class's",
        "probability; distance: half the sum of the absolute differences from the true shares.",
        "",
    ]
    for head in CLASS_HEADS:
        distance = metrics["shares"][head]["distance"]
        lines += [
            f"### {head} (distance: counted {distance['counted']:.3f}, "
            f"mean probability {distance['mean_probability']:.3f})",
            "",
            "| class | true | counted | mean probability |",
            "|---|---|---|---|",
        ]
        for name, row in metrics["shares"][head]["classes"].items():
            lines.append(
                f"| {name} | {row['true']:.1%} | {row['counted']:.1%} | "
                f"{row['mean_probability']:.1%} |"
            )
        lines.append("")
    lines += [f"![{name}]({name})" for name in charts]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def evaluate_folder(
    spark, input_dir: str, output_dir: str, bundle, ingest, labels_config, batch_size: int = 128
) -> dict[str, Any]:
    """Score a labelled folder with the scoring job's own code and write its metrics.

    The labelled faces of at least the first age group's age are evaluated; the rest are counted.
    """
    from pyspark.sql import functions as F

    from sparkface.ingest import read_images
    from sparkface.labels import parse_labels
    from sparkface.scoring import score_images

    groups = labels_config.groups
    if list(groups.names) != list(bundle.classes["age_group"]):
        raise ValueError(
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
    scored, usable, classes: dict[str, list[str]], groups
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """The counts of `tally_arrays`, aggregated in Spark: only counts reach the driver."""
    from pyspark.sql import functions as F

    from sparkface.labels import age_group_index

    def index_of(column, names):
        return (F.array_position(F.array(*[F.lit(n) for n in names]), column) - 1).cast("int")

    truth = usable.select(
        "path",
        F.col("age").alias("true_age"),
        age_group_index(F.col("age"), groups).alias("true_age_group"),
        index_of(F.col("race"), classes["race"]).alias("true_race"),
        index_of(F.col("gender"), classes["gender"]).alias("true_gender"),
    )
    faces = scored.where(F.col("status") == "ok").join(truth, "path").cache()
    parts = []
    for head in CLASS_HEADS:
        confidence = F.col(f"{head}_probability")
        parts.append(
            faces.select(
                F.col("true_race").alias("race"),
                F.col("true_gender").alias("gender"),
                F.lit(head).alias("head"),
                F.col(f"true_{head}").alias("true"),
                index_of(F.col(head), classes[head]).alias("predicted"),
                F.least(
                    F.greatest(F.ceil(confidence * CALIBRATION_BINS) - 1, F.lit(0)),
                    F.lit(CALIBRATION_BINS - 1),
                )
                .cast("int")
                .alias("bin"),
                confidence.alias("confidence"),
            )
        )
    stacked = parts[0].unionByName(parts[1]).unionByName(parts[2])
    tally = (
        stacked.groupBy(*TALLY_KEYS)
        .agg(F.count("*").alias("count"), F.sum("confidence").alias("confidence_sum"))
        .toPandas()
    )
    # Per race x gender, in the same pass: the faces, their age errors and each class's
    # probability (summed over the groups below).
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
    faces.unpersist()
    probability_sums = {
        head: np.array(
            [age_tally[sums[head, name]].fillna(0.0).sum() for name in classes[head]], "float64"
        )
        for head in CLASS_HEADS
    }
    return tally, age_tally.drop(columns=list(sums.values())), probability_sums
