"""How small can the shards travel to a GPU machine, and what would lossy WebP cost the network?

A call to the GPU machine carries at most 64 MiB, and at 64 px the shards are too large to send
losslessly in few calls (docs/gpu.md). This prints, for lossless WebP and lossy WebP at each
--quality, the bytes a face (on --sample faces of the train split) and, on the validation split,
the network's answers to the faces as stored and round-tripped through that encoding: the share
of faces whose most probable class changes per head, and each head's accuracy per source both
ways (gender, race, age group where exact ages are known), the face and its mirror averaged as
the package scores.

    PYTHONPATH=. .venv/bin/python research/benchmarks/lossy_shards.py \
        --model out/train-world-64c/model --shards out/train-world-64c/shards
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sparkface.core.package import predict
from sparkface.train.shards import pixels_to_array, shard_files

HEADS = {"gender": "gender_index", "race": "race_index", "age_group": "age_group_index"}


def load(shards: Path, split: str, image_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    columns = ["source", "pixels", *HEADS.values()]
    table = pq.ParquetDataset(shard_files(shards, split)).read(columns=columns)
    labels = {name: table.column(name).to_numpy(zero_copy_only=False) for name in columns[2:]}
    labels["source"] = np.asarray(table.column("source").to_pylist())
    return pixels_to_array(table.column("pixels"), image_size), labels


def bundle_script():
    """scripts/gpu/shards_webp.py, the GPU bundle's packer (a script, not a module)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "shards_webp.py"
    spec = importlib.util.spec_from_file_location("shards_webp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def round_trip(faces: np.ndarray, quality: int | None, script) -> tuple[np.ndarray, int]:
    """The faces encoded as the GPU bundle would (None: lossless) and decoded; bytes in all."""
    encoded = [script.webp(face, quality) for face in faces]
    size = faces.shape[1]
    return np.stack([script.decoded(data, size) for data in encoded]), sum(map(len, encoded))


def answers(model, faces: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    for start in range(0, len(faces), batch):
        result = predict(model, faces[start : start + batch])
        for head in HEADS:
            parts[head].append(result[head].argmax(axis=1))
    return {head: np.concatenate(value) for head, value in parts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Keras model's folder (model.keras)")
    parser.add_argument("--shards", required=True, type=Path)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--quality", type=int, nargs="+", default=[95, 90, 80])
    parser.add_argument("--sample", type=int, default=2000, help="train faces sized")
    args = parser.parse_args()
    import keras

    script = bundle_script()
    model = keras.saving.load_model(Path(args.model) / "model.keras", compile=False)
    train, _ = load(args.shards, "train", args.image_size)
    sample = train[np.random.default_rng(0).choice(len(train), args.sample, replace=False)]
    faces, labels = load(args.shards, "validation", args.image_size)
    stored = answers(model, faces)
    print(f"train faces {len(train)}, sized on {len(sample)}; validation faces {len(faces)}")
    print(f"raw: {faces[0].nbytes} bytes a face")
    for quality in [None, *args.quality]:
        name = "lossless" if quality is None else f"lossy q{quality}"
        _, total = round_trip(sample, quality, script)
        back, _ = round_trip(faces, quality, script)
        error = np.abs(back.astype(int) - faces).mean()
        print(f"\n{name}: {total / len(sample):,.0f} bytes a face "
              f"({total / len(sample) * len(train) / 1e6:.0f} MB for the train split); "
              f"mean absolute pixel change {error:.2f}")  # fmt: skip
        if quality is None:
            continue
        again = answers(model, back)
        for head, column in HEADS.items():
            changed = (again[head] != stored[head]).mean()
            cells = []
            for source in sorted(set(labels["source"])):
                truth = labels[column]
                known = (labels["source"] == source) & (truth >= 0)
                if known.sum() == 0:
                    continue
                before = (stored[head][known] == truth[known]).mean()
                after = (again[head][known] == truth[known]).mean()
                cells.append(f"{source} {100 * before:.1f} -> {100 * after:.1f}")
            print(f"  {head}: answer changed {100 * changed:.2f}%; " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
