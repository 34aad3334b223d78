"""spark-submit jobs/measure_template.py --input FACES [--faces N]: the landmark template of the
training crops, as conf/faces.yaml's `template` wants it: BlazeFace's keypoints (right eye, left
eye, nose tip, mouth centre) found on N training-split crops (default 2000), averaged, in the
crops' 200-px frame. Prints YAML, and the share of crops where a face was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sparkface.core.config import load_faces, load_ingest, load_train
from sparkface.core.labels import parse_labels
from sparkface.detect.blazeface import USED_KEYPOINTS
from sparkface.detect.faces import CROP_SIDE, FaceFinder, detect
from sparkface.spark.ingest import list_files
from sparkface.spark.runner import in_session, run_main
from sparkface.train.preparation import split_paths


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="measure_template", description=__doc__)
    parser.add_argument("--input", required=True, help="folder of UTKFace-named face crops")
    parser.add_argument("--faces", type=int, default=2000)
    parser.add_argument("--faces-config", default=None, help="default: conf/faces.yaml")
    return parser.parse_args(argv)


def train_crops(spark, input_dir: str, count: int) -> list[Path]:
    """`count` training-split crops, evenly spread over the sorted names."""
    files = parse_labels(list_files(spark, input_dir, load_ingest(None)))
    paths = split_paths(files, load_train(None), "train")
    return paths[:: max(1, len(paths) // count)][:count]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def measure() -> None:
        settings = load_faces(args.faces_config)
        paths = in_session(
            "sparkface-template",
            load_ingest(None),
            lambda s: train_crops(s, args.input, args.faces),
        )
        detector = FaceFinder(settings)
        points = []
        for path in paths:
            image = Image.open(path).convert("RGB")
            found = detect(image, detector, settings)
            if found:
                points.append(found[0].keypoints * CROP_SIDE / image.width)
        mean = np.mean(points, axis=0)
        spread = np.std(points, axis=0)
        print(f"# {len(points)} of {len(paths)} training crops with a face; mean (sd) in px")
        print("template:")
        for name, (x, y), (sx, sy) in zip(USED_KEYPOINTS, mean, spread, strict=True):
            print(f"  - [{x:.1f}, {y:.1f}]   # {name} (sd {sx:.1f}, {sy:.1f})")

    return run_main("measure_template", measure)


if __name__ == "__main__":
    sys.exit(main())
