"""The model's known errors, shipped in its package: `audience.json`, per head the labelled
faces' true classes and the probabilities the model gave them (no images, no paths), measured by
the evaluation (`jobs/calibrate.py`) on validation splits. Audience shares are corrected with it
(`sparkface.audience.shares`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sparkface.audience.likeness import SourceClassifier
from sparkface.audience.shares import HeadCalibration

CALIBRATION_FILE = "audience.json"


def calibration_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / CALIBRATION_FILE


def load_calibration(model_dir: str | Path) -> dict[str, HeadCalibration] | None:
    """The package's calibration per head, or None when it has none (shares are then the
    averaged probabilities, marked uncorrected)."""
    path = calibration_path(model_dir)
    if "://" in str(model_dir) or not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {head: HeadCalibration.from_json(part) for head, part in data["heads"].items()}


def load_likeness(model_dir: str | Path) -> SourceClassifier | None:
    """The package's classifier of which labelled source a face is like, or None."""
    path = calibration_path(model_dir)
    if "://" in str(model_dir) or not path.is_file():
        return None
    data = json.loads(path.read_text()).get("likeness")
    return SourceClassifier.from_json(data) if data else None


def write_calibration(
    model_dir: str | Path,
    heads: dict[str, HeadCalibration],
    measured_on: list[dict[str, Any]],
    likeness: SourceClassifier | None = None,
) -> Path:
    """Write `audience.json` into the package (written aside, then renamed into place)."""
    path = calibration_path(model_dir)
    record = {
        "what": "per head, labelled faces' true classes and the model's probabilities: the "
        "soft confusion matrix audience shares are corrected with; and which labelled source "
        "a face is like, from its probabilities",
        "measured_on": measured_on,
        "heads": {head: calibration.to_json() for head, calibration in heads.items()},
    }
    if likeness is not None:
        record["likeness"] = likeness.to_json()
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    os.replace(temporary, path)
    return path
