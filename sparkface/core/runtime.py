"""The runtimes a model package can score with: Keras (the `.keras` file, on whatever backend is
installed) or TensorFlow Lite (a `.tflite` file converted from it, weights optionally quantized
to int8, and activations too, calibrated on training faces). Both answer
`predict_on_batch(faces)` with a dict of outputs by head, so scoring and evaluation do not care
which one runs.

On these processors the int8 weights run on XNNPACK's integer kernels: a network converted with
them scored several times more faces a second on one core than in Keras, with the same answers
to within rounding (benchmarks/runtime_bench.py, models/README.md).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sparkface.core.contract import HEADS, RUNTIME_FILES
from sparkface.core.errors import MissingFramework, PackageError

WEIGHTS = ("float32", "int8")
ACTIVATIONS = ("float32", "int8")
CALIBRATION_BATCH = 8


def runtime_of(descriptor: dict) -> str:
    """The runtime a package's descriptor names; packages from before runtimes are Keras."""
    return descriptor.get("runtime", "keras")


def runtime_file(descriptor: dict) -> str:
    """The file a package scores with, for the runtime its descriptor names."""
    runtime = runtime_of(descriptor)
    if runtime not in RUNTIME_FILES:
        raise PackageError(
            f"the package needs runtime {runtime!r}; this sparkface knows {sorted(RUNTIME_FILES)}"
        )
    return RUNTIME_FILES[runtime]


def to_tflite(
    model,
    weights: str = "int8",
    activations: str = "float32",
    calibration: Iterable[np.ndarray] = (),
) -> bytes:
    """The Keras model as a TensorFlow Lite flat buffer with the same input (uint8 faces) and
    outputs. With `weights` int8, its weights are quantized; with `activations` int8 too, every
    layer's inputs and outputs are, their ranges measured on the `calibration` faces (batches of
    uint8 faces as scoring sees them: training faces and their mirror images)."""
    import tensorflow as tf

    if weights not in WEIGHTS:
        raise ValueError(f"weights {weights!r}: one of {WEIGHTS}")
    if activations not in ACTIVATIONS:
        raise ValueError(f"activations {activations!r}: one of {ACTIVATIONS}")
    if activations == "int8" and weights != "int8":
        raise ValueError("int8 activations need int8 weights")
    batches = [np.ascontiguousarray(batch, dtype=np.uint8) for batch in calibration]
    if activations == "int8" and not batches:
        raise ValueError("int8 activations need calibration faces")

    def representative():
        for batch in batches:
            for start in range(0, len(batch), CALIBRATION_BATCH):
                yield [batch[start : start + CALIBRATION_BATCH]]

    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if weights == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if activations == "int8":
            converter.representative_dataset = representative
        return converter.convert()


class TFLiteModel:
    """A converted model, answering `predict_on_batch` as a Keras model does (a dict by head).
    Its signature runner resizes the input to each batch; not for concurrent threads.

    It runs on LiteRT (`ai_edge_litert`), TensorFlow Lite's interpreter packaged on its own: the
    same kernels and the same answers as `tf.lite.Interpreter`, which TensorFlow deprecates, and
    a process that scores with it never imports TensorFlow (a second of start-up, not several,
    and a fraction of the memory)."""

    def __init__(self, content: bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=content, num_threads=threads)
        self.runner = interpreter.get_signature_runner()
        inputs = self.runner.get_input_details()
        if len(inputs) != 1:
            raise PackageError(f"a face model has one input; this .tflite has {len(inputs)}")
        ((self.input_name, details),) = inputs.items()
        self.dtype = details["dtype"]
        missing = [head for head in HEADS if head not in self.runner.get_output_details()]
        if missing:
            raise PackageError(f"the .tflite model has no output {missing[0]!r}")

    def predict_on_batch(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.runner(**{self.input_name: np.ascontiguousarray(faces, dtype=self.dtype)})
        return {head: outputs[head] for head in HEADS}


def require_keras(work: str) -> None:
    """Raise MissingFramework, naming `work`, where this Python cannot import Keras: a plain
    install of sparkface scores TensorFlow Lite packages on LiteRT and leaves Keras and
    TensorFlow to the `keras` extra."""
    try:
        found = importlib.util.find_spec("keras") is not None
    except ImportError:  # an import hook that refuses the name outright
        found = False
    if not found:
        raise MissingFramework(
            f"{work} needs Keras and TensorFlow, which a plain install of sparkface leaves out "
            "(the shipped TensorFlow Lite package scores without them): "
            "pip install 'sparkface[keras]'"
        )


def load_runner(path: str | Path, runtime: str, threads: int = 1):
    """The model in `path` ready to score, in `runtime` (keras or tflite)."""
    if runtime == "tflite":
        return TFLiteModel(Path(path).read_bytes(), threads)
    require_keras("a Keras package")
    import keras

    return keras.saving.load_model(path, compile=False)
