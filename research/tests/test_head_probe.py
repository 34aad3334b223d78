"""research/benchmarks/head_probe.py: heads fitted again on a network's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from research.benchmarks.head_probe import (
    FIVE_OF_SEVEN,
    SEVEN,
    cell_weights,
    fit_head,
    masks,
    seven_masks,
    seven_races,
)


def test_fairface_races_are_read_by_path_and_others_are_unknown(tmp_path, monkeypatch):
    (tmp_path / "labels.csv").write_text(
        "file,age,gender,race\ntrain/1.jpg,20-29,Male,Latino_Hispanic\n"
        "train/2.jpg,3-9,Female,Southeast Asian\n"
    )
    paths = np.array([f"file:{tmp_path}/train/2.jpg", f"{tmp_path}/train/1.jpg", "utk/9.jpg"])
    monkeypatch.chdir(tmp_path)  # a labels table named relative to here, as the default is
    seven = seven_races(paths, [Path("labels.csv")])
    assert [SEVEN[i] if i >= 0 else None for i in seven] == [
        "Southeast Asian", "Latino_Hispanic", None,
    ]  # fmt: skip
    # and they fall into the project's asian (2) and others (4)
    assert FIVE_OF_SEVEN[seven[:2]].tolist() == [2, 4]


def test_a_face_with_five_races_allows_every_one_of_seven_its_class_covers():
    allowed = seven_masks(np.array([2, 4, 4, 0]), np.array([-1, -1, 6, -1]))
    names = [[SEVEN[i] for i in np.flatnonzero(row)] for row in allowed]
    assert names == [
        ["East Asian", "Southeast Asian"],  # a UTKFace asian
        ["Latino_Hispanic", "Middle Eastern"],  # a UTKFace other
        ["Middle Eastern"],  # FairFace's own label
        ["White"],
    ]


def test_every_race_and_gender_cell_weighs_the_same_and_unlabelled_faces_one():
    gender = np.array([0, 0, 0, 1, 0, 1, 1])
    race = np.array([0, 0, 0, 0, 1, -1, 4])
    weights = cell_weights(gender, race)
    labelled = race >= 0
    cells = race[labelled] * 2 + gender[labelled]
    totals = {cell: weights[labelled][cells == cell].sum() for cell in set(cells.tolist())}
    assert len(set(np.round(list(totals.values()), 6))) == 1, totals
    assert weights[5] == 1.0
    assert weights[0] < weights[3]  # three white men against one white woman


@pytest.mark.slow  # trains a Keras head
def test_a_head_learns_from_partial_labels_where_the_exact_ones_say_which():
    # Two clusters of features; class 0 lies at -1 and class 1 at +1. Most faces know only "0 or
    # 1" (both allowed), a few are exact: the head must still part the clusters the right way
    # (soft labels, an even split of the allowed mass, part them worse: 89% here).
    rng = np.random.default_rng(0)
    side = np.repeat([0, 1], 200)
    features = (2 * side - 1)[:, None] + 0.3 * rng.standard_normal((400, 2))
    targets = np.ones((400, 3), dtype=np.float32)
    targets[:, 2] = 0
    exact = rng.choice(400, 40, replace=False)
    targets[exact] = masks(side[exact], 3)
    head = fit_head(features.astype(np.float32), targets, hidden=0, epochs=40, batch=40)
    answers = head.predict(features.astype(np.float32), verbose=0)
    assert (answers.argmax(1) == side).mean() > 0.95
    assert answers[:, 2].mean() < 0.25  # a class no label allows loses its third of the mass
