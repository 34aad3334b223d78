"""A trained network made wider without changing what it computes (Net2WiderNet, Chen et al. 2016),
to train on from where it stands rather than from scratch:

    PYTHONPATH=. .venv/bin/python research/jobs/widen.py --model out/soup-aaf \
        --config research/conf/models/world-wide.yaml --output out/wide-aaf

Every convolution whose filters the recipe (`model.filters`) raises gets the new filters as
copies of old ones (chosen at random), their batch normalisation copied with them; the layer
that reads them (the next convolution, or the first dense layer after the pooling) splits each
old filter's weights among its copies, so the network's outputs are the same (in inference,
up to rounding). The split is not even: copy k of n takes 1/n of the weights plus a share of
noise that sums to nothing over the copies, so that copies learn apart once training starts.

OUT holds `model.keras` and the source's `model.json` with a `widened` entry (the filters
before and after, the seed), ready for `training.initial_model`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sparkface.core.config import load_labels, load_train
from sparkface.core.contract import DESCRIPTOR_FILE, KERAS_FILE
from sparkface.core.package import load_model_file
from sparkface.train.model import make_model


def _mapping(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """For each of `new` channels, the old channel it copies: the old ones first, in order."""
    if new < old:
        raise ValueError(f"cannot narrow a layer from {old} to {new} channels")
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)])


def _split_inputs(
    weights: np.ndarray, mapping: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """A layer's weights over its inputs (axis -2) for inputs that are copies (`mapping`): each
    copy of input i gets weights[..., i, :] / copies(i), plus noise summing to 0 over the copies."""
    counts = np.bincount(mapping, minlength=weights.shape[-2])
    split = np.take(weights, mapping, axis=-2) / counts[mapping][:, None]
    jitter = rng.normal(0.0, 1.0, split.shape) * noise * np.abs(split)
    for old in np.unique(mapping):  # an input with one copy is left without noise
        copies = np.flatnonzero(mapping == old)
        jitter[..., copies, :] -= jitter[..., copies, :].mean(axis=-2, keepdims=True)
    return (split + jitter).astype(weights.dtype)


def widen(source, target, seed: int = 0, noise: float = 0.1) -> dict[str, list[int]]:
    """Set `target`'s weights (the same layers as `source`, convolutions as wide or wider) so
    that it computes what `source` does; return the filters of each widened convolution."""
    rng = np.random.default_rng(seed)
    inputs = None  # the old channel each of the current layer's input channels copies
    widened = {}
    for layer in target.layers:
        if not layer.weights:
            continue
        old = source.get_layer(layer.name).get_weights()
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel = old[0]
            if inputs is not None:
                kernel = _split_inputs(kernel, inputs, noise, rng)
            outputs = _mapping(kernel.shape[-1], layer.filters, rng)
            if layer.filters != old[0].shape[-1]:
                widened[layer.name] = [int(old[0].shape[-1]), int(layer.filters)]
            layer.set_weights([np.take(kernel, outputs, axis=-1), *old[1:]])
            inputs = outputs
        elif kind == "BatchNormalization":
            layer.set_weights([np.take(w, inputs, axis=0) for w in old])
        elif kind == "Dense" and inputs is not None:
            layer.set_weights([_split_inputs(old[0], inputs, noise, rng), old[1]])
            inputs = None  # the dense layers after it keep their widths
        else:
            layer.set_weights(old)
    return widened


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a package with model.keras")
    parser.add_argument("--config", required=True, help="the recipe with the wider filters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)

    config = load_train(args.config)
    source = load_model_file(args.model / KERAS_FILE)
    target = make_model(
        config.model, config.image_size, len(load_labels().groups.names), seed=config.seed
    )
    widened = widen(source, target, args.seed, args.noise)
    faces = np.random.default_rng(1).integers(0, 256, (64, *target.input_shape[1:]), np.uint8)
    before, after = source.predict_on_batch(faces), target.predict_on_batch(faces)
    drift = max(float(np.abs(before[k] - after[k]).max()) for k in before)

    args.output.mkdir(parents=True, exist_ok=True)
    target.save(args.output / KERAS_FILE)
    descriptor = json.loads((args.model / DESCRIPTOR_FILE).read_text())
    descriptor["widened"] = {"from": str(args.model), "layers": widened, "seed": args.seed}
    (args.output / DESCRIPTOR_FILE).write_text(json.dumps(descriptor, indent=2) + "\n")
    print(
        f"{args.output}: {len(widened)} convolutions widened, "
        f"{source.count_params():,} -> {target.count_params():,} weights; "
        f"largest change of an output on 64 random faces: {drift:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
