"""A model package's Keras network rebuilt from its TensorFlow Lite file, to train it further.

The shipped package holds only `model.tflite` (int8 weights, float activations): the Keras file it
was converted from is not kept. The converter folded each batch normalisation into the convolution
before it (a kernel and a bias) and quantized the larger kernels per output channel; this puts the
dequantized weights back into the recipe's network. Each batch normalisation becomes the identity
plus the folded bias, written with the statistics its convolution's outputs have on `--shards`'
train faces (moving mean m and variance v, scale sqrt(v + eps), offset m + bias): the same answers
in inference, and in training a batch normalises much as the original network's did.

    PYTHONPATH=. .venv/bin/python research/jobs/from_tflite.py --package models/sparkface-cnn \
        --config conf/models/sparkface-cnn-world-light.yaml \
        --shards out/train-world-more/shards --output out/train-world-light/model

OUT holds `model.keras` and the package's `model.json` as a Keras package (`runtime` keras, the
SHA-256 of the new file, a `recovered_from` entry); the script prints how far the rebuilt
network's answers lie from the TensorFlow Lite file's on 512 validation faces (about as far as the
Keras network's lay from it when it was converted: the int8 kernels quantize activations too).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from sparkface.core.config import load_labels, load_train
from sparkface.core.contract import DESCRIPTOR_FILE
from sparkface.core.package import file_sha256, save_package
from sparkface.train.convert import agreement
from sparkface.train.fit import streams
from sparkface.train.model import make_model


def tflite_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every constant tensor of the flat buffer by name, int8 ones dequantized per channel."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {}
    for detail in interpreter.get_tensor_details():
        if not len(detail["shape"]):
            continue
        try:
            value = interpreter.get_tensor(detail["index"])
        except ValueError:
            continue
        quantization = detail["quantization_parameters"]
        if value.dtype == np.int8 and len(quantization["scales"]):
            axis = quantization["quantized_dimension"]
            shape = [1] * value.ndim
            shape[axis] = -1
            scales = quantization["scales"].reshape(shape)
            zeros = quantization["zero_points"].reshape(shape)
            value = (value.astype(np.float32) - zeros) * scales
        tensors[detail["name"]] = value.astype(np.float32)
    return tensors


def find(tensors: dict[str, np.ndarray], part: str, shape: tuple[int, ...]) -> np.ndarray:
    """The one tensor of `shape` with `part` among the names its name joins with ';' (the
    converter names a fused tensor after every operation in it)."""
    found = [
        value
        for name, value in tensors.items()
        if part in name.split(";") and value.shape == tuple(shape)
    ]
    if len(found) != 1:
        raise ValueError(f"{len(found)} tensors of shape {shape} named {part!r}")
    return found[0]


def rebuild(model, tensors: dict[str, np.ndarray]) -> None:
    """Put the flat buffer's weights into `model` (the recipe's network, freshly built), each
    batch normalisation as the identity plus the folded bias (statistics 0 and 1)."""
    import keras

    root = "sparkface_cnn_1/"
    for layer in model.layers:
        name = layer.name
        if isinstance(layer, keras.layers.Conv2D):
            height, width, inputs, outputs = layer.kernel.shape
            kernel = find(tensors, f"{root}{name}_1/convolution", (outputs, height, width, inputs))
            if name == "conv0_0":  # the converter folded the network's 1/255 into it
                kernel = kernel * 255.0
            layer.set_weights([np.transpose(kernel, (1, 2, 3, 0))])
        elif isinstance(layer, keras.layers.BatchNormalization):
            bias = find(tensors, f"{root}{name}_1/batchnorm/add_1", (layer.gamma.shape[0],))
            epsilon = layer.epsilon
            ones = np.ones_like(bias)
            layer.set_weights([ones * np.sqrt(1 + epsilon), bias, 0 * ones, ones])
        elif isinstance(layer, keras.layers.Dense):
            inputs, outputs = layer.kernel.shape
            kernel = find(tensors, f"{root}{name}_1/MatMul", (outputs, inputs))
            bias = f"{root}{name}_1/Add" if name == "age" else f"{root}{name}_1/BiasAdd"
            layer.set_weights([kernel.T, find(tensors, bias, (outputs,))])


def convolution_statistics(model, faces: list[np.ndarray]) -> dict[str, tuple]:
    """Each convolution's output mean and variance per channel over `faces` (inference mode)."""
    import keras

    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.input, [layer.output for layer in convolutions])
    sums = {}
    for batch in faces:
        outputs = probe.predict_on_batch(batch)
        for layer, out in zip(convolutions, outputs, strict=True):
            out = np.asarray(out, dtype=np.float64).reshape(-1, out.shape[-1])
            total = sums.setdefault(layer.name, [0, 0.0, 0.0])
            total[0] += len(out)
            total[1] += out.sum(axis=0)
            total[2] += (out**2).sum(axis=0)
    statistics = {}
    for name, (count, first, second) in sums.items():
        mean = first / count
        statistics[name] = (mean, np.maximum(second / count - mean**2, 1e-6))
    return statistics


def reparametrize(model, statistics: dict[str, tuple]) -> None:
    """Each batch normalisation (identity plus bias b) written with its input's statistics m, v:
    scale sqrt(v + eps), offset m + b, moving mean m, moving variance v (the same function)."""
    import keras

    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        mean, variance = statistics[layer.name.replace("bn", "conv")]
        bias = layer.get_weights()[1]
        scale = np.sqrt(variance + layer.epsilon)
        layer.set_weights([a.astype(np.float32) for a in (scale, mean + bias, mean, variance)])


def agreement_with_tflite(model, tflite_path: Path, faces: np.ndarray) -> dict:
    """How far the rebuilt network's answers lie from the flat buffer's (as conversion reports
    the converted model's from Keras's)."""
    from sparkface.core.runtime import TFLiteModel

    converted = TFLiteModel(tflite_path.read_bytes())
    ours = {head: np.asarray(v) for head, v in model.predict_on_batch(faces).items()}
    theirs = {head: np.asarray(v) for head, v in converted.predict_on_batch(faces).items()}
    return agreement(theirs, ours)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=Path("models/sparkface-cnn"))
    parser.add_argument("--config", required=True, help="the recipe the package was trained with")
    parser.add_argument("--shards", type=Path, required=True)
    parser.add_argument("--norm-batches", type=int, default=100)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    descriptor = json.loads((args.package / DESCRIPTOR_FILE).read_text())
    config = load_train(args.config)
    n_groups = len(load_labels().groups.names)
    model = make_model(config.model, config.image_size, n_groups, seed=config.seed)
    rebuild(model, tflite_tensors(args.package / "model.tflite"))
    train_stream, validation_stream = streams(args.shards, config, n_groups)
    faces = [
        np.asarray(batch[0]) for batch in itertools.islice(iter(train_stream), args.norm_batches)
    ]
    reparametrize(model, convolution_statistics(model, faces))
    check = np.concatenate(
        [np.asarray(batch[0]) for batch in itertools.islice(iter(validation_stream), 8)]
    )
    difference = agreement_with_tflite(model, args.package / "model.tflite", check)

    recovered = {
        "package": str(args.package),
        "version": descriptor["version"],
        "tflite_sha256": file_sha256(args.package / "model.tflite"),
        "norm_batches": len(faces),
        "agreement_on_validation": difference,
        "validation_faces": len(check),
    }
    descriptor = {**descriptor, "runtime": "keras", "recovered_from": recovered}
    descriptor.pop("conversion", None)
    save_package(model, descriptor, args.output)
    print(f"{args.output}: rebuilt from {args.package}; against it: {difference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
