"""Must every face be scored twice? The mirror image only where the first look is unsure.

The package scores each face and its mirror image and averages them: half the network's time,
worth 2.2 points of FairFace race (docs/experiments.md, thirteenth session). If the faces the
first look is sure of gain nothing from the second, mirroring only the unsure ones keeps the
gain at a fraction of the cost, and frees time for a wider network (issue 33's cost cap). On
the validation split's faces of the shards, with a network's Keras model: each face's answers
from one look and from both, and for each --threshold, the faces mirrored only where the most
probable class of one of the --sure-of heads (gender and race) has less than that probability:
the share mirrored and each head's accuracy
per source (the share mirrored is the network's extra time, over one look's).

    PYTHONPATH=. .venv/bin/python research/benchmarks/mirror_policy.py \
        --model out/train-world-64c/model --shards out/train-world-64c/shards
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from research.benchmarks.lossy_shards import HEADS, load
from sparkface.core.contract import AGE_SCALE
from sparkface.core.package import mirrored
from sparkface.train.shards import shard_files


def looks(model, faces: np.ndarray, batch: int = 256) -> tuple[dict, dict]:
    """Each head's probabilities from the face alone and from its mirror image."""
    once: dict[str, list] = {head: [] for head in (*HEADS, "age")}
    again: dict[str, list] = {head: [] for head in (*HEADS, "age")}
    for start in range(0, len(faces), batch):
        part = faces[start : start + batch]
        for store, view in ((once, part), (again, mirrored(part))):
            answers = model.predict_on_batch(view)
            for head in store:
                store[head].append(np.asarray(answers[head], dtype=np.float64))
    return (
        {head: np.concatenate(value) for head, value in once.items()},
        {head: np.concatenate(value) for head, value in again.items()},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Keras model's folder (model.keras)")
    parser.add_argument("--shards", required=True, type=Path)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--sure-of", nargs="+", default=["gender", "race"], choices=list(HEADS))
    parser.add_argument("--age-below", type=float, default=0.0, help="and age groups below this")
    args = parser.parse_args()
    import keras

    model = keras.saving.load_model(Path(args.model) / "model.keras", compile=False)
    faces, labels = load(args.shards, "validation", args.image_size)
    ages = pq.ParquetDataset(shard_files(args.shards, "validation")).read(
        columns=["age", "age_low", "age_high"]
    )
    labels.update(
        {name: ages.column(name).to_numpy(zero_copy_only=False) for name in ages.column_names}
    )
    once, again = looks(model, faces)
    # How sure the first look is: of its least sure head among --sure-of (age groups, which the
    # network is rarely sure of, would send nearly every face to a second look).
    sure = np.min([once[head].max(axis=1) for head in args.sure_of], axis=0)
    # With --age-below, a face whose most probable age group has less than that is mirrored too.
    unsure_age = once["age_group"].max(axis=1) < args.age_below
    sources = sorted(set(labels["source"]))
    policies = {"one look": np.zeros(len(faces), bool), "both, always": np.ones(len(faces), bool)}
    for threshold in args.threshold:
        policies[f"both where unsure (< {threshold})"] = (sure < threshold) | unsure_age
    print(
        f"{len(faces)} validation faces; per source, gender / race / age group accuracy, "
        "and the age in years: its mean error where exact, else how often in the labelled bin"
    )
    for name, mirror in policies.items():
        cells = []
        for source in sources:
            heads = []
            for head, column in HEADS.items():
                truth = labels[column]
                known = (labels["source"] == source) & (truth >= 0)
                if not known.any():
                    heads.append("-")
                    continue
                both = np.where(mirror[:, None], (once[head] + again[head]) / 2, once[head])
                heads.append(f"{100 * (both[known].argmax(axis=1) == truth[known]).mean():.1f}")
            heads.append(age_figure(once, again, mirror, labels, labels["source"] == source))
            cells.append(f"{source} {' / '.join(heads)}")
        shares = ", ".join(
            f"{source} {100 * mirror[labels['source'] == source].mean():.0f}%" for source in sources
        )
        print(f"{name}: mirrored {100 * mirror.mean():.0f}% ({shares}); " + "; ".join(cells))
    return 0


def age_figure(once, again, mirror, labels, rows) -> str:
    """The age in years of `rows`: MAE where exact ages are known, else the share in the bin."""
    years = AGE_SCALE * np.where(mirror[:, None], (once["age"] + again["age"]) / 2, once["age"])
    years = np.clip(years.reshape(-1), 0, None)[rows]
    exact = labels["age"][rows]
    if not np.isnan(exact.astype(float)).all():
        known = ~np.isnan(exact.astype(float))
        return f"MAE {np.abs(years[known] - exact[known]).mean():.2f}"
    low, high = labels["age_low"][rows].astype(float), labels["age_high"][rows].astype(float)
    known = ~np.isnan(low)
    inside = (np.rint(years) >= low) & (np.rint(years) <= high)
    return f"bin {100 * inside[known].mean():.1f}" if known.any() else "-"


if __name__ == "__main__":
    sys.exit(main())
