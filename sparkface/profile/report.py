"""Writing a profile: summary.json, Parquet tables, PNG charts and report.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from sparkface.core.contract import GENDERS, RACES
from sparkface.profile.stats import Profile

log = logging.getLogger("sparkface")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)


def write_charts(result: Profile, out: Path) -> list[str]:
    """Bars of race x gender and of age groups; age histograms overall, by gender, by race."""
    plt = _pyplot()
    written = []

    table = result.by("race", "gender").pivot(index="race", columns="gender", values="count")
    table = table.reindex(index=list(RACES), columns=list(GENDERS))
    figure, axes = plt.subplots(figsize=(7, 4))
    table.plot.bar(ax=axes, rot=0)
    axes.set_title("Faces by race and gender")
    axes.set_ylabel("faces")
    _save(figure, out / "race_gender.png")
    written.append("race_gender.png")

    histogram = result.age_histogram()
    figure, axes = plt.subplots(figsize=(9, 4))
    axes.bar(histogram["age"], histogram["count"], width=1.0)
    axes.axvline(result.groups.min_age - 0.5, color="red", linestyle="--", label="first age group")
    axes.set_title("Age distribution (years)")
    axes.set_xlabel("age")
    axes.set_ylabel("faces")
    axes.legend()
    _save(figure, out / "age_histogram.png")
    written.append("age_histogram.png")

    for column, classes in (("gender", GENDERS), ("race", RACES)):
        figure, axes = plt.subplots(figsize=(9, 4))
        for name in classes:
            part = result.counts[result.counts[column] == name].groupby("age")["count"].sum()
            part = part.reindex(histogram["age"], fill_value=0)
            axes.step(part.index, part.values, where="mid", label=name)
        axes.set_title(f"Age distribution by {column}")
        axes.set_xlabel("age")
        axes.set_ylabel("faces")
        axes.legend()
        _save(figure, out / f"age_histogram_by_{column}.png")
        written.append(f"age_histogram_by_{column}.png")

    groups = result.by("age_group")
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(groups["age_group"], groups["count"])
    axes.set_title("Faces by age group")
    axes.set_ylabel("faces")
    _save(figure, out / "age_groups.png")
    written.append("age_groups.png")
    return written


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_report(result: Profile, out: Path, input_dir: str, charts: list[str]) -> None:
    """report.md: the headline counts, the charts, and the smallest race x gender x age cells."""
    summary = result.summary()
    race_gender = result.by("race", "gender").pivot(index="race", columns="gender", values="count")
    race_gender = race_gender.reindex(index=list(RACES), columns=list(GENDERS)).reset_index()
    lines = [
        f"# Profile of `{input_dir}`",
        "",
        f"- image files: **{result.files}** (other files ignored: {result.ignored_files}; "
        f"hidden files or folders left out: {result.hidden})",
        f"- labelled: **{result.labelled}**, unlabelled: **{result.unlabelled}**",
        f"- under {result.groups.min_age} (below the first age group): {summary['under_min_age']}",
    ]
    if result.without_image is not None:
        lines.append(
            f"- files the labels table names that are no image here: {result.without_image}"
        )
    if result.unreadable is not None:
        lines.append(f"- unreadable (failed to decode): {result.unreadable}")
    lines += ["", "## Race x gender", "", _markdown_table(race_gender), ""]
    lines += ["## Age groups", "", _markdown_table(result.by("age_group")), ""]
    lines += [
        "## Smallest race x gender x age-group cells",
        "",
        "These are the cells a balanced training set runs short of first.",
        "",
        _markdown_table(result.smallest_cells()),
        "",
        "## Charts",
        "",
    ]
    lines += [f"![{name}]({name})" for name in charts]
    if result.unlabelled:
        lines += [
            "",
            "## Unlabelled files",
            "",
            _markdown_table(result.unlabelled_examples.head(50)[["file_name", "label_error"]]),
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_profile(result: Profile, out: Path, input_dir: str) -> None:
    """Everything the profile job leaves in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    summary["input"] = input_dir
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tables = out / "tables"
    tables.mkdir(exist_ok=True)
    for name, frame in result.tables().items():
        frame.to_parquet(tables / f"{name}.parquet", index=False)
    result.unlabelled_examples.to_parquet(tables / "unlabelled.parquet", index=False)
    if result.unreadable_examples is not None:
        result.unreadable_examples.to_parquet(tables / "unreadable.parquet", index=False)
    charts = write_charts(result, out)
    write_report(result, out, input_dir, charts)
