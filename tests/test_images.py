from __future__ import annotations

import numpy as np
import pytest

from sparkface.core.images import ImageError, ImageSpec, decode_face
from tests.conftest import bad_and_odd_files, face_jpeg

SPEC = ImageSpec(size=32)
CASES = bad_and_odd_files()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_odd_file_decodes_or_names_its_fault(name):
    data, expected_error = CASES[name]
    if expected_error is None:
        face = decode_face(data, SPEC)
        assert face.pixels.shape == (32, 32, 3)
        assert face.pixels.dtype == np.uint8
    else:
        with pytest.raises(ImageError, match=expected_error):
            decode_face(data, SPEC)


def test_exif_orientation_is_applied():
    data, _ = CASES["rotated.jpg"]
    face = decode_face(data, SPEC)
    assert (face.width, face.height) == (30, 60)  # stored 60x30, shown rotated


def test_transparent_pixels_become_white():
    import io

    from PIL import Image

    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    face = decode_face(buffer.getvalue(), SPEC)
    assert face.pixels.min() == 255


def test_sixteen_bit_grey_keeps_its_range():
    face = decode_face(CASES["sixteen_bit.png"][0], SPEC)
    assert face.pixels.max() > 200 and face.pixels.min() < 50


def test_file_size_limit():
    with pytest.raises(ImageError, match="file too large"):
        decode_face(face_jpeg(1), ImageSpec(size=32, max_file_bytes=100))


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageError, match="image too large: 48x48"):
        decode_face(face_jpeg(1), ImageSpec(size=32, max_pixels=100))


def test_decoding_is_pillows_centre_crop_and_bilinear_resize_and_draft_changes_little():
    import io

    from PIL import Image

    data = face_jpeg(5, (200, 160))
    full = decode_face(data, ImageSpec(size=64, draft=False)).pixels
    reference = Image.open(io.BytesIO(data)).convert("RGB").crop((20, 0, 180, 160))
    reference = reference.resize((64, 64), Image.Resampling.BILINEAR, reducing_gap=None)
    np.testing.assert_array_equal(full, np.asarray(reference))
    drafted = decode_face(data, ImageSpec(size=64)).pixels
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 6


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_damaged_files_never_raise_anything_but_image_error(fmt):
    """Flip, cut and splice bytes of valid files: decode or ImageError, nothing else."""
    rng = np.random.default_rng(42)
    original = bytearray(face_jpeg(2, (40, 40), fmt=fmt))
    outcomes = set()
    for _ in range(150):
        damaged = bytearray(original)
        for position in rng.integers(0, len(damaged), rng.integers(1, 12)):
            damaged[position] = rng.integers(0, 256)
        if rng.random() < 0.3:
            damaged = damaged[: rng.integers(1, len(damaged))]
        try:
            decode_face(bytes(damaged), SPEC)
            outcomes.add("decoded")
        except ImageError:
            outcomes.add("error")
    assert "error" in outcomes  # the damage was real; and no other exception escaped


def test_importing_the_decoder_leaves_pillows_own_guard_on():
    import subprocess
    import sys

    probe = (
        "from PIL import Image, ImageFile; "
        "print(Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)"
    )
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    ours = subprocess.run(
        [sys.executable, "-c", "import sparkface.core.images; " + probe],
        capture_output=True,
        text=True,
    )
    assert plain.stdout == ours.stdout and "None" not in ours.stdout


def test_past_pillows_own_guard_a_file_is_still_too_large_not_corrupt():
    from tests.conftest import _png_with_size

    with pytest.raises(ImageError, match="image too large"):
        decode_face(_png_with_size(20000, 20000), ImageSpec(size=32, max_pixels=10**12))
