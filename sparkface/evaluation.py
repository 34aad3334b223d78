"""Metrics of a model on labelled faces: accuracy, calibration, and results per race x gender."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sparkface.inference import predict
from sparkface.labels import GENDERS, RACES
from sparkface.training import ParquetFaces

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


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 15
) -> float:
    """The gap between confidence and accuracy, averaged over equal-width confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def per_class(predicted: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> dict:
    result = {}
    for index, name in enumerate(names):
        predicted_here = predicted == index
        actual_here = labels == index
        hits = int((predicted_here & actual_here).sum())
        result[name] = {
            "precision": round(hits / predicted_here.sum(), 4) if predicted_here.any() else None,
            "recall": round(hits / actual_here.sum(), 4) if actual_here.any() else None,
            "support": int(actual_here.sum()),
        }
    return result


def confusion(predicted: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def compute_metrics(predictions: dict, labels: dict, age_groups: tuple[str, ...]) -> dict[str, Any]:
    """Every figure of metrics.json from arrays of predictions and labels."""
    names = {"age_group": age_groups, "gender": GENDERS, "race": RACES}
    predicted = {head: predictions[head].argmax(axis=1) for head in CLASS_HEADS}
    metrics: dict[str, Any] = {"faces": int(len(labels["age"]))}
    for head in CLASS_HEADS:
        metrics[f"{head}_accuracy"] = round(float((predicted[head] == labels[head]).mean()), 4)
    metrics["age_group_within_one"] = round(
        float((np.abs(predicted["age_group"] - labels["age_group"]) <= 1).mean()), 4
    )
    metrics["age_mae_years"] = round(float(np.abs(predictions["age"] - labels["age"]).mean()), 3)
    metrics["calibration_error"] = {
        head: round(expected_calibration_error(predictions[head], labels[head]), 4)
        for head in CLASS_HEADS
    }
    metrics["per_class"] = {
        head: per_class(predicted[head], labels[head], names[head]) for head in CLASS_HEADS
    }
    metrics["confusion"] = {
        head: confusion(predicted[head], labels[head], len(names[head])).tolist()
        for head in CLASS_HEADS
    }
    groups = []
    for race_index, race in enumerate(RACES):
        for gender_index, gender in enumerate(GENDERS):
            inside = (labels["race"] == race_index) & (labels["gender"] == gender_index)
            if not inside.any():
                continue
            row = {"race": race, "gender": gender, "faces": int(inside.sum())}
            for head in CLASS_HEADS:
                row[f"{head}_accuracy"] = round(
                    float((predicted[head][inside] == labels[head][inside]).mean()), 4
                )
            row["age_mae_years"] = round(
                float(np.abs(predictions["age"][inside] - labels["age"][inside]).mean()), 2
            )
            groups.append(row)
    metrics["by_race_gender"] = groups
    return metrics


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
    truth = usable.select(
        "path", "age", F.col("gender").alias("true_gender"), F.col("race").alias("true_race")
    )
    rows = (
        scored.where(F.col("status") == "ok")
        .join(truth, "path")
        .select(
            "age",
            "true_gender",
            "true_race",
            "age_years",
            *[F.col("probabilities")[head].alias(head) for head in CLASS_HEADS],
        )
        .toPandas()
    )
    classes = bundle.classes
    predictions = {
        head: np.array([[row[name] for name in classes[head]] for row in rows[head]]).reshape(
            len(rows), len(classes[head])
        )
        for head in CLASS_HEADS
    }
    predictions["age"] = rows["age_years"].to_numpy(dtype=float)
    truth_arrays = {
        "age_group": np.array([groups.index_of(int(a)) for a in rows["age"]], dtype=int),
        "gender": np.array([classes["gender"].index(g) for g in rows["true_gender"]], dtype=int),
        "race": np.array([classes["race"].index(r) for r in rows["true_race"]], dtype=int),
        "age": rows["age"].to_numpy(dtype=int),
    }
    metrics = compute_metrics(predictions, truth_arrays, groups.names)
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
