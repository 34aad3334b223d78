"""The camera-like test sets that research/jobs/make_frames.py writes: frames with test-split
faces pasted into them, and the same crops re-framed, with the truth beside them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sparkface.train.frames import FRAME_SIZES, JPEG_QUALITY, REFRAMINGS, jpeg, make_frame, reframe


def write_frames(
    sources: Sequence[Path], output: Path, frames: int, seed: int = 0
) -> Iterator[dict]:
    """`frames` frames into output/frames/ (0-4 faces each, every source used at most once), and
    the truth as dicts (also written to output/frames.jsonl)."""
    rng = np.random.default_rng(seed)
    folder = output / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    pool = list(rng.permutation(len(sources)))
    with (output / "frames.jsonl").open("w") as truth:
        for index in range(frames):
            count = int(rng.choice([0, 1, 1, 2, 2, 3, 4]))
            chosen = [sources[pool.pop()] for _ in range(min(count, len(pool)))]
            size = FRAME_SIZES[int(rng.integers(0, len(FRAME_SIZES)))]
            frame, placed = make_frame(rng, chosen, count, size)
            name = f"frame_{index:05d}.jpg"
            quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
            (folder / name).write_bytes(jpeg(frame, quality))
            record = {
                "file_name": name,
                "width": size[0],
                "height": size[1],
                "faces": [dataclasses.asdict(face) for face in placed],
            }
            truth.write(json.dumps(record) + "\n")
            yield record


def write_reframed(sources: Sequence[Path], output: Path, seed: int = 0) -> Iterator[dict]:
    """Each source crop re-framed once per kind, into output/<kind>/ under its own name."""
    rng = np.random.default_rng(seed)
    with (output / "reframed.jsonl").open("w") as truth:
        for kind in REFRAMINGS:
            folder = output / kind
            folder.mkdir(parents=True, exist_ok=True)
            for source in sources:
                image, how = reframe(Image.open(source), kind, rng)
                (folder / source.name).write_bytes(jpeg(image, 90))
                record = {"kind": kind, "file_name": source.name, **how}
                truth.write(json.dumps(record) + "\n")
                yield record
