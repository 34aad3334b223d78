"""Training faces as `--faces detect` gives them (sparkface.train.faces): the same path as scoring,
views as a camera might give them, and nothing lost where the detector finds no face."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sparkface.core.images import ImageSpec, decode_face, square_pixels
from sparkface.detect.faces import FaceFinder, faces_in
from sparkface.train.faces import FALLBACK, choose_view, detected_faces
from tests.test_detect import SETTINGS, real_faces

SPEC = ImageSpec(size=48)


@pytest.fixture(scope="module")
def finder():
    return FaceFinder(SETTINGS)


def run(contents, views, seeds, finder):
    return list(detected_faces(contents, views, seeds, SPEC, finder, SETTINGS))


def test_views_take_their_shares_of_the_hash_in_order():
    views = {"crop": 0.3, "frame": 0.5, "tighter": 0.2}
    positions = np.linspace(0, 0.999999, 1000)
    chosen = [choose_view(views, p) for p in positions]
    assert chosen[0] == "crop" and chosen[-1] == "tighter"
    assert chosen.count("crop") == 300 and chosen.count("frame") == 500
    assert chosen.count("tighter") == 200


def test_a_crop_is_the_face_scoring_would_find_in_it(finder):
    """The crop view is scoring's detect path itself: the face nearest the centre, aligned."""
    for path in real_faces(4):
        content = path.read_bytes()
        ((pixels, width, height, view, error),) = run([content], ["crop"], [1], finder)
        found, _, _ = faces_in(content, SPEC, finder, SETTINGS)
        assert error is None and view == "crop" and (width, height) == (200, 200)
        np.testing.assert_array_equal(pixels, square_pixels(found[0].crop, 48))
        # Aligned by the detector, not the crop's centre square.
        assert not np.array_equal(pixels, decode_face(content, SPEC).pixels)


def test_a_face_shown_in_a_frame_is_found_there_and_the_same_seed_shows_it_the_same(finder):
    contents = [path.read_bytes() for path in real_faces(4)]
    first = run(contents, ["frame"] * 4, [7, 8, 9, 10], finder)
    again = run(contents, ["frame"] * 4, [7, 8, 9, 10], finder)
    other = run(contents, ["frame"] * 4, [17, 18, 19, 20], finder)
    crops = run(contents, ["crop"] * 4, [7, 8, 9, 10], finder)
    assert [row[3] for row in first] == ["frame"] * 4
    differences = []
    for shown, repeat, elsewhere, crop in zip(first, again, other, crops, strict=True):
        np.testing.assert_array_equal(shown[0], repeat[0])
        assert not np.array_equal(shown[0], elsewhere[0])
        differences.append(np.abs(shown[0].astype(int) - crop[0].astype(int)).mean())
    # The same faces, smaller, tilted, re-sampled, compressed and aligned from other keypoints:
    # near their crops on the whole (another face is 50-87 away; a small tilted one can be as far),
    # not equal to them.
    assert min(differences) > 0 and np.mean(differences) < 40


def test_no_face_falls_back_to_the_crop_and_a_bad_file_is_an_error(finder):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(buffer, format="JPEG")
    grey = buffer.getvalue()
    rows = run([grey, b"not an image", b""], ["frame", "crop", "crop"], [1, 2, 3], finder)
    pixels, width, height, view, error = rows[0]
    assert view == FALLBACK and error is None and (width, height) == (200, 200)
    np.testing.assert_array_equal(pixels, decode_face(grey, SPEC).pixels)
    assert rows[1][0] is None and "not an image" in rows[1][4]
    assert rows[2][0] is None and rows[2][4] == "empty file"
