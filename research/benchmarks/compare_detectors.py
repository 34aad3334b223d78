"""Face detectors side by side on the same frames (jobs/make_frames.py output; use a validation-
split set to choose): recall of the pasted faces of 48 px and more, false faces per frame, and
milliseconds per frame in one process, measured in one run.

    pip install mtcnn==1.0.0    # only for this comparison; sparkface does not depend on it
    python benchmarks/compare_detectors.py --data out/frames-validation --frames 200

Candidates: sparkface's BlazeFace pipeline (conf/faces.yaml: short range over the image scaled for
small faces, then once more scaled to cover it; full range on the whole of an image too small to
scan), the version before it (full range on every whole image, scans at 256-px windows), the one
before that (short range on overlapping tiles, a call each), BlazeFace full range on the whole
image alone, and
MTCNN (mtcnn 1.0.0, its defaults). The full-range model cannot scan: its interpreter takes no
other input shape than its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sparkface.core.config import load_faces  # noqa: E402
from sparkface.detect.blazeface import Detection, weighted_nms  # noqa: E402
from sparkface.detect.faces import FaceFinder, detect  # noqa: E402


def sparkface_detector(settings):
    finder = FaceFinder(settings)
    return lambda image: [face.box for face in detect(image, finder, settings)]


def tiled_detector(settings):
    """The version before scans: the short-range model on overlapping 256-px tiles (768, ...),
    each a separate call, detections cut by a tile's inner edge dropped, merged by weighted NMS
    with the whole-image pass; no keypoint refinement (boxes alone are compared)."""
    finder = FaceFinder(settings)

    def windows(width, height, side):
        found = []
        while max(width, height) > side * 1.25:
            step = side * 2 // 3

            def starts(length, side=side, step=step):
                count = max(1, math.ceil((length - side) / step) + 1)
                return [round(i * (length - side) / max(count - 1, 1)) for i in range(count)]

            found += [(x, y, x + side, y + side) for y in starts(height) for x in starts(width)]
            side *= 3
        return found

    def boxes_of(image):
        border = round(settings.context * max(image.size))
        found = finder.whole.detect(image, settings.min_confidence, border)
        for x0, y0, x1, y1 in windows(*image.size, settings.scan_pixels):
            for face in finder.scan.detect(image.crop((x0, y0, x1, y1)), settings.min_confidence):
                x, y, w, h = face.box
                margin = 0.02 * (x1 - x0)
                inner = (
                    (x0 > 0 and x < margin)
                    or (y0 > 0 and y < margin)
                    or (x1 < image.width and x + w > x1 - x0 - margin)
                    or (y1 < image.height and y + h > y1 - y0 - margin)
                )
                if not inner:
                    found.append(Detection((x + x0, y + y0, w, h), face.confidence, face.keypoints))
        if not found:
            return []
        corners = np.array([[x, y, x + w, y + h] for x, y, w, h in (f.box for f in found)])
        points = np.stack([f.keypoints for f in found])
        scores = np.array([f.confidence for f in found])
        merged = weighted_nms(corners, points, scores)
        return [
            (b[0], b[1], b[2] - b[0], b[3] - b[1])
            for b, _, _ in merged
            if min(b[2] - b[0], b[3] - b[1]) >= settings.min_face_pixels
        ]

    return boxes_of


def whole_image_only(settings):
    finder = FaceFinder(settings)
    return lambda image: [f.box for f in finder.whole.detect(image, settings.min_confidence)]


def mtcnn_detector():
    from mtcnn import MTCNN

    model = MTCNN()
    return lambda image: [tuple(face["box"]) for face in model.detect_faces(np.asarray(image))]


def score(boxes_of, records, folder: Path) -> dict:
    found = total = false = 0
    spent = 0.0
    for record in records:
        image = Image.open(folder / record["file_name"]).convert("RGB")
        moment = time.perf_counter()
        boxes = boxes_of(image)
        spent += time.perf_counter() - moment
        used = set()
        for face in record["faces"]:
            if face["side"] < 48:
                continue
            total += 1
            for index, (x, y, w, h) in enumerate(boxes):
                centre = (x + w / 2, y + h / 2)
                near = math.hypot(centre[0] - face["centre_x"], centre[1] - face["centre_y"])
                if index not in used and near < 0.4 * face["side"]:
                    used.add(index)
                    found += 1
                    break
        false += len(boxes) - len(used)
    return {
        "recall": round(100 * found / max(total, 1), 1),
        "false_per_frame": round(false / len(records), 3),
        "ms_per_frame": round(1000 * spent / len(records), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="a jobs/make_frames.py output folder")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    data = Path(args.data)
    records = [json.loads(line) for line in (data / "frames.jsonl").read_text().splitlines()]
    records = records[: args.frames]
    settings = load_faces()
    before = settings.model_copy(update=dict(whole_pass="always", scan_pixels=256))
    candidates = {
        "BlazeFace: short range scans, the last covering the image; full range on small "
        "images (shipped)": sparkface_detector(settings),
        "BlazeFace: full range whole + short range scans at 256 px (before)": sparkface_detector(
            before
        ),
        "BlazeFace: full range whole + short range on 256-px tiles (before that)": tiled_detector(
            before
        ),
        "BlazeFace: full range, whole image only": whole_image_only(settings),
    }
    try:
        candidates["MTCNN (mtcnn 1.0.0)"] = mtcnn_detector()
    except ImportError:
        print("mtcnn is not installed: pip install mtcnn==1.0.0 to compare it")
    faces = sum(1 for r in records for f in r["faces"] if f["side"] >= 48)
    print(f"{len(records)} frames, {faces} faces of 48 px and more")
    print("| detector | recall | false faces / frame | ms / frame (1 process) |")
    print("|---|---|---|---|")
    for name, boxes_of in candidates.items():
        result = score(boxes_of, records, data / "frames")
        values = (f"{result['recall']}%", result["false_per_frame"], result["ms_per_frame"])
        print(f"| {name} | " + " | ".join(str(value) for value in values) + " |")


if __name__ == "__main__":
    main()
