"""Training shards in a form small enough to send to a GPU machine, and back, losslessly.

The shards hold each face as raw 8-bit RGB (a 48x48 face: 6,912 bytes), which Parquet's codecs
barely compress; the train split of out/train-detect is 97 MB as Spark wrote it. Lossless WebP
holds the same pixels in under half (measured: 3,217 bytes a face, 49 MB of files for the train
split), under the 64 MiB that one call to a GPU machine may carry. `pack` writes each shard file
again with its pixels as lossless WebP and records a SHA-256 of each split's pixels; `unpack`
decodes them back to raw pixels, the same rows in the same files and order, and stops unless
every split's pixels hash as they did.

    python scripts/gpu/shards_webp.py pack out/train-detect/shards .gpu/shards
    python scripts/gpu/shards_webp.py unpack .gpu/shards out/train-detect/shards
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from sparkface.train.shards import pixels_to_array

MANIFEST = "manifest.json"


def pack(source: Path, target: Path, splits: list[str], image_size: int) -> dict[str, str]:
    """Each split's shard files with lossless-WebP pixels; returns the splits' pixel hashes."""
    hashes = {}
    for split in splits:
        digest = hashlib.sha256()
        for path in sorted((source / f"split={split}").glob("*.parquet")):
            table = pq.read_table(path)
            pixels = pixels_to_array(table.column("pixels"), image_size)
            digest.update(pixels.tobytes())
            encoded = pa.array([webp(face) for face in pixels], type=pa.binary())
            table = table.set_column(table.schema.get_field_index("pixels"), "pixels", encoded)
            (target / f"split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"split={split}" / path.name, compression="none")
        hashes[split] = digest.hexdigest()
    manifest = {"image_size": image_size, "pixels_sha256": hashes}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return hashes


def unpack(source: Path, target: Path) -> dict[str, str]:
    """The shards back with raw pixels, checked against the manifest's hashes."""
    manifest = json.loads((source / MANIFEST).read_text())
    size = manifest["image_size"]
    for split, expected in manifest["pixels_sha256"].items():
        digest = hashlib.sha256()
        for path in sorted((source / f"split={split}").glob("*.parquet")):
            table = pq.read_table(path)
            faces = np.stack([decoded(data, size) for data in table.column("pixels").to_pylist()])
            digest.update(faces.tobytes())
            raw = pa.array([face.tobytes() for face in faces], type=pa.binary())
            table = table.set_column(table.schema.get_field_index("pixels"), "pixels", raw)
            (target / f"split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"split={split}" / path.name)
        if digest.hexdigest() != expected:
            raise SystemExit(f"split {split}: pixels differ from the packed ones after decoding")
    return manifest["pixels_sha256"]


def webp(face: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, "WEBP", lossless=True, quality=100, method=2)
    return buffer.getvalue()


def decoded(data: bytes, size: int) -> np.ndarray:
    face = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    if face.shape != (size, size, 3):
        raise SystemExit(f"a packed face is {face.shape}, not {size}x{size}x3")
    return face


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("source", type=Path)
    packing.add_argument("target", type=Path)
    packing.add_argument("--splits", nargs="+", default=["train", "validation"])
    packing.add_argument("--image-size", type=int, default=48)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("source", type=Path)
    unpacking.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "pack":
        hashes = pack(args.source, args.target, args.splits, args.image_size)
    else:
        hashes = unpack(args.source, args.target)
    print(json.dumps(hashes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
