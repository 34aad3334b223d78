"""Training-time augmentation: random, reproducible, shape-preserving, and geometrically right."""

import numpy as np
import pytest

import sparkface.train.augment as augment
from sparkface.train.augment import augment_batch


def faces(n=8, side=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def test_a_batch_keeps_its_shape_and_type_and_the_input_is_untouched():
    batch = faces()
    before = batch.copy()
    out = augment_batch(batch, np.random.default_rng(1))
    assert out.shape == batch.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(batch, before)
    assert not np.array_equal(out, batch)


def test_the_same_seed_gives_the_same_batch():
    batch = faces()
    first = augment_batch(batch, np.random.default_rng(7))
    again = augment_batch(batch, np.random.default_rng(7))
    other = augment_batch(batch, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_edges_are_extended_not_filled_with_black():
    grey = np.full((16, 32, 32, 3), 128, dtype=np.uint8)
    out = augment_batch(grey, np.random.default_rng(2))
    # A flat face stays flat under any warp; only its brightness moves, and by at most 15%.
    assert (out.reshape(16, -1).min(axis=1) == out.reshape(16, -1).max(axis=1)).all()
    assert np.abs(out.astype(int) - 128).max() <= 0.15 * 255 + 1


class _Fixed:
    """An rng whose draws are all zero, and whose flip coin says `flip`."""

    def __init__(self, flip):
        self.flip = flip

    def uniform(self, low, high, size=None):
        return np.zeros(size) if size is not None else 0.0

    def random(self):
        return 0.0 if self.flip else 1.0


@pytest.mark.parametrize("flip", [False, True])
def test_with_no_shift_zoom_or_rotation_the_warp_is_the_identity_or_the_mirror(flip):
    face = faces(1, 20)[0]
    out = augment._warp(face, _Fixed(flip))
    np.testing.assert_array_equal(out, face[:, ::-1] if flip else face)


def test_an_empty_batch_stays_empty():
    empty = np.zeros((0, 24, 24, 3), dtype=np.uint8)
    assert augment_batch(empty, np.random.default_rng(0)).shape == empty.shape


def test_light_changes_colour_blur_and_compression_and_keeps_the_geometry_draws():
    batch = faces(16, 32, seed=3)
    plain = augment_batch(batch, np.random.default_rng(5))
    lit = augment_batch(batch, np.random.default_rng(5), light=True)
    again = augment_batch(batch, np.random.default_rng(5), light=True)
    assert lit.shape == batch.shape and lit.dtype == np.uint8
    np.testing.assert_array_equal(lit, again)
    assert not np.array_equal(lit, plain)


def test_light_warms_or_cools_a_grey_face_by_opposite_red_and_blue_gains():
    grey = np.full((64, 24, 24, 3), 128, dtype=np.uint8)
    out = augment_batch(grey, np.random.default_rng(4), light=True).astype(int)
    red, blue = out[..., 0].mean(axis=(1, 2)), out[..., 2].mean(axis=(1, 2))
    green = out[..., 1].mean(axis=(1, 2))
    # Brightness and contrast move all three channels alike; warmth moves red and blue apart.
    assert np.corrcoef(red - green, blue - green)[0, 1] < -0.9
    assert np.abs(red - blue).max() > 20


def test_light_blurs_some_faces():
    stripes = np.zeros((64, 24, 24, 3), dtype=np.uint8)
    stripes[:, :, ::2] = 255
    plain = augment_batch(stripes, np.random.default_rng(6)).astype(int)
    lit = augment_batch(stripes, np.random.default_rng(6), light=True).astype(int)
    # Edge strength: the mean absolute difference of neighbouring columns.
    edges = lambda b: np.abs(np.diff(b, axis=2)).mean(axis=(1, 2, 3))  # noqa: E731
    assert (edges(lit) < 0.8 * edges(plain)).mean() > 0.2


def test_gray_turns_that_share_of_faces_grey_and_leaves_the_rest_as_before():
    batch = faces(200, 16, seed=9)
    plain = augment_batch(batch, np.random.default_rng(3), light=True)
    greyed = augment_batch(batch, np.random.default_rng(3), light=True, gray=0.3)
    grey = (greyed[..., 0] == greyed[..., 1]).all(axis=(1, 2)) & (
        greyed[..., 1] == greyed[..., 2]
    ).all(axis=(1, 2))
    assert 0.2 < grey.mean() < 0.4
    # The faces left in colour are the same draws as without `gray`.
    np.testing.assert_array_equal(greyed[~grey], plain[~grey])
    luminance = plain[grey].astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(greyed[grey][..., 0] - luminance).max() <= 0.5 + 1e-9
