"""python research/jobs/wider_truth.py wider_face_val.mat OUT.txt: WIDER FACE's ground truth from
its MATLAB file (as github:biubug6/Pytorch_Retinaface ships it in widerface_evaluate/ground_truth/)
to the text format benchmarks/detect_photos.py reads: per photo, its path (event/name.jpg), its
face count, then a line per face `x y w h blur expression illumination invalid occlusion pose`.
Needs scipy (`pip install scipy`), which sparkface does not."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MARKS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


def truth_lines(mat: dict) -> list[str]:
    """The text format's lines, events and photos in the file's order."""
    lines = []
    for index, event in enumerate(mat["event_list"][:, 0]):
        name = str(event[0])
        for photo_index, photo in enumerate(mat["file_list"][index, 0][:, 0]):
            boxes = np.asarray(mat["face_bbx_list"][index, 0][photo_index, 0]).reshape(-1, 4)
            marks = [
                np.asarray(mat[f"{mark}_label_list"][index, 0][photo_index, 0]).reshape(-1)
                for mark in MARKS
            ]
            lines += [f"{name}/{photo[0]}.jpg", str(len(boxes))]
            for face, box in enumerate(boxes):
                values = [int(v) for v in box] + [int(m[face]) for m in marks]
                lines.append(" ".join(map(str, values)))
            if not len(boxes):
                lines.append("0 0 0 0 0 0 0 0 0 0")
    return lines


def main(argv: list[str] | None = None) -> int:
    from scipy.io import loadmat

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mat")
    parser.add_argument("output")
    args = parser.parse_args(argv)
    Path(args.output).write_text("\n".join(truth_lines(loadmat(args.mat))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
