"""Face detectors side by side on the same frames (jobs/make_frames.py output; use a validation-
split set to choose): recall of the pasted faces of 48 px and more, false faces per frame, and
milliseconds per frame in one process, measured in one run.

    pip install mtcnn==1.0.0    # only for this comparison; sparkface does not depend on it
    python benchmarks/compare_detectors.py --data out/frames-validation --frames 200

Candidates: sparkface's BlazeFace pipeline (conf/faces.yaml: full range on the whole image, short
range on tiles), the same with full range on the tiles too, BlazeFace full range on the whole image
alone, and MTCNN (mtcnn 1.0.0, its defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sparkface.core.config import load_faces  # noqa: E402
from sparkface.detect.faces import FaceFinder, detect  # noqa: E402


def sparkface_detector(settings):
    finder = FaceFinder(settings)
    return lambda image: [face.box for face in detect(image, finder, settings)]


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
    candidates = {
        "BlazeFace: full range whole + short range tiles (shipped)": sparkface_detector(settings),
        "BlazeFace: full range whole + full range tiles": sparkface_detector(
            dataclasses.replace(settings, tile_detector="full")
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
