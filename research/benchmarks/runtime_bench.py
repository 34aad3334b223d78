"""Inference runtimes for the same network, side by side in one process on one core (as a Spark
task scores), on one split of training shards:

- `keras`: Keras on TensorFlow, `predict_on_batch`, as scoring runs it today;
- `keras-xla`: the same model compiled with `jit_compile=True` (XLA);
- `keras-bf16`: the same weights in a copy whose layers compute in bfloat16 (`mixed_bfloat16`);
- `tflite`: the model converted to TensorFlow Lite (float32, XNNPACK), one thread;
- `tflite-int8`: the same with its weights quantized to int8 (dynamic range quantization), on
  LiteRT (`ai_edge_litert`), as scoring runs a converted package;
- `tflite-int8-tf`: the same flat buffer on TensorFlow's own `tf.lite.Interpreter`, which
  TensorFlow deprecates in favour of LiteRT.

For each model and runtime: faces per second (mirror averaging on or off), the headline metrics
on the split, and how far its probabilities and ages lie from Keras float32's (the largest
difference, and the share of faces whose predicted class differs; with `--runtime`, from the
first runtime named's instead):

    python benchmarks/runtime_bench.py --shards out/train-detect/shards --split validation \\
        --model student=out/sparkface-cnn-student-keras --runtime tflite-int8 \\
        --runtime tflite-int8-tf

    python benchmarks/runtime_bench.py --shards out/train-detect/shards --split test \\
        --model ensemble=out/sparkface-cnn-keras --model student=out/sparkface-cnn-student-keras
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from sparkface.core.contract import AGE_SCALE, CLASS_HEADS  # noqa: E402
from sparkface.core.package import load_model_file, predict, read_descriptor  # noqa: E402
from sparkface.core.runtime import TFLiteModel, runtime_of, to_tflite  # noqa: E402
from sparkface.evaluate.metrics import compute_metrics  # noqa: E402
from sparkface.score.transform import _set_threads  # noqa: E402
from sparkface.train.shards import ParquetFaces, shard_files  # noqa: E402

BATCH = 128
RUNTIMES = ("keras", "keras-xla", "keras-bf16", "tflite", "tflite-int8", "tflite-int8-tf")


def bfloat16_copy(model):
    """The model rebuilt with every layer computing in bfloat16 (weights kept in float32)."""
    import keras

    copy = keras.models.clone_model(
        model,
        clone_function=lambda layer: layer.__class__.from_config(
            {**layer.get_config(), "dtype": "mixed_bfloat16"}
        ),
    )
    copy.set_weights(model.get_weights())
    return copy


def on_tensorflow(content: bytes) -> TFLiteModel:
    """A converted model run by TensorFlow's `tf.lite.Interpreter` instead of LiteRT's."""
    import tensorflow as tf

    runner = TFLiteModel(content)
    runner.runner = tf.lite.Interpreter(model_content=content, num_threads=1).get_signature_runner()
    return runner


def runtimes(model, only: list[str] | None) -> dict:
    import keras

    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    plain.compile(jit_compile=False)
    xla = keras.models.clone_model(model)
    xla.set_weights(model.get_weights())
    xla.compile(jit_compile=True)
    bf16 = bfloat16_copy(model)
    bf16.compile(jit_compile=False)
    int8 = to_tflite(model, "int8")
    made = {
        "keras": plain,
        "keras-xla": xla,
        "keras-bf16": bf16,
        "tflite": TFLiteModel(to_tflite(model, "float32")),
        "tflite-int8": TFLiteModel(int8),
        "tflite-int8-tf": on_tensorflow(int8),
    }
    return {name: made[name] for name in only or RUNTIMES}


def load_split(shards: Path, split: str, size: int, limit: int):
    stream = ParquetFaces(shard_files(shards, split), size, BATCH)
    faces, labels = [], {}
    for batch, targets in stream:
        faces.append(batch)
        for name, value in targets.items():
            labels.setdefault(name, []).append(np.asarray(value).reshape(len(batch), -1)[:, 0])
    pixels = np.concatenate(faces)[:limit]
    truth = {name: np.concatenate(value)[:limit] for name, value in labels.items()}
    truth["age"] = np.rint(truth["age"] * AGE_SCALE).astype(int)
    return pixels, truth


def run(runner, pixels: np.ndarray, flip: bool) -> tuple[dict, float]:
    predict(runner, pixels[:BATCH], flip)  # warm: tracing, compilation, allocation
    parts: dict[str, list] = {}
    start = time.perf_counter()
    for begin in range(0, len(pixels), BATCH):
        for name, value in predict(runner, pixels[begin : begin + BATCH], flip).items():
            parts.setdefault(name, []).append(value)
    rate = len(pixels) / (time.perf_counter() - start)
    return {name: np.concatenate(value) for name, value in parts.items()}, rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", required=True, help="NAME=PACKAGE_DIR")
    parser.add_argument("--faces", type=int, default=100_000, help="at most this many")
    parser.add_argument(
        "--runtime",
        action="append",
        choices=RUNTIMES,
        default=None,
        help="only these runtimes, in this order",
    )
    args = parser.parse_args()
    packages = dict(item.split("=", 1) for item in args.model)
    for folder in packages.values():
        if (runtime := runtime_of(read_descriptor(folder))) != "keras":
            parser.error(
                f"{folder} is a {runtime} package: this benchmark converts a Keras package itself "
                "(the shipped student's Keras network: make student-keras-model, then "
                "--model student=out/sparkface-cnn-student-keras)"
            )
    _set_threads(1, "keras")
    header = (
        f"{'model':>10} {'runtime':>11} {'flip':>5} {'faces/s':>8} {'gender':>7} {'race':>6} "
        f"{'age grp':>8} {'MAE':>5} {'max |dp|':>9} {'max |dage|':>10} {'class changed':>13}"
    )
    print(header)
    for name, folder in packages.items():
        descriptor = read_descriptor(folder)
        model = load_model_file(Path(folder) / "model.keras")
        size = int(descriptor["input_size"][0])
        pixels, truth = load_split(Path(args.shards), args.split, size, args.faces)
        groups = tuple(descriptor["classes"]["age_group"])
        reference = {}
        for runtime, runner in runtimes(model, args.runtime).items():
            for flip in (True, False):
                predictions, rate = run(runner, pixels, flip)
                metrics = compute_metrics(predictions, truth, groups)
                base = reference.setdefault(flip, predictions)
                dp = max(float(np.abs(predictions[h] - base[h]).max()) for h in CLASS_HEADS)
                dage = float(np.abs(predictions["age"] - base["age"]).max())
                changed = np.mean(
                    np.any([predictions[h].argmax(1) != base[h].argmax(1) for h in CLASS_HEADS], 0)
                )
                print(
                    f"{name:>10} {runtime:>11} {'yes' if flip else 'no':>5} {rate:8.1f} "
                    f"{metrics['gender_accuracy']:7.1%} {metrics['race_accuracy']:6.1%} "
                    f"{metrics['age_group_accuracy']:8.1%} {metrics['age_mae_years']:5.2f} "
                    f"{dp:9.2e} {dage:10.3f} {changed:13.2%}",
                    flush=True,
                )
    print(f"{len(pixels)} faces of the {args.split} split, batches of {BATCH}, one thread")


if __name__ == "__main__":
    main()
