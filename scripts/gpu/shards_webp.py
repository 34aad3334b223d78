"""Training shards in a form small enough to send to a GPU machine, and back, losslessly.

The shards hold each face as raw 8-bit RGB (a 48x48 face: 6,912 bytes), which Parquet's codecs
barely compress; the train split of out/train-detect is 97 MB as Spark wrote it. Lossless WebP
holds the same pixels in under half (measured: 3,217 bytes a face, 49 MB of files for the train
split), under the 64 MiB that one call to a GPU machine may carry. `pack` writes each shard file
again with its pixels as lossless WebP and records a SHA-256 of each split's pixels; `unpack`
decodes them back to raw pixels, the same rows in the same files and order, and stops unless
every split's pixels hash as they did.

With `--quality Q` the faces are lossy WebP instead (64-px shards are too large to send
losslessly in the few calls a GPU session's minutes allow: research/benchmarks/lossy_shards.py
measures what it costs the network); the manifest then holds a SHA-256 of each split's WebP
files' bytes, which `unpack` checks before decoding (a decoder of another libwebp version may
round a pixel differently, so the decoded pixels cannot be hashed ahead).

    python scripts/gpu/shards_webp.py pack out/train-detect/shards .gpu/shards
    python scripts/gpu/shards_webp.py parts .gpu 55      # files into .gpu/partN of <= 55 MB
    python scripts/gpu/shards_webp.py calls .gpu          # what each call carries and runs
    python scripts/gpu/shards_webp.py unpack .gpu/shards out/train-detect/shards
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from sparkface.train.shards import pixels_to_array

MANIFEST = "manifest.json"


def pack(
    source: Path, target: Path, splits: list[str], image_size: int, quality: int | None = None
) -> dict[str, str]:
    """Each split's shard files with WebP pixels (lossless, or lossy at `quality`); returns the
    splits' hashes: of the pixels when lossless, of the WebP bytes when lossy."""
    hashes = {}
    for split in splits:
        digest = hashlib.sha256()
        for path in sorted((source / f"split={split}").glob("*.parquet")):
            table = pq.read_table(path)
            pixels = pixels_to_array(table.column("pixels"), image_size)
            faces = [webp(face, quality) for face in pixels]
            if quality is None:
                digest.update(pixels.tobytes())
            else:
                for data in faces:
                    digest.update(len(data).to_bytes(4, "little") + data)
            encoded = pa.array(faces, type=pa.binary())
            table = table.set_column(table.schema.get_field_index("pixels"), "pixels", encoded)
            (target / f"split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"split={split}" / path.name, compression="none")
        hashes[split] = digest.hexdigest()
    kind = "pixels_sha256" if quality is None else "webp_sha256"
    manifest = {"image_size": image_size, "quality": quality, kind: hashes}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return hashes


def unpack(source: Path, target: Path) -> dict[str, str]:
    """The shards back with raw pixels, checked against the manifest's hashes."""
    manifest = json.loads((source / MANIFEST).read_text())
    size = manifest["image_size"]
    lossy = "webp_sha256" in manifest
    hashes = manifest["webp_sha256" if lossy else "pixels_sha256"]
    for split, expected in hashes.items():
        digest = hashlib.sha256()
        for path in sorted((source / f"split={split}").glob("*.parquet")):
            table = pq.read_table(path)
            packed = table.column("pixels").to_pylist()
            # Spark may write a split's file with no rows at all (a shard no face hashed to).
            faces = np.empty((len(packed), size, size, 3), dtype=np.uint8)
            for row, data in enumerate(packed):
                faces[row] = decoded(data, size)
            if lossy:
                for data in packed:
                    digest.update(len(data).to_bytes(4, "little") + data)
            else:
                digest.update(faces.tobytes())
            raw = pa.array([face.tobytes() for face in faces], type=pa.binary())
            table = table.set_column(table.schema.get_field_index("pixels"), "pixels", raw)
            (target / f"split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target / f"split={split}" / path.name)
        if digest.hexdigest() != expected:
            what = (
                "WebP bytes differ from the packed ones"
                if lossy
                else ("pixels differ from the packed ones after decoding")
            )
            raise SystemExit(f"split {split}: {what}")
    return hashes


def parts(bundle: Path, most_bytes: int) -> list[list[Path]]:
    """The packed shard files (bundle/shards/split=*/*.parquet) moved into bundle/part1,
    bundle/part2, ... of at most `most_bytes` each (a call to the GPU machine carries what it
    can), as few as first-fit decreasing finds; a file larger than that is a part of its own."""
    existing = sorted(bundle.glob("part*"))
    if existing:
        raise SystemExit(
            f"{existing[0].name} is there already in {bundle}: bundle again from scratch"
        )
    files = sorted(bundle.glob("shards/split=*/*.parquet"), key=lambda f: -f.stat().st_size)
    chosen: list[list[Path]] = []
    room: list[int] = []
    for file in files:
        size = file.stat().st_size
        fits = [index for index, left in enumerate(room) if left >= size]
        if fits:
            chosen[fits[0]].append(file)
            room[fits[0]] -= size
        else:
            chosen.append([file])
            room.append(most_bytes - size)
    moved = []
    for number, files_of_part in enumerate(chosen, start=1):
        moved.append([])
        for file in files_of_part:
            target = bundle / f"part{number}" / "shards" / file.parent.name / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            file.rename(target)
            moved[-1].append(target)
    for split in bundle.glob("shards/split=*"):
        split.rmdir()
    return moved


# What one call to the GPU machine may carry, with the working tree (the `device` tool's limit).
CALL_BYTES = 64 * 2**20


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def tree_bytes() -> int:
    """The bytes of the working tree a call carries: tracked files and those git does not
    ignore (run from the repository's root)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    return sum(os.path.getsize(n) for n in listed if n and os.path.isfile(n))


def calls(bundle: Path, tree_bytes: int) -> list[tuple[list[str], int, str]]:
    """The calls that take a bundle (made by `bundle`, perhaps in parts) to the GPU machine, in
    order: what each carries, its bytes with the working tree, and what it runs there. The first
    installs and checks the wheels before any faces travel (docs/gpu.md); the last trains."""
    stage = "/tmp/sparkface-gpu"
    name = bundle.name
    plan = [([f"{name}/meta", f"{name}/wheels"], "scripts/gpu/train.sh setup")]
    numbered = sorted(bundle.glob("part*"), key=lambda part: int(part.name[4:]))
    if not numbered:
        plan.append(([f"{name}/shards"], "scripts/gpu/train.sh train RECIPE..."))
    for index, part in enumerate(numbered):
        carried = [f"{name}/shards"] if index == 0 else []
        carried.append(f"{name}/{part.name}")
        if index == len(numbered) - 1:  # train stages whatever the call carries
            command = "scripts/gpu/train.sh train RECIPE..."
        else:
            copied = " ".join([*carried[:-1], f"{carried[-1]}/."])
            command = f"mkdir -p {stage} && cp -r {copied} {stage}/"
        plan.append((carried, command))
    root = bundle.parent
    return [
        (carried, tree_bytes + sum(folder_bytes(root / c) for c in carried), command)
        for carried, command in plan
    ]


def webp(face: np.ndarray, quality: int | None = None) -> bytes:
    """A face as WebP: lossless, or lossy at `quality` (0-100)."""
    buffer = io.BytesIO()
    if quality is None:
        Image.fromarray(face).save(buffer, "WEBP", lossless=True, quality=100, method=2)
    else:
        Image.fromarray(face).save(buffer, "WEBP", quality=quality, method=4)
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
    packing.add_argument("--quality", type=int, help="lossy WebP at this quality (0-100)")
    splitting = commands.add_parser("parts", help="move the packed files into parts")
    splitting.add_argument("bundle", type=Path)
    splitting.add_argument("most_mb", type=float)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("source", type=Path)
    unpacking.add_argument("target", type=Path)
    planning = commands.add_parser("calls", help="the calls that carry a bundle, in order")
    planning.add_argument("bundle", type=Path)
    planning.add_argument("--tree-bytes", type=int, help="default: the working tree's, from git")
    args = parser.parse_args(argv)
    if args.command == "calls":
        tree = tree_bytes() if args.tree_bytes is None else args.tree_bytes
        plan = calls(args.bundle, tree)
        for number, (carried, size, command) in enumerate(plan, start=1):
            print(f"call {number}: carry {' '.join(carried)} ({size / 1e6:.1f} MB); run: {command}")
        over = [n for n, (_, size, _) in enumerate(plan, start=1) if size > CALL_BYTES]
        if over:
            limit = f"{CALL_BYTES / 1e6:.1f} MB"
            print(f"calls {over} carry more than {limit}: bundle in smaller parts")
            return 1
        return 0
    if args.command == "parts":
        for number, files in enumerate(parts(args.bundle, int(args.most_mb * 1e6)), start=1):
            size = sum(file.stat().st_size for file in files) / 1e6
            print(f"part{number}: {len(files)} files, {size:.1f} MB")
        return 0
    if args.command == "pack":
        hashes = pack(args.source, args.target, args.splits, args.image_size, args.quality)
    else:
        hashes = unpack(args.source, args.target)
    print(json.dumps(hashes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
