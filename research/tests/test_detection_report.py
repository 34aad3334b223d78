"""The detect-mode evaluation's arithmetic (research.detection): the most confident face
of each file, and the gap between two scorings of the same faces with its bootstrap interval."""

from __future__ import annotations

import pandas as pd

from research.detection import first_faces, paired_gap
from sparkface.core.config import load_labels

GROUPS = load_labels(None).groups


def faces(count: int, right: int, head: str = "gender") -> pd.DataFrame:
    """`count` faces, all men (gender 0) in their names, the first `right` of them predicted so."""
    names = [f"30_0_0_2017{index:04d}.jpg" for index in range(count)]
    predicted = ["male"] * right + ["female"] * (count - right)
    return pd.DataFrame({"source": names, head: predicted})


def test_a_real_gap_lies_inside_its_interval_and_the_interval_excludes_none():
    gap = paired_gap(faces(400, 200), faces(400, 400), "gender", GROUPS)
    assert gap["faces"] == 400 and gap["gap"] == 50.0
    assert 44 < gap["low"] < 50 < gap["high"] < 56


def test_the_same_scores_give_no_gap_and_faces_are_paired_by_name():
    same = paired_gap(faces(300, 150), faces(300, 150), "gender", GROUPS)
    assert same == {"faces": 300, "gap": 0.0, "low": 0.0, "high": 0.0}
    # Only faces both scored count: 100 found by detect, all right; the reference right on 50.
    found = faces(300, 300).iloc[:100]
    assert paired_gap(found, faces(300, 50), "gender", GROUPS)["gap"] == -50.0
    assert paired_gap(faces(0, 0), faces(10, 5), "gender", GROUPS) == {"faces": 0}


def test_the_first_face_of_each_file_that_scored():
    rows = pd.DataFrame(
        {
            "name": ["a.jpg", "a.jpg", "b.jpg", "c.jpg"],
            "status": ["ok", "ok", "no_face", "ok"],
            "face_index": [0, 1, None, None],
        }
    )
    first = first_faces(rows)
    assert first["source"].tolist() == ["a.jpg", "c.jpg"]
