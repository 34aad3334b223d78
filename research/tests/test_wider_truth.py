"""research/jobs/wider_truth.py: WIDER's MATLAB ground truth to the text format the real-photo
benchmark reads, checked through that benchmark's own reader."""

from __future__ import annotations

import numpy as np

from research.jobs.wider_truth import truth_lines
from sparkface.evaluate.photos import read_wider_truth


def _cells(*items) -> np.ndarray:
    """A MATLAB cell array as scipy.io.loadmat returns it: an (n, 1) object array."""
    cells = np.empty((len(items), 1), dtype=object)
    for index, item in enumerate(items):
        cells[index, 0] = item
    return cells


def test_the_mat_file_becomes_boxes_and_marks_per_photo(tmp_path):
    boxes = np.array([[10, 20, 30, 40], [50, 60, 70, 80]])
    mat = {
        "event_list": _cells(np.array(["0--Parade"])),
        "file_list": _cells(_cells(np.array(["a"]), np.array(["b"]))),
        "face_bbx_list": _cells(_cells(boxes, np.zeros((0, 4)))),
    }
    for offset, mark in enumerate(("blur", "expression", "illumination", "invalid", "occlusion")):
        mat[f"{mark}_label_list"] = _cells(_cells(np.array([[offset], [2]]), np.zeros((0, 1))))
    mat["pose_label_list"] = _cells(_cells(np.array([[1], [0]]), np.zeros((0, 1))))
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(truth_lines(mat)) + "\n")
    truth = read_wider_truth(path)
    assert list(truth) == ["0--Parade/a.jpg", "0--Parade/b.jpg"]
    first, second = truth["0--Parade/a.jpg"]
    assert first.box == (10, 20, 30, 40) and second.box == (50, 60, 70, 80)
    assert first.attributes == dict(
        blur=0, expression=1, illumination=2, invalid=3, occlusion=4, pose=1
    )
    assert second.attributes["occlusion"] == 2 and second.attributes["pose"] == 0
    assert truth["0--Parade/b.jpg"] == []
