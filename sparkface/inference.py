"""Running the model: the shipped package on disk, and batched predictions from uint8 faces."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sparkface.model import AGE_SCALE

log = logging.getLogger("sparkface")

MODEL_FILE = "model.keras"
DESCRIPTOR_FILE = "model.json"


def default_model_dir() -> Path:
    """The model shipped in the repository's models/ folder."""
    return Path(__file__).resolve().parent.parent / "models" / "sparkface-cnn"


def save_package(model, descriptor: dict[str, Any], directory: str | Path) -> Path:
    """Save the model and its JSON descriptor (with the model file's SHA-256) in `directory`."""
    import keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An uncompiled model over the same layers: the optimizer's state (twice the weights) is no
    # use for scoring. (keras.models.clone_model keeps the compilation, and with it the state.)
    export = keras.Model(model.input, model.output, name=model.name)
    export.save(directory / MODEL_FILE)
    descriptor = {**descriptor, "model_sha256": file_sha256(directory / MODEL_FILE)}
    (directory / DESCRIPTOR_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    return directory


def new_version() -> str:
    """A model package version: the library's version and the UTC time it was made."""
    import time

    import sparkface

    return f"{sparkface.__version__}+{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"


def read_descriptor(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / DESCRIPTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no model descriptor {DESCRIPTOR_FILE} in {directory}")
    return json.loads(path.read_text())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model_file(path: str | Path):
    import keras

    return keras.saving.load_model(path, compile=False)


def predict(model, faces: np.ndarray, flip: bool = True) -> dict[str, np.ndarray]:
    """Probabilities per class head and age in years for a batch of (n, s, s, 3) uint8 faces.

    With `flip`, averages the predictions of each face and its mirror image.
    """
    outputs = model.predict_on_batch(faces)
    result = {name: np.asarray(value, dtype=np.float64) for name, value in outputs.items()}
    if flip:
        mirrored = model.predict_on_batch(np.ascontiguousarray(faces[:, :, ::-1, :]))
        for name, value in mirrored.items():
            result[name] = (result[name] + np.asarray(value, dtype=np.float64)) / 2.0
    result["age"] = np.clip(result["age"].reshape(-1) * AGE_SCALE, 0.0, None)
    return result
