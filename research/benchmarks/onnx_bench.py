"""ONNX Runtime against TensorFlow Lite for the same network: is there a faster runtime than the
shipped one (TensorFlow Lite, int8 weights) at the same answers?

    pip install -e ".[onnx]"
    python benchmarks/onnx_bench.py --model out/sparkface-cnn-student-keras \
        --shards out/train-detect/shards --split validation

For a Keras package of sparkface's network (`sparkface.train.model.make_model`, without an age
branch) it builds the same network as an ONNX graph, with each batch normalisation folded into
its convolution, and times, side by side on one split of the shards, one thread each, one pass
a face (no mirror image), alternating rounds, best of three:

- `tflite-int8`: TensorFlow Lite with int8 weights, as shipped (`jobs/convert.py`);
- `onnx-float32`: ONNX Runtime, float32;
- `onnx-int8`: ONNX Runtime with int8 weights (per channel) and activations (QDQ), calibrated on
  `--calibration-faces` train faces and their mirror images, as `jobs/convert.py` calibrates.

For each: faces per second, accuracy on the split, the largest difference of a probability from
Keras's, and the share of faces whose class changes, per head.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from sparkface.core.contract import CLASS_HEADS, HEADS  # noqa: E402
from sparkface.core.package import load_model_file, mirrored, read_descriptor  # noqa: E402
from sparkface.core.runtime import TFLiteModel, to_tflite  # noqa: E402
from sparkface.train.ensemble import centre_tap, sees_one_pixel  # noqa: E402
from sparkface.train.shards import ParquetFaces, shard_files  # noqa: E402

BATCH = 128
INPUT = "face"


def onnx_graph(model) -> bytes:
    """The Keras network as an ONNX model (opset 17) taking the same uint8 NHWC faces and giving
    the same outputs by head. A 3x3 convolution whose input is 1x1 becomes 1x1: with "same"
    padding only its centre sees the map."""
    from keras import layers
    from onnx import TensorProto, checker, helper, numpy_helper

    nodes, weights = [], []

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    current = node("Cast", [INPUT], "cast", to=TensorProto.FLOAT)
    current = node("Transpose", [current], "nchw", perm=[0, 3, 1, 2])
    pending = None  # a convolution's kernel and padding, until its batch norm is folded in
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer | layers.Dropout):
            continue
        if isinstance(layer, layers.Rescaling):
            scaled = node("Mul", [current, constant("scale", layer.scale)], layer.name)
            current = node("Add", [scaled, constant("offset", layer.offset)], f"{layer.name}_add")
        elif isinstance(layer, layers.Conv2D):
            if layer.use_bias or layer.padding != "same" or layer.strides != (1, 1):
                raise ValueError(f"{layer.name}: only stride-1 'same' convolutions without bias")
            kernel = layer.get_weights()[0]
            if sees_one_pixel(layer):
                kernel = centre_tap(kernel)
            pending = (layer.name, kernel.transpose(3, 2, 0, 1))  # out, in, height, width
        elif isinstance(layer, layers.BatchNormalization):
            if pending is None:
                raise ValueError(f"{layer.name}: a batch norm that follows no convolution")
            gamma, beta, mean, variance = layer.get_weights()
            scale = gamma / np.sqrt(variance + layer.epsilon)
            name, kernel = pending
            size = kernel.shape[2]
            current = node(
                "Conv",
                [
                    current,
                    constant(f"{name}_kernel", kernel * scale[:, None, None, None]),
                    constant(f"{name}_bias", beta - mean * scale),
                ],
                name,
                kernel_shape=[size, size],
                pads=[size // 2] * 4,
            )
            pending = None
        elif isinstance(layer, layers.LeakyReLU):
            current = node("LeakyRelu", [current], layer.name, alpha=float(layer.negative_slope))
        elif isinstance(layer, layers.ReLU):
            current = node("Relu", [current], layer.name)
        elif isinstance(layer, layers.MaxPooling2D):
            size = list(layer.pool_size)
            current = node("MaxPool", [current], layer.name, kernel_shape=size, strides=size)
        elif isinstance(layer, layers.GlobalAveragePooling2D):
            pooled = node("GlobalAveragePool", [current], layer.name)
            current = node("Flatten", [pooled], f"{layer.name}_flat")
        elif isinstance(layer, layers.Dense) and layer.name not in HEADS:
            if not layer.name.startswith("dense"):
                raise ValueError(f"{layer.name}: only the shared dense layers (no age branch)")
            kernel, bias = layer.get_weights()
            inputs = [current, constant(f"{layer.name}_kernel", kernel)]
            current = node("Gemm", [*inputs, constant(f"{layer.name}_bias", bias)], layer.name)
        elif not (isinstance(layer, layers.Dense) and layer.name in HEADS):
            raise ValueError(f"{layer.name}: a {type(layer).__name__} layer is not converted")
    outputs = []
    for head in HEADS:
        kernel, bias = model.get_layer(head).get_weights()
        inputs = [current, constant(f"{head}_kernel", kernel), constant(f"{head}_bias", bias)]
        if head in CLASS_HEADS:
            node("Softmax", [node("Gemm", inputs, f"{head}_logits")], head, axis=1)
        else:
            node("Gemm", inputs, head)
        outputs.append(helper.make_tensor_value_info(head, TensorProto.FLOAT, ["faces", None]))
    size = model.input_shape[1]
    face = helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["faces", size, size, 3])
    graph = helper.make_graph(nodes, model.name, [face], outputs, weights)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


class OnnxModel:
    """An ONNX Runtime session that answers `predict_on_batch` as the other runtimes do."""

    def __init__(self, content: bytes, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            content, options, providers=["CPUExecutionProvider"]
        )
        self.names = [output.name for output in self.session.get_outputs()]

    def predict_on_batch(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        answers = self.session.run(None, {INPUT: np.ascontiguousarray(faces, dtype=np.uint8)})
        return dict(zip(self.names, answers, strict=True))


def onnx_int8(content: bytes, calibration: np.ndarray) -> bytes:
    """The ONNX model with int8 weights (per channel) and uint8 activations (QDQ), calibrated on
    `calibration` faces."""
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                [{INPUT: calibration[i : i + 64]} for i in range(0, len(calibration), 64)]
            )

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "float32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(content)
        quantize_static(
            str(source),
            str(target),
            Faces(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return target.read_bytes()


def read_split(shards: Path, split: str, size: int, limit: int | None = None):
    """(faces, labels by class head) of one split, at most `limit` faces."""
    faces, labels = [], {head: [] for head in CLASS_HEADS}
    for pixels, targets, *_ in ParquetFaces(shard_files(shards, split), size, 256):
        faces.append(pixels)
        for head in CLASS_HEADS:
            labels[head].append(np.asarray(targets[head]).reshape(-1))
    count = limit or None
    return np.concatenate(faces)[:count], {h: np.concatenate(v)[:count] for h, v in labels.items()}


def answers(runner, faces: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Every face's outputs, one pass a face, and the seconds it took."""
    start = time.perf_counter()
    parts = [runner.predict_on_batch(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)]
    seconds = time.perf_counter() - start
    return {head: np.concatenate([np.asarray(p[head]) for p in parts]) for head in HEADS}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a Keras package of sparkface's network")
    parser.add_argument("--shards", required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--calibration-faces", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        parser.error('needs onnx and onnxruntime: pip install -e ".[onnx]"')
    from sparkface.score.transform import _set_threads

    _set_threads(1, "keras")
    size = int(read_descriptor(args.model)["input_size"][0])
    model = load_model_file(Path(args.model) / "model.keras")
    faces, labels = read_split(Path(args.shards), args.split, size)
    train, _ = read_split(Path(args.shards), "train", size, args.calibration_faces)
    calibration = np.concatenate([train, mirrored(train)])
    graph = onnx_graph(model)
    runners = {
        "tflite-int8": TFLiteModel(to_tflite(model, "int8"), threads=1),
        "onnx-float32": OnnxModel(graph),
        "onnx-int8": OnnxModel(onnx_int8(graph, calibration)),
    }
    keras_answers = {k: np.asarray(v) for k, v in model.predict_on_batch(faces).items()}
    rates = {name: 0.0 for name in runners}
    results = {}
    for _ in range(args.rounds):
        for name, runner in runners.items():
            results[name], seconds = answers(runner, faces)
            rates[name] = max(rates[name], len(faces) / seconds)
    print(f"{len(faces)} faces of the {args.split} split, one thread, one pass a face, "
          f"best of {args.rounds} alternating rounds")  # fmt: skip
    print("| runtime | faces/s | gender | race | age group | max prob. difference from Keras "
          "| class changed: gender / race / age group |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, predicted in results.items():
        accuracy = [100 * np.mean(predicted[h].argmax(1) == labels[h]) for h in CLASS_HEADS]
        difference = max(np.abs(predicted[h] - keras_answers[h]).max() for h in CLASS_HEADS)
        changed = [
            100 * np.mean(predicted[h].argmax(1) != keras_answers[h].argmax(1))
            for h in ("gender", "race", "age_group")
        ]
        by_head = dict(zip(CLASS_HEADS, accuracy, strict=True))
        print(
            f"| {name} | {rates[name]:,.1f} | {by_head['gender']:.1f} | {by_head['race']:.1f} | "
            f"{by_head['age_group']:.1f} | {difference:.2e} | "
            + " / ".join(f"{c:.2f}%" for c in changed)
            + " |"
        )


if __name__ == "__main__":
    main()
