"""Would a head for FairFace's age bins beat binning the years (issue 33)?

FairFace labels ages with 10-year bins, and the product's figure for them is whether the age in
years falls in the labelled bin. A network that regresses years pulls them towards the middle
(teenagers called 22 on average: `per_face.py`). This probe fits a multinomial logistic
regression from the heads' input (the trunk's last dense layer, averaged over the face and its
mirror as scoring does) to FairFace's nine bins, on the train split's FairFace faces of the
shards, and scores it on the validation split's FairFace faces beside the network's own years
binned, on the same faces:

    PYTHONPATH=. .venv/bin/python research/benchmarks/bin_probe.py \\
        --model out/train-world-64c/model --shards out/train-world-64c/shards

A linear probe on a frozen trunk is what a new head alone would learn; a gain well short of the
issue's 55% says the head is not the missing piece.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds

from research.benchmarks.per_face import bin_positions
from sparkface.audience.likeness import multinomial_regression
from sparkface.core.contract import AGE_SCALE
from sparkface.train.shards import pixels_to_array

BIN_CUTS = np.array([3, 10, 20, 30, 40, 50, 60, 70])  # FairFace's bins: 0-2, 3-9, …, 70+
BINS = len(BIN_CUTS) + 1


def bin_of(ages) -> np.ndarray:
    """FairFace's bin index of each age in years."""
    return bin_positions(np.asarray(ages, dtype=float), BIN_CUTS)


def features(network, pixels: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The heads' input and the age in years of each face, averaged with its mirror's."""
    inputs, years = [], []
    for start in range(0, len(pixels), batch):
        chunk = pixels[start : start + batch]
        plain, mirror = network(chunk), network(chunk[:, :, ::-1])
        inputs.append((np.asarray(plain[0]) + np.asarray(mirror[0])) / 2)
        years.append((np.asarray(plain[1]) + np.asarray(mirror[1])).ravel() / 2 * AGE_SCALE)
    return np.concatenate(inputs), np.concatenate(years)


def faces(shards: str, split: str, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pixels and labelled bin of a split's faces of these sources."""
    table = ds.dataset(shards, partitioning="hive").to_table(
        columns=["age_low", "pixels"],
        filter=(pc.field("split") == split) & pc.field("source").isin(sources),
    )
    column = table["pixels"].combine_chunks()
    side = int(round((len(column[0].as_py()) / 3) ** 0.5))
    return pixels_to_array(column, side), bin_of(np.asarray(table["age_low"]))


def main() -> None:
    import keras

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Keras model folder (model.keras)")
    parser.add_argument("--shards", required=True)
    parser.add_argument("--train-sources", default="fairface,fairface-more")
    args = parser.parse_args()
    model = keras.saving.load_model(f"{args.model}/model.keras", compile=False)
    age = model.get_layer("age")
    probe = keras.Model(model.input, [age.input, age.output])
    network = probe.predict_on_batch
    started = time.perf_counter()
    train_pixels, train_bins = faces(args.shards, "train", args.train_sources.split(","))
    valid_pixels, valid_bins = faces(args.shards, "validation", ["fairface"])
    train, _ = features(network, train_pixels)
    valid, valid_years = features(network, valid_pixels)
    print(
        f"{len(train)} train and {len(valid)} FairFace validation faces described in "
        f"{time.perf_counter() - started:.0f} s"
    )

    def scored(predicted: np.ndarray) -> str:
        right = 100 * (predicted == valid_bins).mean()
        near = 100 * (np.abs(predicted - valid_bins) <= 1).mean()
        return f"{right:.1f}% | {near:.1f}%"

    print("| rule | L2 | in the bin | within one |\n|---|---|---|---|")
    print(f"| the network's years, binned | | {scored(bin_of(valid_years))} |")
    mean, spread = train.mean(axis=0), train.std(axis=0) + 1e-6
    train, valid = (train - mean) / spread, (valid - mean) / spread
    onehot = np.eye(BINS)[train_bins]
    for penalty in (1e-4, 1e-3, 1e-2, 3e-2):
        weights, bias = multinomial_regression(
            train, onehot, np.zeros(BINS), steps=1500, penalty=penalty
        )
        print(f"| a linear head | {penalty} | {scored((valid @ weights + bias).argmax(axis=1))} |")


if __name__ == "__main__":
    main()
