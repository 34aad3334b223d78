"""Is it the heads or the features? New heads on the shipped network's own features (issue 33).

The shipped network's layers up to its pooled features (384 numbers a face), its last block
before that pooling (2 × 2 positions of 384), or its last shared dense layer (128) stay as they
are; only heads on top are fitted again, on the training shards' faces, each face and its mirror
image described once (`--cache` keeps the features). A head swap costs nothing when scoring, so
if a head fitted this way were right on more FairFace photos than the network's own, the network
would not need a GPU to gain. Each head's share right on FairFace's training faces says whether
the features part them at all:

    PYTHONPATH=. .venv/bin/python research/benchmarks/head_probe.py \\
        --model out/train-world-64c/model --shards out/train-world-64c/shards \\
        --cache out/head-probe

Race heads: linear on the pooled or dense features; a small network of its own on the pooled
features (the capstone's own next step, a model per output, at the cost of one head) or on the
unpooled block (does the last pooling throw away what race needs?); and the same with
FairFace's seven races (a face from a source with five is labelled with the races its class
covers: the probability on those is what its loss maximises). Gender heads: the same on the pooled
features, and one whose loss weighs every race × gender cell of the training faces equally (the
gap between races). Each printed per source of the validation split with its paired difference
from the network's own head (points, Newcombe's 95% interval, McNemar's p).
"""

from __future__ import annotations

import argparse
import csv
import glob
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sparkface.core.package import mirrored
from sparkface.evaluate.uncertainty import paired_difference
from sparkface.train.shards import pixels_to_array

COLUMNS = ["path", "source", "pixels", "gender_index", "race_index"]
# FairFace's seven races, and the project's five (index) each falls into
SEVEN = ["White", "Black", "Indian", "East Asian", "Southeast Asian", "Latino_Hispanic",
         "Middle Eastern"]  # fmt: skip
FIVE_OF_SEVEN = np.array([0, 1, 3, 2, 2, 4, 4])
LAYERS = {"pooled": "pool_features", "dense": "dense1", "unpooled": "pool5"}


def seven_races(paths: np.ndarray, label_files: list[Path]) -> np.ndarray:
    """FairFace's own race (index into SEVEN) of each (absolute) path found in the labels tables,
    -1 else."""
    known = {}
    for labels in label_files:
        folder = Path(labels).parent.resolve()  # the shards hold absolute paths
        with open(labels, newline="") as handle:
            for row in csv.DictReader(handle):
                known[str(folder / row["file"])] = SEVEN.index(row["race"])
    return np.array([known.get(p.removeprefix("file:"), -1) for p in paths])


def describe(model_dir: str, pixels: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Each face's features at both layers and the network's own answers, the face and its mirror
    averaged (features: the mean; answers: the mean probability, as the package scores)."""
    import keras

    model = keras.saving.load_model(Path(model_dir) / "model.keras", compile=False)
    dense = model.get_layer(LAYERS["dense"])
    outputs = {
        "pooled": model.get_layer(LAYERS["pooled"]).output,
        # the last block before its max-pooling, every position (2 × 2 × 384 at 64 px)
        "unpooled": keras.layers.Flatten()(model.get_layer(LAYERS["unpooled"]).input),
        # after the dense layer's activation: the input of the heads
        "dense": model.layers[model.layers.index(dense) + 1].output,
        "gender": model.get_layer("gender").output,
        "race": model.get_layer("race").output,
    }
    tap = keras.Model(model.input, outputs)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(pixels), batch):
        faces = pixels[start : start + batch]
        both = [tap.predict_on_batch(view) for view in (faces, mirrored(faces))]
        for name in outputs:
            parts.setdefault(name, []).append(
                np.mean([np.asarray(b[name], dtype=np.float32) for b in both], axis=0)
            )
    return {name: np.concatenate(value) for name, value in parts.items()}


def read_split(args, split: str) -> dict[str, np.ndarray]:
    cache = Path(f"{args.cache}.{split}.npz") if args.cache else None
    if cache and cache.is_file():
        return dict(np.load(cache, allow_pickle=False))
    files = sorted(glob.glob(f"{args.shards}/split={split}/*.parquet"))
    table = pq.ParquetDataset(files).read(columns=COLUMNS)
    started = time.perf_counter()
    data = describe(args.model, pixels_to_array(table.column("pixels"), args.size))
    print(f"{split}: {table.num_rows} faces described in {time.perf_counter() - started:.0f} s")
    for name in ("source", "gender_index", "race_index"):
        data[name] = table.column(name).to_numpy(zero_copy_only=False)
    data["source"] = data["source"].astype(str)
    data["path"] = np.array(
        [p.removeprefix("file:") for p in table.column("path").to_numpy(zero_copy_only=False)]
    )
    data["seven"] = seven_races(data["path"], [Path(f) for f in args.labels])
    print(f"{split}: FairFace's own race known for {(data['seven'] >= 0).sum()} faces")
    if cache:
        np.savez(cache, **data)
    return data


def fit_head(
    features, targets, hidden: int, weights=None, epochs: int = 40, seed: int = 0, batch: int = 512
):
    """A softmax head (linear, or one hidden layer of `hidden` units with dropout) fitted on
    `targets`: (n, k) masks of the classes each face's label allows; the loss is minus the log of
    the probability on them (a one-hot mask: cross-entropy)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((features.shape[1],))
    x = keras.layers.Normalization()
    x.adapt(features)
    h = x(inputs)
    if hidden:
        h = keras.layers.Dense(hidden, activation="leaky_relu")(h)
        h = keras.layers.Dropout(0.3)(h)
    out = keras.layers.Dense(targets.shape[1], activation="softmax")(h)
    model = keras.Model(inputs, out)

    def allowed_mass(mask, p):
        return -keras.ops.log(keras.ops.sum(mask * p, axis=-1) + 1e-7)

    model.compile(keras.optimizers.AdamW(1e-3, weight_decay=1e-4), loss=allowed_mass)
    model.fit(features, targets.astype(np.float32), sample_weight=weights, batch_size=batch,
              epochs=epochs, verbose=0)  # fmt: skip
    return model


def masks(indices: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count, dtype=np.float32)[indices]


def seven_masks(five: np.ndarray, seven: np.ndarray) -> np.ndarray:
    """A face with FairFace's own race: that one; with one of five: each of the seven it covers."""
    allowed = (FIVE_OF_SEVEN[None, :] == five[:, None]).astype(np.float32)
    exact = seven >= 0
    allowed[exact] = masks(seven[exact], len(SEVEN))
    return allowed


def cell_weights(gender: np.ndarray, race: np.ndarray) -> np.ndarray:
    """Weights that give every race × gender cell of the faces the same total (unlabelled race:
    weight 1)."""
    weights = np.ones(len(gender), dtype=np.float32)
    labelled = race >= 0
    cells = race[labelled] * 2 + gender[labelled]
    counts = np.bincount(cells, minlength=10).astype(np.float64)
    # a cell without faces is never indexed: its weight need not exist
    weights[labelled] = (labelled.sum() / (10 * np.maximum(counts, 1)))[cells]
    return weights


def share_right(answers: np.ndarray, labels: np.ndarray, inside: np.ndarray) -> float:
    """The share of these faces (those with a label) whose most probable class is their label."""
    inside = inside & (labels >= 0)
    return float((answers[inside].argmax(1) == labels[inside]).mean())


def against(now: np.ndarray, before: np.ndarray) -> str:
    """The paired difference of two heads' right answers on the same faces: points, Newcombe's
    95% interval, McNemar's p."""
    paired = paired_difference(
        int((before & now).sum()), int((before & ~now).sum()),
        int((~before & now).sum()), int((~before & ~now).sum()),
    )  # fmt: skip
    low, high = paired["interval"]
    difference = 100 * paired["difference"]
    return f"{difference:+.1f}, {100 * low:+.1f} to {100 * high:+.1f}; p {paired['p_value']:.2f}"


def report(
    name: str, right: np.ndarray, base: np.ndarray, valid: dict, head: str, fitted: float
) -> None:
    """One head's line: per source of the validation split, the share right and the paired
    difference from the network's own head; `fitted`: its share right on FairFace's train faces."""
    cells = []
    for source in sorted(set(valid["source"])):
        inside = valid["source"] == source
        if head == "race":
            inside &= valid["race_index"] >= 0
        if not inside.any():
            continue
        now, before = right[inside], base[inside]
        cell = f"{source} {100 * now.mean():.1f}"
        if right is not base:
            cell += f" ({against(now, before)})"
        if head == "gender" and (valid["race_index"][inside] >= 0).any():
            by_race = [now[valid["race_index"][inside] == r].mean() for r in range(5)]
            cell += f" gap {100 * (max(by_race) - min(by_race)):.1f}"
        cells.append(cell)
    print(f"  {name} (FairFace's train faces: {100 * fitted:.1f}): " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="out/train-world-64c/model")
    parser.add_argument("--shards", default="out/train-world-64c/shards")
    parser.add_argument("--size", type=int, default=64)
    labels = ["../shared/data/fairface/labels.csv", "data/fairface-more/labels.csv"]
    parser.add_argument("--labels", nargs="+", default=labels)
    parser.add_argument("--cache", help="keep each split's features in CACHE.SPLIT.npz")
    parser.add_argument("--epochs", type=int, default=40)
    own_only = "the network's own heads only (how well it fits them), no head fitted"
    parser.add_argument("--own-only", action="store_true", help=own_only)
    args = parser.parse_args()
    train, valid = read_split(args, "train"), read_split(args, "validation")

    ff = np.isin(train["source"], ["fairface", "fairface-more"])
    print("the network's own heads on the training faces (un-augmented), per source:")
    for source in sorted(set(train["source"])):
        inside = train["source"] == source
        cells = [
            f"{head} {100 * share_right(train[head], train[f'{head}_index'], inside):.1f}"
            for head in ("gender", "race")
            if (train[f"{head}_index"][inside] >= 0).any()
        ]
        print(f"  {source}: {int(inside.sum())} faces, " + ", ".join(cells))

    print("race (validation, right per source; against the network's own head)")
    base = valid["race"].argmax(1) == valid["race_index"]
    own = share_right(train["race"], train["race_index"], ff)
    report("the network's own head", base, base, valid, "race", own)
    if args.own_only:
        base = valid["gender"].argmax(1) == valid["gender_index"]
        own = share_right(train["gender"], train["gender_index"], ff)
        report("the network's own gender head", base, base, valid, "gender", own)
        return
    has_race = train["race_index"] >= 0
    for name, layer, hidden, seven in (
        ("linear, dense layer", "dense", 0, False),
        ("linear, pooled", "pooled", 0, False),
        ("its own layer of 256, pooled", "pooled", 256, False),
        ("seven races, its own layer of 256", "pooled", 256, True),
        ("its own layer of 256, the last block unpooled", "unpooled", 256, False),
    ):
        targets = masks(train["race_index"][has_race], 5)
        if seven:
            targets = seven_masks(train["race_index"][has_race], train["seven"][has_race])
        head = fit_head(train[layer][has_race], targets, hidden, epochs=args.epochs)
        answers = {split: head.predict(data[layer], verbose=0)
                   for split, data in (("train", train), ("validation", valid))}  # fmt: skip
        if seven:
            answers = {split: np.stack([a[:, k == FIVE_OF_SEVEN].sum(1) for k in range(5)], 1)
                       for split, a in answers.items()}  # fmt: skip
        right = answers["validation"].argmax(1) == valid["race_index"]
        fit = share_right(answers["train"], train["race_index"], ff)
        report(name, right, base, valid, "race", fit)

    print("gender (validation; gap: best race minus worst)")
    base = valid["gender"].argmax(1) == valid["gender_index"]
    report("the network's own head", base, base, valid, "gender",
           share_right(train["gender"], train["gender_index"], ff))  # fmt: skip
    targets = masks(train["gender_index"], 2)
    for name, weights in (("its own layer of 256, pooled", None),
                          ("the same, every race × gender cell weighed equally",
                           cell_weights(train["gender_index"], train["race_index"]))):  # fmt: skip
        head = fit_head(train["pooled"], targets, 256, weights, epochs=args.epochs)
        right = head.predict(valid["pooled"], verbose=0).argmax(1) == valid["gender_index"]
        own = share_right(head.predict(train["pooled"], verbose=0), train["gender_index"], ff)
        report(name, right, base, valid, "gender", own)


if __name__ == "__main__":
    main()
