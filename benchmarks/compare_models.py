"""A Markdown table of test-split metrics from training runs (each OUT of `jobs/train.py`).

python benchmarks/compare_models.py NAME=OUT [NAME=OUT ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = [
    ("gender", "gender_accuracy", "{:.1%}"),
    ("race", "race_accuracy", "{:.1%}"),
    ("age group", "age_group_accuracy", "{:.1%}"),
    ("within one group", "age_group_within_one", "{:.1%}"),
    ("age MAE (years)", "age_mae_years", "{:.2f}"),
]


def main(arguments: list[str]) -> None:
    print("| model | test faces | " + " | ".join(c[0] for c in COLUMNS) + " | epochs | s/epoch |")
    print("|---" * (len(COLUMNS) + 4) + "|")
    for argument in arguments:
        name, _, folder = argument.partition("=")
        summary = json.loads((Path(folder) / "summary.json").read_text())
        metrics, training = summary["metrics"], summary["training"]
        cells = [pattern.format(metrics[key]) for _, key, pattern in COLUMNS]
        print(
            f"| {name} | {metrics['faces']} | "
            + " | ".join(cells)
            + f" | {training['epochs_run']} | {training['seconds_per_epoch']:.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
