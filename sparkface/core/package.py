"""The model package: a folder with the Keras model (model.keras) and its JSON descriptor
(model.json); saving it, reading it, carrying it to the executors as a bundle of bytes, and
turning the model's outputs into probabilities and ages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import sparkface
from sparkface.core.contract import AGE_SCALE, DESCRIPTOR_FILE, KERAS_FILE
from sparkface.core.errors import PackageError
from sparkface.core.home import home
from sparkface.core.images import ImageSpec
from sparkface.core.runtime import load_runner, runtime_file, runtime_of


def default_model_dir() -> Path:
    """The shipped model, in the home's models/ folder (`sparkface.core.home`)."""
    return home() / "models" / "sparkface-cnn"


def save_package(model, descriptor: dict[str, Any], directory: str | Path) -> Path:
    """Save the model and its JSON descriptor (with the model file's SHA-256) in `directory`."""
    import keras

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # An uncompiled model over the same layers: the optimizer's state (twice the weights) is no
    # use for scoring. (keras.models.clone_model keeps the compilation, and with it the state.)
    export = keras.Model(model.input, model.output, name=model.name)
    export.save(directory / KERAS_FILE)
    descriptor = {**descriptor, "model_sha256": file_sha256(directory / KERAS_FILE)}
    (directory / DESCRIPTOR_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    return directory


def new_version() -> str:
    """A model package version: the library's version and the UTC time it was made."""
    return f"{sparkface.__version__}+{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"


def read_descriptor(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / DESCRIPTOR_FILE
    if not path.is_file():
        raise PackageError(f"no model descriptor {DESCRIPTOR_FILE} in {directory}")
    return json.loads(path.read_text())


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model_file(path: str | Path):
    import keras

    return keras.saving.load_model(path, compile=False)


@dataclasses.dataclass(frozen=True)
class ModelBundle:
    """What executors need to score: the model file's bytes and its descriptor."""

    model_bytes: bytes
    sha256: str
    descriptor: dict[str, Any]
    folder: str = ""  # where it was read from (its audience calibration lives there too)

    @property
    def image_spec(self) -> ImageSpec:
        return ImageSpec(size=int(self.descriptor["input_size"][0]))

    @property
    def classes(self) -> dict[str, list[str]]:
        return self.descriptor["classes"]

    @property
    def runtime(self) -> str:
        return runtime_of(self.descriptor)


def _scoring_file(directory: Path) -> tuple[dict[str, Any], Path]:
    """A package's descriptor and the file its runtime scores with (model.keras or
    model.tflite), which must exist."""
    descriptor = read_descriptor(directory)
    path = directory / runtime_file(descriptor)
    if not path.is_file():
        raise PackageError(f"no {path.name} in {directory}")
    return descriptor, path


def load_bundle(model_dir: str | Path) -> ModelBundle:
    """Read a model package (model.json and the file its runtime scores with) into bytes the
    executors can receive."""
    descriptor, path = _scoring_file(Path(model_dir))
    return ModelBundle(path.read_bytes(), file_sha256(path), descriptor, str(model_dir))


def load_package_model(model_dir: str | Path, threads: int = 1):
    """The package's model ready to score on the driver, in the runtime its descriptor names."""
    descriptor, path = _scoring_file(Path(model_dir))
    return load_runner(path, runtime_of(descriptor), threads)


# A `flip_test_time` setting, as `predict` takes it: mirror every face (True), none (False), or
# only those whose gender or race answer from the face alone is below this probability (0-1).
Flip = bool | float
UNSURE_HEADS = ("gender", "race")


def flip_in_mode(setting: Flip | dict[str, Flip], mode: str = "aligned") -> Flip:
    """Whether a `flip_test_time` setting scores each face with its mirror image too in `mode`
    (aligned: face crops and the training shards; detect: faces found in images): one choice for
    both modes, or one per mode, {"aligned": false, "detect": true} where the mirror pays only for
    detected faces (a mode it leaves out: true). A number between 0 and 1 mirrors only the faces
    whose least sure gender or race answer falls below it (`predict`)."""
    value = setting.get(mode, True) if isinstance(setting, dict) else setting
    if isinstance(value, float) and 0 < value < 1:
        return value
    return bool(value)


def flip_for(descriptor: dict, mode: str = "aligned") -> Flip:
    """Whether the package scores each face with its mirror image too in `mode`, as its
    descriptor's `flip_test_time` says (absent: true; a number: the unsure faces only)."""
    return flip_in_mode(descriptor.get("flip_test_time", True), mode)


def mirrored(faces: np.ndarray) -> np.ndarray:
    """A batch of (n, s, s, 3) faces, each mirrored left to right."""
    return np.ascontiguousarray(faces[:, :, ::-1, :])


def predict(model, faces: np.ndarray, flip: Flip = True) -> dict[str, np.ndarray]:
    """Probabilities per class head and age in years for a batch of (n, s, s, 3) uint8 faces.

    With `flip`, averages the predictions of each face and its mirror image; with a number
    between 0 and 1, only of the faces whose most probable gender or race has less than that
    probability from the face alone (the others are not looked at twice: the mirror image's
    gain is on the faces the network is unsure of, its cost on every face).
    """
    outputs = model.predict_on_batch(faces)
    result = {name: np.asarray(value, dtype=np.float64) for name, value in outputs.items()}
    if isinstance(flip, bool):
        again = slice(None) if flip else None  # every face: no copy of the batch
    else:
        sure = np.min([result[head].max(axis=1) for head in UNSURE_HEADS], axis=0)
        unsure = np.flatnonzero(sure < flip)
        again = unsure if len(unsure) else None
    if again is not None:
        for name, value in model.predict_on_batch(mirrored(faces[again])).items():
            result[name][again] = (result[name][again] + np.asarray(value, dtype=np.float64)) / 2
    result["age"] = np.clip(result["age"].reshape(-1) * AGE_SCALE, 0.0, None)
    return result
