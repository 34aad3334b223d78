"""A recipe's network, untrained, as a model package: what it costs to score a face can be
measured (`benchmarks/score_bench.py --model NEW --against OLD`, after `jobs/convert.py`) before
any hour is spent training it, since the cost does not depend on the weights:

    PYTHONPATH=. .venv/bin/python research/jobs/untrained.py \\
        --config research/conf/models/world-early-wide.yaml --like out/train-world-64c/model \\
        --output out/untrained-early-wide

OUT holds `model.keras` (fresh weights, the recipe's seed) and the `--like` package's
`model.json` (the classes, input and preprocessing it scores with) marked `untrained`, with the
network's weights and multiply-adds a face.

With `--weights FILE` (a run's `training/best.weights.h5`: its best epoch, which a run stopped
by its time limit on a GPU machine brings back instead of a package, `scripts/gpu/train.sh`) the
network holds those weights, and the descriptor says so (`checkpoint` rather than `untrained`):
a package to convert and evaluate as any other, knowing it is an epoch, not a finished run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparkface.core.config import load_labels, load_train
from sparkface.core.contract import DESCRIPTOR_FILE
from sparkface.core.package import save_package
from sparkface.train.model import make_model


def multiply_adds(model) -> int:
    """The multiply-adds of one face through the network's convolutions and dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):
            _, height, width, channels = layer.output.shape
            rows, columns, inputs, _ = layer.depthwise_kernel.shape
            total += height * width * inputs * (rows * columns + channels)  # then 1 x 1
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output.shape
            rows, columns, inputs, _ = layer.kernel.shape
            total += height * width * channels * rows * columns * inputs
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a training recipe")
    parser.add_argument("--like", required=True, help="a package whose descriptor to take")
    parser.add_argument("--output", required=True)
    parser.add_argument("--weights", help="a run's best.weights.h5 to put in the network")
    args = parser.parse_args()
    config = load_train(args.config)
    groups = load_labels().groups
    model = make_model(config.model, config.image_size, len(groups.names), seed=config.seed)
    descriptor = json.loads((Path(args.like) / DESCRIPTOR_FILE).read_text())
    descriptor.pop("model_sha256", None)
    network = {
        "config": args.config,
        "weights": int(model.count_params()),
        "multiply_adds": multiply_adds(model),
    }
    if args.weights:
        model.load_weights(args.weights)
        descriptor["checkpoint"] = {**network, "weights_file": args.weights}
    else:
        descriptor["untrained"] = network
    save_package(model, descriptor, args.output)
    print(f"{args.output}: {network}")


if __name__ == "__main__":
    main()
