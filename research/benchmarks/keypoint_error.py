"""How far the keypoints of faces found in frames lie from where the detector puts them on each
face's own crop, with and without the second look (`refine_window`).

    python benchmarks/keypoint_error.py --data out/frames-validation [--frames 150]

DATA is jobs/make_frames.py's output. Each pasted face's crop keypoints (found on the crop with
the same settings) are carried into the frame by the paste's known scale, tilt and place; the
error is the mean distance of the four keypoints, in pixels of the 200-px crop.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from sparkface.core.config import load_faces
from sparkface.detect.faces import CROP_SIDE, FaceFinder, detect


def in_frame(keypoints: np.ndarray, face: dict) -> np.ndarray:
    """Crop keypoints carried to where the crop was pasted (Image.rotate turns counter-clockwise
    on screen: (dx, dy) -> (dx cos + dy sin, -dx sin + dy cos))."""
    angle = math.radians(face["angle"])
    offsets = (keypoints - CROP_SIDE / 2) * face["side"] / CROP_SIDE
    cos, sin = math.cos(angle), math.sin(angle)
    turned = np.stack(
        [offsets[:, 0] * cos + offsets[:, 1] * sin, -offsets[:, 0] * sin + offsets[:, 1] * cos],
        axis=1,
    )
    return turned + [face["centre_x"], face["centre_y"]]


def errors(data: Path, faces_dir: Path, frames: int, settings, finder) -> list[float]:
    found_errors = []
    records = [json.loads(line) for line in (data / "frames.jsonl").read_text().splitlines()]
    for record in records[:frames]:
        image = Image.open(data / "frames" / record["file_name"]).convert("RGB")
        found = detect(image, finder, settings)
        for face in record["faces"]:
            crop = detect(Image.open(faces_dir / face["source"]).convert("RGB"), finder, settings)
            if not crop:
                continue
            truth = in_frame(crop[0].keypoints, face)
            near = [
                f
                for f in found
                if math.hypot(
                    f.box[0] + f.box[2] / 2 - face["centre_x"],
                    f.box[1] + f.box[3] / 2 - face["centre_y"],
                )
                < 0.5 * face["side"]
            ]
            if near:
                distance = np.linalg.norm(near[0].keypoints - truth, axis=1).mean()
                found_errors.append(distance * CROP_SIDE / face["side"])
    return found_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces-dir", default="../shared/data/utkface")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    settings = load_faces()
    finder = FaceFinder(settings)
    for name, chosen in (
        (f"refine_window {settings.refine_window}", settings),
        ("refine_window 0 (as found)", settings.model_copy(update=dict(refine_window=0))),
    ):
        found = errors(Path(args.data), Path(args.faces_dir), args.frames, chosen, finder)
        print(
            f"{name}: {len(found)} faces, keypoints {np.mean(found):.1f} px (median "
            f"{np.median(found):.1f}) from their crop's, in pixels of the {CROP_SIDE}-px crop"
        )


if __name__ == "__main__":
    main()
