"""Two networks averaged by their outputs (a teacher made of both) against the mean of their
weights (`jobs/soup.py`), per source, on a split of prepared shards (docs/experiments.md,
2026-12-04, third session):

    PYTHONPATH=. .venv/bin/python research/benchmarks/outputs_vs_weights.py \
        --shards out/train-world-more/shards --models out/train-world-cpu/model \
        out/train-world-cpu-utk/model --soup out/soup-cu [--split validation]

Keras networks, each face scored with its mirror; gender and race accuracy per source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sparkface.core.contract import KERAS_FILE
from sparkface.core.package import load_model_file, predict
from sparkface.train.shards import pixels_to_array, shard_files

BATCH = 512


def scored(model, faces: np.ndarray) -> dict[str, np.ndarray]:
    parts = [predict(model, faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)]
    return {head: np.concatenate([part[head] for part in parts]) for head in ("gender", "race")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True)
    parser.add_argument("--models", nargs=2, type=Path, required=True)
    parser.add_argument("--soup", type=Path, required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--image-size", type=int, default=48)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    table = pa.concat_tables(pq.read_table(f) for f in shard_files(args.shards, args.split))
    faces = pixels_to_array(table.column("pixels"), args.image_size)
    sources = np.array(table.column("source").to_pylist())
    truth = {
        head: np.array(table.column(f"{head}_index").to_pylist()) for head in ("gender", "race")
    }
    networks = {str(p): scored(load_model_file(p / KERAS_FILE), faces) for p in args.models}
    first, second = networks.values()
    networks["outputs averaged"] = {head: (first[head] + second[head]) / 2 for head in first}
    networks["weights averaged"] = scored(load_model_file(args.soup / KERAS_FILE), faces)
    print(f"{args.split}: {len(faces)} faces")
    for name, probabilities in networks.items():
        cells = []
        for source in sorted(set(sources)):
            own = sources == source
            right = {h: probabilities[h][own].argmax(axis=1) == truth[h][own] for h in truth}
            cells.append(
                f"{source} gender {100 * right['gender'].mean():.1f} race "
                f"{100 * right['race'].mean():.1f}"
            )
        print(f"  {name}: " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
