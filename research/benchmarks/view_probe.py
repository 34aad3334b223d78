"""Would more looks at each face than its mirror image pay? The shipped package's answers on the
validation split's faces (the training shards, the faces as `--faces detect` cuts them) averaged
over views of each face: the face, its mirror, and each zoomed in and out by `--zoom` (as training
augments them, within its ±10%), against the face and its mirror alone (what the package does).

    PYTHONPATH=. .venv/bin/python research/benchmarks/view_probe.py \\
        --shards out/train-world-64c/shards [--model models/sparkface-cnn] [--zoom 0.06]

Prints per source the accuracy of gender, race, and the age (FairFace's bin for faces labelled
with one, the age group otherwise) with 2, 4 and 6 views, and each one's paired difference from 2
views (points, Newcombe's 95% interval, McNemar's p). A probe of accuracy only: each view is one
more pass of the network a face.
"""

from __future__ import annotations

import argparse
import glob

import numpy as np
import pyarrow.parquet as pq

from research.benchmarks.per_face import in_labelled_bin
from sparkface.core.contract import AGE_SCALE
from sparkface.core.package import load_package_model, mirrored, read_descriptor
from sparkface.evaluate.uncertainty import paired_difference
from sparkface.train.augment import warp
from sparkface.train.shards import pixels_to_array

COLUMNS = ["source", "pixels", "gender_index", "race_index", "age", "age_low", "age_high",
           "age_group_index"]  # fmt: skip


def zoomed(faces: np.ndarray, scale: float) -> np.ndarray:
    """Each (s, s, 3) face scaled about its centre (> 1: closer), edges extended, as training's
    augmentation warps it."""
    return np.stack([warp(face, scale) for face in faces])


def answers(model, faces: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """The network's outputs for every face, one pass each."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(faces), batch):
        for name, value in model.predict_on_batch(faces[start : start + batch]).items():
            parts.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
    return {name: np.concatenate(value) for name, value in parts.items()}


def mean(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.mean([o[name] for o in outputs], axis=0) for name in outputs[0]}


def right(outputs: dict[str, np.ndarray], faces: dict[str, np.ndarray]) -> dict:
    """Per head, whether each labelled face's answer is right."""
    result = {
        "gender": outputs["gender"].argmax(1) == faces["gender_index"],
        "race": outputs["race"].argmax(1) == faces["race_index"],
    }
    labelled = faces["race_index"] >= 0
    result["race"] = np.where(labelled, result["race"], np.nan)
    years = np.clip(outputs["age"].ravel() * AGE_SCALE, 0.0, None)  # as the package's predict
    binned = np.isnan(faces["age"])
    if binned.any():
        age = np.full(len(years), np.nan)
        age[binned] = in_labelled_bin(years[binned], faces["age_low"][binned])
        age[~binned] = outputs["age_group"].argmax(1)[~binned] == faces["age_group_index"][~binned]
    else:
        age = (outputs["age_group"].argmax(1) == faces["age_group_index"]).astype(float)
    result["age"] = age
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="out/train-world-64c/shards")
    parser.add_argument("--model", default="models/sparkface-cnn")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--zoom", type=float, default=0.06)
    args = parser.parse_args()
    descriptor = read_descriptor(args.model)
    size = descriptor["input_size"][0]
    table = pq.ParquetDataset(
        sorted(glob.glob(f"{args.shards}/split={args.split}/*.parquet"))
    ).read(columns=COLUMNS)
    faces = {
        name: table.column(name).to_numpy(zero_copy_only=False)
        for name in COLUMNS
        if name != "pixels"
    }
    for name in ("age", "age_low", "age_high", "age_group_index"):
        faces[name] = np.asarray(faces[name], dtype=np.float64)
    pixels = pixels_to_array(table.column("pixels"), size)
    model = load_package_model(args.model)
    looks = {}
    for name, view in (
        ("face", pixels),
        ("closer", zoomed(pixels, 1 + args.zoom)),
        ("farther", zoomed(pixels, 1 - args.zoom)),
    ):
        looks[name] = answers(model, view)
        looks[name + " mirrored"] = answers(model, mirrored(view))
    sets = {
        "2 views (the package)": ["face", "face mirrored"],
        "4 views (+ closer)": ["face", "face mirrored", "closer", "closer mirrored"],
        "6 views (+ farther)": list(looks),
    }
    scored = {name: right(mean([looks[v] for v in views]), faces) for name, views in sets.items()}
    base = scored["2 views (the package)"]
    for source in sorted(set(faces["source"])):
        inside = faces["source"] == source
        print(f"{source}: {int(inside.sum())} faces")
        for name, result in scored.items():
            cells = []
            for head, values in result.items():
                known = inside & ~np.isnan(values.astype(float))
                if not known.any():
                    continue
                now, before = values[known].astype(bool), base[head][known].astype(bool)
                cell = f"{head} {100 * now.mean():.1f}"
                if result is not base:
                    paired = paired_difference(
                        int((before & now).sum()), int((before & ~now).sum()),
                        int((~before & now).sum()), int((~before & ~now).sum()),
                    )  # fmt: skip
                    low, high = paired["interval"]
                    cell += (
                        f" ({100 * paired['difference']:+.1f}, {100 * low:+.1f} to "
                        f"{100 * high:+.1f}; p {paired['p_value']:.2f})"
                    )
                cells.append(cell)
            print(f"  {name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
