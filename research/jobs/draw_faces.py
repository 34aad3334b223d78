"""python jobs/draw_faces.py IMAGE [IMAGE ...] --output OUT.png [--model MODEL]: every face found
in the images, scored by the model, drawn on them (box, landmarks, labels), the images side by side
in one PNG. The same detection, alignment and model as `jobs/score.py --faces detect`, in one
process, for a look at a few images; the scoring job is the way to score many.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image, ImageOps

from research.picture import draw_faces, side_by_side
from sparkface.core.config import load_faces
from sparkface.core.package import default_model_dir, flip_for, load_bundle
from sparkface.detect.faces import FaceFinder
from sparkface.score.transform import cached_model, detect_batch
from sparkface.spark.runner import run_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="draw_faces", description=__doc__)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--faces-config", default=None, help="default: conf/faces.yaml")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def draw() -> None:
        bundle = load_bundle(args.model or str(default_model_dir()))
        settings = load_faces(args.faces_config)
        finder, model = FaceFinder(settings), cached_model(bundle)
        flip = flip_for(bundle.descriptor, "detect")
        drawn = []
        for path in args.images:
            data = Path(path).read_bytes()
            columns, _ = detect_batch([data], [len(data)], bundle, model, flip, finder, settings)
            rows = [
                dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)
            ]
            for row in rows:
                print(
                    f"{path}: {row['status']} {row.get('face_box')} {row.get('gender')} "
                    f"{row.get('race')} {row.get('age_group')}"
                )
            with Image.open(path) as image:
                drawn.append(draw_faces(ImageOps.exif_transpose(image), rows))
        side_by_side(drawn).save(args.output)
        print(f"wrote {args.output}")

    return run_main("draw_faces", draw)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
