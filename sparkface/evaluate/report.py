"""An evaluation's files: metrics.json, confusion-matrix PNGs and report.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from sparkface.core.contract import CLASS_HEADS, GENDERS, RACES
from sparkface.evaluate.metrics import number, percent

log = logging.getLogger("sparkface")


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
        axes.set_title(f"{head}: accuracy {percent(metrics[f'{head}_accuracy'])}")
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
    try:
        charts = [f"![{name}]({name})" for name in write_confusion_charts(metrics, age_groups, out)]
    except ModuleNotFoundError as error:  # jobs/fit.py on a GPU machine without matplotlib
        if error.name != "matplotlib":
            raise
        log.warning("matplotlib is not installed: %s has no confusion charts", out)
        charts = ["(No confusion charts: matplotlib was not installed where this was written.)"]
    lines = [
        *_headline_section(metrics, title),
        *_race_gender_section(metrics),
        *_per_class_section(metrics),
        *_shares_section(metrics),
        *charts,
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _left_out(metrics: dict) -> str:
    """Where files were left out of the evaluation, how many and why."""
    if not metrics.get("not_evaluated"):
        return ""
    reasons = metrics.get("not_evaluated_by_reason", {})
    why = "; ".join(f"{count} {reason}" for reason, count in reasons.items())
    return f", of {metrics['files']} files; {metrics['not_evaluated']} not evaluated ({why})"


def _headline_section(metrics: dict, title: str) -> list[str]:
    lines = [
        f"# {title}",
        "",
        f"Faces: {metrics['faces']}{_left_out(metrics)}",
        "",
        "| head | accuracy | 95% interval | calibration error |",
        "|---|---|---|---|",
    ]
    intervals = metrics.get("intervals", {})
    for head in CLASS_HEADS:
        lines.append(
            f"| {head} | {percent(metrics[f'{head}_accuracy'])} | "
            f"{span(intervals.get(f'{head}_accuracy'))} | "
            f"{number(metrics['calibration_error'][head], 3)} |"
        )
    lines += [
        "",
        f"- age group within one group: {percent(metrics['age_group_within_one'])} "
        f"({span(intervals.get('age_group_within_one'))})",
        f"- age mean absolute error: {number(metrics['age_mae_years'], 2)} years "
        f"({metrics.get('exact_ages', metrics['faces'])} faces with an exact age)",
    ]
    if "age_bin_accuracy" in metrics:
        lines += [
            f"- age in years within the labelled bin: {percent(metrics['age_bin_accuracy'])} "
            f"({span(intervals.get('age_bin_accuracy'))}), "
            f"within one bin: {percent(metrics['age_bin_within_one'])} "
            f"({span(intervals.get('age_bin_within_one'))}; "
            f"{metrics['age_bins_faces']} faces labelled with a bin)",
        ]
    if "gender_gap_between_races" in metrics:
        lines.append(
            f"- gender accuracy, best race minus worst: {metrics['gender_gap_between_races']} "
            "points"
        )
        chance = metrics.get("gender_gap_by_chance")
        if chance:
            lines.append(
                f"  (a model right on every race {percent(chance['pooled_accuracy'])} of the time "
                f"would show {chance['median']} points on these faces, {chance['p95']} at the "
                f"95th percentile; chance alone reaches the gap measured here in "
                f"{percent(chance['chance_of_measured'])} of {chance['draws']:,} draws)"
            )
    return [*lines, ""]


def span(interval: list[float] | None) -> str:
    """A 95% interval of a share, in percent."""
    return "–" if interval is None else f"{interval[0]:.1%} to {interval[1]:.1%}"


def _race_gender_section(metrics: dict) -> list[str]:
    lines = [
        "## By race x gender",
        "",
        "| race | gender | faces | age group | gender | race | age MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    if not metrics["by_race_gender"]:
        lines = ["## By race x gender", "", "No face here has a race label."]
    for row in metrics["by_race_gender"]:
        lines.append(
            f"| {row['race']} | {row['gender']} | {row['faces']} | "
            f"{percent(row['age_group_accuracy'])} | {percent(row['gender_accuracy'])} | "
            f"{percent(row['race_accuracy'])} | {number(row['age_mae_years'])} |"
        )
    by_race = metrics.get("gender_accuracy_by_race", {})
    if by_race:
        lines += ["", "| race | faces | gender | 95% interval |", "|---|---|---|---|"]
        lines += [
            f"| {race} | {row['faces']} | {percent(row['accuracy'])} | {span(row['interval'])} |"
            for race, row in by_race.items()
        ]
    return [*lines, ""]


def _per_class_section(metrics: dict) -> list[str]:
    lines = ["## Per class", ""]
    for head in CLASS_HEADS:
        lines += [f"### {head}", "", "| class | precision | recall | faces |", "|---|---|---|---|"]
        for name, row in metrics["per_class"][head].items():
            lines.append(f"| {name} | {row['precision']} | {row['recall']} | {row['support']} |")
        lines.append("")
    return lines


def _shares_section(metrics: dict) -> list[str]:
    lines = [
        "## Shares of the faces",
        "",
        "Estimated by counting each face's most probable class, or as the mean of the class's",
        "probability; distance: half the sum of the absolute differences from the true shares.",
        "",
    ]
    for head in CLASS_HEADS:
        if not metrics["per_class"][head] or not any(
            row["support"] for row in metrics["per_class"][head].values()
        ):
            continue  # no face here is labelled for this head
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
    return lines
