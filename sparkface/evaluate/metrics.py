"""Metrics of a model on labelled faces: accuracy, calibration, shares, and results per race x
gender, all computed from counts (from arrays here, or from Spark in `sparkface.evaluate.tally`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sparkface.core.contract import CLASS_HEADS, GENDERS, RACES
from sparkface.evaluate.uncertainty import wilson

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
        part = pd.DataFrame(
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
        # -1: a face whose source has no label for this head is not judged on it.
        parts.append(part[part["true"] >= 0])
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
        count=("error", "size"), error_sum=("error", "sum"), age_count=("error", "size")
    )
    probability_sums = {
        head: predictions[head][np.asarray(labels[head]) >= 0].sum(axis=0) for head in CLASS_HEADS
    }
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
    matrices = confusion_matrices(tally, names)
    metrics: dict[str, Any] = {"faces": int(age_tally["count"].sum())}
    for head in CLASS_HEADS:
        metrics[f"{head}_accuracy"] = share(np.trace(matrices[head]), matrices[head].sum())
    distance = np.abs(np.subtract.outer(np.arange(len(age_groups)), np.arange(len(age_groups))))
    within_one = matrices["age_group"][distance <= 1].sum()
    metrics["age_group_within_one"] = share(within_one, matrices["age_group"].sum())
    metrics["intervals"] = {
        **{
            f"{head}_accuracy": wilson(int(np.trace(matrices[head])), int(matrices[head].sum()))
            for head in CLASS_HEADS
        },
        "age_group_within_one": wilson(int(within_one), int(matrices["age_group"].sum())),
    }
    # Faces labelled with an age bin only (a source's table) have no age group or age error.
    exact = int(age_tally.get("age_count", age_tally["count"]).sum())
    metrics["exact_ages"] = exact
    metrics["age_mae_years"] = share(age_tally["error_sum"].sum(), exact, 3)
    metrics["calibration_error"] = {head: calibration_error(tally, head) for head in CLASS_HEADS}
    metrics["per_class"] = {head: per_class(matrices[head], names[head]) for head in CLASS_HEADS}
    metrics["shares"] = {
        head: shares(matrices[head], probability_sums[head], names[head]) for head in CLASS_HEADS
    }
    metrics["confusion"] = {head: matrices[head].tolist() for head in CLASS_HEADS}
    metrics["by_race_gender"] = by_race_gender(tally, age_tally)
    return metrics


def share(part: float, whole: float, digits: int = 6) -> float | None:
    """part / whole, rounded; None where there is nothing to divide by. Six digits, so that a
    share shown in percent to one decimal is rounded once (1,240 of 1,765 is 70.3%, where 0.7025
    would show 70.2%)."""
    return round(float(part) / float(whole), digits) if whole else None


def confusion_matrices(
    tally: pd.DataFrame, names: dict[str, tuple[str, ...]]
) -> dict[str, np.ndarray]:
    """Per head, faces by (true, predicted) class."""
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
    return matrices


def calibration_error(tally: pd.DataFrame, head: str) -> float | None:
    """Expected calibration error: the faces-weighted gap between accuracy and confidence over
    the confidence bins; None where no face is labelled for the head."""
    rows = tally[tally["head"] == head].assign(
        correct=lambda f: (f["true"] == f["predicted"]) * f["count"]
    )
    bins = rows.groupby("bin")[["count", "correct", "confidence_sum"]].sum()
    return share((bins["correct"] - bins["confidence_sum"]).abs().sum(), bins["count"].sum())


def by_race_gender(tally: pd.DataFrame, age_tally: pd.DataFrame) -> list[dict[str, Any]]:
    """Every head's accuracy and the age error for each race x gender with faces."""
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
                rows = inside[inside["head"] == head]
                row[f"{head}_accuracy"] = share(rows["correct"].sum(), rows["count"].sum())
            exact = ages.get("age_count", ages["count"]).sum()
            row["age_mae_years"] = share(ages["error_sum"].sum(), exact, 2)
            groups.append(row)
    return groups


def compute_metrics(predictions: dict, labels: dict, age_groups: tuple[str, ...]) -> dict[str, Any]:
    """Every figure of metrics.json from arrays of predictions and labels."""
    return metrics_from_tally(*tally_arrays(predictions, labels), age_groups)


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics a model descriptor keeps: all but the confusion matrices and per-class rows."""
    return {k: v for k, v in metrics.items() if k not in ("confusion", "per_class")}


def describe(metrics: dict[str, Any]) -> str:
    """The headline figures in one line, for the jobs' logs."""
    text = (
        f"{metrics['faces']} faces: gender {percent(metrics['gender_accuracy'])}, "
        f"race {percent(metrics['race_accuracy'])}, "
        f"age group {percent(metrics['age_group_accuracy'])} "
        f"(within one {percent(metrics['age_group_within_one'])}), "
        f"age MAE {number(metrics['age_mae_years'], 2)} years"
    )
    if "age_bin_accuracy" in metrics:
        text += (
            f", age bin {percent(metrics['age_bin_accuracy'])} "
            f"(within one {percent(metrics['age_bin_within_one'])})"
        )
    return text


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
