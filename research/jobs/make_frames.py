"""spark-submit jobs/make_frames.py --input FACES --output OUT [--split test|validation]: camera-
like test data from one split's faces of trainable age (--split: test, the default, for reporting;
validation for choosing settings): OUT/frames/ (--frames, 640x480 and 1280x720, 0-4 faces each)
with the truth in OUT/frames.jsonl; OUT/{looser,tighter,shifted,tilted}/ (--faces crops re-framed)
with OUT/reframed.jsonl; OUT/crops/ and OUT/frame_faces/ (the re-framed and the pasted faces as
they are).

Spark picks the split with the training code's own hash of the file name; the images are made on
the driver (a few hundred files).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from research.frames import write_frames, write_reframed
from sparkface.core.config import load_ingest, load_train
from sparkface.core.labels import parse_labels
from sparkface.spark.ingest import list_files
from sparkface.spark.runner import in_session, run_main
from sparkface.train.preparation import split_paths


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make_frames", description=__doc__)
    parser.add_argument("--input", required=True, help="folder of UTKFace-named face crops")
    parser.add_argument("--output", required=True)
    parser.add_argument("--frames", type=int, default=400, help="frames to make (default 400)")
    parser.add_argument("--faces", type=int, default=500, help="faces to re-frame (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split",
        default="test",
        choices=["test", "validation"],
        help="whose faces: test (for reporting) or validation (for choosing settings)",
    )
    parser.add_argument(
        "--train-config", default=None, help="a recipe (default: conf/models/sparkface-cnn.yaml)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def make() -> None:
        config = load_train(args.train_config)
        sources = in_session(
            "sparkface-make-frames",
            load_ingest(None),
            lambda spark: split_paths(
                parse_labels(list_files(spark, args.input, load_ingest(None))),
                config,
                args.split,
                labelled_only=True,
            ),
        )
        output = Path(args.output)
        output.mkdir(parents=True, exist_ok=True)
        frames = list(write_frames(sources, output, args.frames, args.seed))
        # The pasted faces as they are, to score as crops beside what detect mode finds.
        frame_faces = output / "frame_faces"
        frame_faces.mkdir(exist_ok=True)
        by_name = {source.name: source for source in sources}
        for frame in frames:
            for face in frame["faces"]:
                shutil.copy(by_name[face["source"]], frame_faces / face["source"])
        chosen = sources[:: max(1, len(sources) // args.faces)][: args.faces]
        crops = output / "crops"
        crops.mkdir(exist_ok=True)
        for source in chosen:
            shutil.copy(source, crops / source.name)
        reframed = list(write_reframed(chosen, output, args.seed + 1))
        faces = sum(len(frame["faces"]) for frame in frames)
        print(
            f"{len(frames)} frames with {faces} faces, {len(reframed)} re-framed crops of "
            f"{len(chosen)} faces, from {len(sources)} {args.split}-split faces, in {output}"
        )

    return run_main("make_frames", make)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
