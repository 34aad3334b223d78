"""research/benchmarks/view_probe.py: the looks at a face averaged."""

from __future__ import annotations

import numpy as np

from research.benchmarks.view_probe import right, zoomed


def test_a_closer_look_enlarges_the_face_about_its_centre():
    face = np.zeros((1, 64, 64, 3), np.uint8)
    face[0, 24:40, 24:40] = 255  # a 16-pixel square in the middle
    assert np.array_equal(zoomed(face, 1.0), face)
    closer, farther = zoomed(face, 1.25)[0, :, :, 0], zoomed(face, 0.8)[0, :, :, 0]
    assert (closer > 128).sum() == 20 * 20 and closer[32, 32] == 255
    assert (farther > 128).sum() < 16 * 16 and farther[0, 0] == 0


def test_each_head_is_judged_on_the_faces_labelled_for_it():
    faces = {
        "gender_index": np.array([0, 1, 1]),
        "race_index": np.array([2, -1, 0]),
        "age": np.array([np.nan, np.nan, 30.0]),
        "age_low": np.array([10.0, 20.0, 30.0]),
        "age_high": np.array([19.0, 29.0, 30.0]),
        "age_group_index": np.array([np.nan, np.nan, 3.0]),
    }
    outputs = {
        "gender": np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]),
        "race": np.eye(5)[[2, 0, 1]],
        "age": np.array([[0.08], [0.35], [0.3]]),  # years / 100: 8, 35, 30
        "age_group": np.eye(8)[[0, 0, 3]],
    }
    judged = right(outputs, faces)
    assert judged["gender"].tolist() == [True, True, False]
    assert judged["race"][[0, 2]].tolist() == [1.0, 0.0] and np.isnan(judged["race"][1])
    # 8 years: below the first bin, its nearest end; 35: beyond the last labelled bin (20-29).
    assert judged["age"].tolist() == [1.0, 1.0, 1.0]
