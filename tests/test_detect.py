"""Finding and aligning faces (sparkface.detect): scans at small faces' scales, the similarity
transform, the aligned crop and its borders, and the detector on real faces pasted into frames
(the shared data set's)."""

from __future__ import annotations

import hashlib
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from sparkface.core.config import ConfigError, FacesConfig, load_faces, validated
from sparkface.core.images import ImageError, ImageSpec
from sparkface.detect.blazeface import MODEL_FILES, BlazeFace, Detection, anchors, model_path
from sparkface.detect.faces import (
    CROP_SIDE,
    FaceFinder,
    _whole_yunet,
    align,
    detect,
    faces_in,
    scan_scales,
    similarity,
)
from sparkface.detect.yunet import MODEL_FILE as YUNET_FILE
from sparkface.detect.yunet import YuNet
from sparkface.train.frames import background, make_frame
from tests.conftest import SHARED_FACES

SETTINGS = load_faces()
# BlazeFace's own passes (detector: full, as before YuNet was the default).
BLAZEFACE = SETTINGS.model_copy(update=dict(detector="full", min_confidence=0.55))
SPEC = ImageSpec(size=48)


def real_faces(count: int) -> list:
    if not SHARED_FACES.is_dir():
        pytest.skip("needs the shared UTKFace crops (../shared/data/utkface)")
    return sorted(SHARED_FACES.iterdir())[1000 : 1000 + count * 37 : 37]


@pytest.fixture(scope="module")
def detector():
    return FaceFinder(SETTINGS)


def jpeg(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **save)
    return buffer.getvalue()


def test_scans_look_at_the_image_at_each_small_face_scale_while_it_is_larger():
    # 256-px windows, then 768, fill the 128-px input; 2304 is past the image.
    assert scan_scales(1280, 720, 256, 128) == [0.5, 128 / 768]
    assert scan_scales(640, 480, 256, 128) == [0.5]
    assert scan_scales(300, 200, 256, 128) == []  # small enough for the whole-image pass alone
    # Covering: one more scan whose window (3 x the last) takes in the whole image.
    assert scan_scales(640, 480, 288, 128, cover=True) == [128 / 288, 128 / 864]
    assert scan_scales(300, 200, 288, 128, cover=True) == []


def test_a_scanned_frame_finds_its_large_faces_in_the_covering_scan_without_the_whole_pass(
    monkeypatch,
):
    """A face of 420 px in a 640x480 frame: too large for the scan at small faces' scale, found by
    the last scan that covers the frame; the whole-image pass (here made to fail) is not run."""
    finder = FaceFinder(BLAZEFACE)
    face = Image.open(real_faces(1)[0]).convert("RGB").resize((420, 420))
    frame = background(np.random.default_rng(6), 640, 480)
    frame.paste(face, (110, 30))
    small_scale = scan_scales(640, 480, SETTINGS.scan_pixels, 128)
    assert len(small_scale) == 1
    near = [
        f
        for f in finder.scan.detect_scaled(frame, small_scale[0], SETTINGS.scan_min_confidence)
        if math.hypot(f.box[0] + f.box[2] / 2 - 320, f.box[1] + f.box[3] / 2 - 240) < 100
    ]
    assert near == []

    def whole_pass(*_args):
        raise AssertionError("the whole-image pass ran on a scanned frame")

    monkeypatch.setattr(finder.whole, "detect", whole_pass)
    (found,) = detect(frame, finder, BLAZEFACE)
    x, y, w, h = found.box
    assert math.hypot(x + w / 2 - 320, y + h / 2 - 240) < 60 and 300 < w < 500


def test_anchors_of_a_larger_input_extend_the_models_own_grid():
    own = anchors("short")
    assert own.shape == (896, 2)  # 16 x 16 cells x 2, then 8 x 8 cells x 6
    np.testing.assert_allclose(own[:2], [[4, 4], [4, 4]])
    np.testing.assert_allclose(own[512:518], [[8, 8]] * 6)
    wide = anchors("short", 64, 96)
    assert wide.shape == (8 * 12 * 2 + 4 * 6 * 6, 2)
    # Row by row: the second anchor pair of a 12-cell row is one stride to the right.
    np.testing.assert_allclose(wide[2], [12, 4])
    np.testing.assert_allclose(wide[24], [4, 12])


def test_a_scaled_pass_finds_small_faces_where_they_are(tmp_path):
    """The short-range model over a whole 640x480 frame scaled by half (one non-square input)
    finds pasted faces of 48-70 px at their places; at its own 128x128 input, the frame
    letterboxed, it does not."""
    sources = real_faces(3)
    frame = background(np.random.default_rng(4), 640, 480)
    spots = [(90, 380, 56), (560, 70, 64), (330, 250, 50)]
    for source, (x, y, side) in zip(sources, spots, strict=True):
        face = Image.open(source).convert("RGB").resize((side, side))
        frame.paste(face, (x - side // 2, y - side // 2))
    short = BlazeFace("short")
    found = short.detect_scaled(frame, 0.5, SETTINGS.scan_min_confidence)
    assert len(found) == 3
    for x, y, side in spots:
        nearest = min(
            found,
            key=lambda f: math.hypot(f.box[0] + f.box[2] / 2 - x, f.box[1] + f.box[3] / 2 - y),
        )
        bx, by, bw, bh = nearest.box
        assert math.hypot(bx + bw / 2 - x, by + bh / 2 - y) < 0.25 * side
        assert 0.4 * side < bw < 1.3 * side
        assert bx <= nearest.keypoints[0][0] < nearest.keypoints[1][0] <= bx + bw
    assert len(short.detect(frame, SETTINGS.scan_min_confidence)) < 3


def test_similarity_recovers_rotation_scale_and_shift_without_shear():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 200, (4, 2))
    angle, scale, shift = math.radians(17), 1.7, np.array([12.0, -30.0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = points @ (scale * rotation).T + shift
    found = similarity(points, moved)
    np.testing.assert_allclose(found[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(found[:, 2], shift, atol=1e-9)
    # Points that no similarity fits (a shear): the result is still a similarity.
    sheared = points @ np.array([[1.0, 0.4], [0.0, 1.0]]).T
    linear = similarity(points, sheared)[:, :2]
    assert abs(linear[0, 0] - linear[1, 1]) < 1e-9 and abs(linear[0, 1] + linear[1, 0]) < 1e-9


def test_keypoints_on_the_template_give_back_the_crop_itself():
    rng = np.random.default_rng(1)
    crop = Image.fromarray(rng.integers(0, 255, (CROP_SIDE, CROP_SIDE, 3), dtype=np.uint8))
    aligned = align(crop, np.array(SETTINGS.template), SETTINGS)
    assert aligned.size == (CROP_SIDE, CROP_SIDE)
    difference = np.abs(np.asarray(aligned, int) - np.asarray(crop, int))
    assert difference.max() <= 1  # the identity, up to rounding in the resampling


def test_a_crop_reaching_past_the_image_is_filled_by_reflection_not_black():
    grey = Image.new("RGB", (CROP_SIDE, CROP_SIDE), (120, 130, 140))
    # A face half the template's size at the image's corner: the crop reaches 50 px past it.
    half = np.array(SETTINGS.template) * 0.5 - 50
    reflected = np.asarray(align(grey, half, SETTINGS))
    assert (reflected == [120, 130, 140]).all()
    black = np.asarray(align(grey, half, SETTINGS.model_copy(update=dict(border="black"))))
    assert 0.6 < (black.sum(axis=2) == 0).mean() < 0.9


def test_the_detectors_ship_with_sparkface_as_their_notice_records_them():
    notice = (model_path("full").parent / "NOTICE.md").read_text()
    recorded = dict(re.findall(r"`(\S+\.(?:tflite|onnx))` \| `([0-9a-f]{64})`", notice))
    assert sorted(recorded) == sorted([*MODEL_FILES.values(), YUNET_FILE.name])
    for variant, name in MODEL_FILES.items():
        assert hashlib.sha256(model_path(variant).read_bytes()).hexdigest() == recorded[name]
    assert hashlib.sha256(YUNET_FILE.read_bytes()).hexdigest() == recorded[YUNET_FILE.name]
    with pytest.raises(ValueError, match="unknown BlazeFace variant"):
        model_path("back")


def test_faces_in_a_frame_are_found_where_they_were_pasted(detector):
    rng = np.random.default_rng(3)
    sources = real_faces(3)
    frame, placed = make_frame(rng, sources, 3, (640, 480))
    assert len(placed) == 3
    faces, width, height = faces_in(jpeg(frame), SPEC, detector, SETTINGS)
    assert (width, height) == (640, 480)
    assert len(faces) == 3
    for face in placed:
        nearest = min(
            faces,
            key=lambda f: math.hypot(
                f.box[0] + f.box[2] / 2 - face.centre_x, f.box[1] + f.box[3] / 2 - face.centre_y
            ),
        )
        x, y, w, h = nearest.box
        assert math.hypot(x + w / 2 - face.centre_x, y + h / 2 - face.centre_y) < 0.25 * face.side
        assert 0.3 * face.side < w < 1.3 * face.side
        right_eye, left_eye = nearest.keypoints[0], nearest.keypoints[1]
        assert x <= right_eye[0] < left_eye[0] <= x + w  # in the image's pixels, inside the box
        assert nearest.crop.size == (CROP_SIDE, CROP_SIDE)
        assert 0.5 <= nearest.confidence <= 1


def test_boxes_are_in_the_pixels_of_the_image_as_shown(detector):
    """An upside-down photo (EXIF orientation 3) and a large one: boxes in the pixels of the
    image after orientation, at its full size."""
    face = Image.open(real_faces(1)[0]).convert("RGB")
    canvas = Image.new("RGB", (800, 600), (60, 90, 120))
    canvas.paste(face, (500, 300))
    upright, _, _ = faces_in(jpeg(canvas), SPEC, detector, SETTINGS)
    exif = Image.Exif()
    exif[0x0112] = 3
    flipped, _, _ = faces_in(
        jpeg(canvas.rotate(180), exif=exif.tobytes()), SPEC, detector, SETTINGS
    )
    assert len(upright) == len(flipped) == 1
    assert max(abs(a - b) for a, b in zip(upright[0].box, flipped[0].box, strict=True)) <= 6
    large = canvas.resize((3200, 2400))
    (big,) = faces_in(jpeg(large), SPEC, detector, SETTINGS)[0]
    assert big.box[0] == pytest.approx(upright[0].box[0] * 4, rel=0.04)


@pytest.mark.parametrize(
    ("size", "colour"),
    [((1, 1), (128, 128, 128)), ((10000, 20), (200, 10, 10)), ((640, 480), (128, 128, 128))],
)
def test_images_without_faces_give_none(detector, size, colour):
    faces, width, height = faces_in(jpeg(Image.new("RGB", size, colour)), SPEC, detector, SETTINGS)
    assert faces == [] and (width, height) == size


def test_no_more_than_max_faces_and_the_pixel_limit_holds(detector):
    face = Image.open(real_faces(1)[0]).convert("RGB").resize((90, 90))
    crowd = Image.new("RGB", (1280, 720), (40, 40, 40))
    for index in range(30):
        crowd.paste(face, (20 + (index % 10) * 125, 40 + (index // 10) * 220))
    limited = SETTINGS.model_copy(update=dict(max_faces=20))
    found = detect(crowd, FaceFinder(SETTINGS), limited)
    assert len(found) == 20
    assert len(detect(crowd, FaceFinder(SETTINGS), SETTINGS)) >= 28
    with pytest.raises(ImageError, match="image too large"):
        faces_in(jpeg(Image.new("RGB", (8000, 6000))), ImageSpec(size=48), detector, SETTINGS)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mode", "find", "mode: Input should be 'aligned' or 'detect', got 'find'"),
        ("min_confidence", 1.5, "min_confidence: Input should be less than 1"),
        ("scan_min_confidence", 0, "scan_min_confidence: Input should be greater than 0"),
        ("scan_detector", "full", "scan_detector: Input should be 'short'"),
        ("template", ((1, 2),), "template: needs four"),
        ("border", "blur", "border: Input should be 'reflect' or 'black'"),
        ("working_pixels", 100, r"working_pixels: must be >= scan_pixels \(272\)"),
        ("refine_window", 0.5, "refine_window: 0 .off. or 1-4"),
        ("wide_context", 3, "wide_context: Input should be less than or equal to 2"),
        ("whole_pass", "never", "whole_pass: Input should be 'unscanned' or 'always'"),
        ("max_faces", True, "max_faces: Input should be a valid integer, got True"),
        ("min_face_pixels", 40.0, "min_face_pixels: Input should be a valid integer"),
    ],
)
def test_bad_face_settings_are_named(key, value, message):
    with pytest.raises(ConfigError, match=message):
        validated(FacesConfig, {key: value}, "faces.yaml")


def test_a_face_that_fills_a_tight_crop_is_found_with_the_wider_border():
    """Crops cut 15% on each side: the face fills the image, and BlazeFace's full-range model
    finds it only once it is small in its input; the wider second look finds every one. YuNet
    (the default) finds every one at the first look."""
    crops = []
    for path in real_faces(12):
        image = Image.open(path).convert("RGB")
        crops.append(jpeg(image.crop((30, 30, 170, 170))))
    blazeface = FaceFinder(BLAZEFACE)
    narrow = BLAZEFACE.model_copy(update=dict(wide_context=BLAZEFACE.context))
    found = [len(faces_in(crop, SPEC, blazeface, BLAZEFACE)[0]) for crop in crops]
    without = [len(faces_in(crop, SPEC, blazeface, narrow)[0]) for crop in crops]
    assert found == [1] * len(crops)
    assert without.count(0) >= 2
    yunet_narrow = SETTINGS.model_copy(update=dict(wide_context=SETTINGS.context))
    yunet = FaceFinder(SETTINGS)
    assert [len(faces_in(crop, SPEC, yunet, yunet_narrow)[0]) for crop in crops] == [1] * 12


def test_keypoints_found_again_where_the_face_fills_the_window_land_nearer_the_truth(detector):
    """Faces of 90-130 px pasted upright into a 1280x720 frame: their keypoints should be those
    found on the crop itself, scaled and shifted to where it was pasted. Found small (in the
    whole frame, or at a scan's scale) they are several pixels off; found again in a window twice
    the box's side, they land nearer."""
    rng = np.random.default_rng(5)
    frame = background(rng, 1280, 720)
    pasted = []
    for index, path in enumerate(real_faces(6)):
        side = 90 + 8 * index
        crop = Image.open(path).convert("RGB")
        left, top = 60 + 200 * index, 150 + 60 * (index % 3)
        frame.paste(crop.resize((side, side), Image.Resampling.LANCZOS), (left, top))
        own = detect(crop, detector, SETTINGS)[0].keypoints
        pasted.append(own * side / CROP_SIDE + [left, top])
    data = jpeg(frame)
    unrefined = SETTINGS.model_copy(update=dict(refine_window=0))
    errors = {}
    for name, settings in (("refined", SETTINGS), ("as found", unrefined)):
        found = faces_in(data, SPEC, detector, settings)[0]
        assert len(found) == len(pasted)
        errors[name] = np.mean(
            [
                min(np.linalg.norm(f.keypoints - truth, axis=1).mean() for f in found)
                / np.linalg.norm(truth[0] - truth[1])
                for truth in pasted
            ]
        )
    assert errors["refined"] < 0.8 * errors["as found"]


def test_yunet_cells_decode_into_boxes_and_keypoints_in_input_pixels():
    """One cell scoring above the threshold on the stride-16 map of a 64x32 input: its box and
    keypoints from the cell's offsets (in cells, log size), the mouth centre from its corners."""
    from sparkface.detect.yunet import decode

    width, height = 64, 32
    raw = {}
    for stride in (8, 16, 32):
        cells = (width // stride) * (height // stride)
        raw[f"cls_{stride}"] = np.full((1, cells, 1), 0.1, np.float32)
        raw[f"obj_{stride}"] = np.full((1, cells, 1), 0.1, np.float32)
        raw[f"bbox_{stride}"] = np.zeros((1, cells, 4), np.float32)
        raw[f"kps_{stride}"] = np.zeros((1, cells, 10), np.float32)
    cell = 1 * (width // 16) + 2  # row 1, column 2
    raw["cls_16"][0, cell], raw["obj_16"][0, cell] = 0.9, 0.9
    raw["bbox_16"][0, cell] = [0.5, 0.25, np.log(2.0), 0.0]
    raw["kps_16"][0, cell] = [0, 0, 1, 0, 0.5, 0.5, 0, 1, 1, 1]
    corners, keypoints, scores = decode(raw, width, 0.5)
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)
    centre = np.array([(2 + 0.5) * 16, (1 + 0.25) * 16])
    np.testing.assert_allclose(corners[0], [*(centre - [16, 8]), *(centre + [16, 8])])
    origin = np.array([2 * 16, 1 * 16])
    expected = origin + 16 * np.array([[0, 0], [1, 0], [0.5, 0.5], [0.5, 1]])
    np.testing.assert_allclose(keypoints[0], expected)
    assert decode(raw, width, 0.95)[0].shape == (0, 4)


def test_yunet_finds_pasted_faces_where_they_are_with_or_without_a_border():
    faces = real_faces(3)
    frame = background(np.random.default_rng(4), 1200, 800)
    places = [(100, 150, 120), (500, 300, 180), (900, 100, 90)]
    for path, (left, top, side) in zip(faces, places, strict=True):
        crop = Image.open(path).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
        frame.paste(crop, (left, top))
    yunet = YuNet()
    for border in (0, 200):
        found = yunet.detect(frame, 0.6, 640, border)
        assert len(found) == 3
        for left, top, side in places:
            near = [
                f
                for f in found
                if math.hypot(
                    f.box[0] + f.box[2] / 2 - left - side / 2,
                    f.box[1] + f.box[3] / 2 - top - side / 2,
                )
                < 0.2 * side
            ]
            assert len(near) == 1
            x, y, w, h = near[0].box
            assert 0.4 * side < w < 1.1 * side
            right_eye, left_eye, nose, mouth = near[0].keypoints
            assert x <= right_eye[0] < nose[0] < left_eye[0] <= x + w
            assert right_eye[1] < nose[1] < mouth[1]


def test_the_yunet_setting_finds_faces_through_the_same_path():
    settings = SETTINGS
    assert settings.detector == "yunet"
    finder = FaceFinder(settings)
    assert isinstance(finder.whole, YuNet) and isinstance(finder.scan, BlazeFace)
    crops = [jpeg(Image.open(path).convert("RGB")) for path in real_faces(6)]
    found = [faces_in(crop, SPEC, finder, settings)[0] for crop in crops]
    assert [len(faces) for faces in found] == [1] * len(crops)
    assert all(faces[0].crop.size == (CROP_SIDE, CROP_SIDE) for faces in found)


def test_yunet_keeps_large_faces_from_a_lower_score(monkeypatch):
    """A turned or half-hidden large face scores low: from large_face_pixels on, it is kept from
    large_min_confidence; a small face needs min_confidence."""
    finder = FaceFinder(SETTINGS)
    keypoints = np.zeros((4, 2))
    candidates = [
        Detection((100, 100, 200, 220), 0.3, keypoints),  # large, low score: kept
        Detection((500, 100, 60, 60), 0.3, keypoints),  # small, low score: dropped
        Detection((700, 100, 60, 60), 0.9, keypoints),  # small, high score: kept
        Detection((100, 500, 200, 200), 0.1, keypoints),  # large, too low even so: dropped
    ]
    asked = []

    def whole(_image, min_confidence, _side, _border):
        asked.append(min_confidence)
        return [c for c in candidates if c.confidence >= min_confidence]

    monkeypatch.setattr(finder.whole, "detect", whole)
    frame = Image.new("RGB", (1024, 768))
    kept = _whole_yunet(frame, finder, SETTINGS)
    assert asked == [SETTINGS.large_min_confidence] * len(SETTINGS.detector_pixels)
    assert {c.box[0] for c in kept} == {100, 700}
    strict = SETTINGS.model_copy(update=dict(large_min_confidence=SETTINGS.min_confidence))
    assert {c.box[0] for c in _whole_yunet(frame, finder, strict)} == {700}
