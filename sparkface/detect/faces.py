"""Every face in an image: found by BlazeFace over the whole image and over the image scaled so
that small faces in large frames are seen at a size the detector knows, merged, and each mapped
onto the training crops' landmark template by a similarity transform into an aligned crop.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import numpy as np
from PIL import Image

from sparkface.core.config import FacesConfig
from sparkface.core.images import ImageSpec, open_image
from sparkface.detect.blazeface import BlazeFace, Detection, weighted_nms
from sparkface.detect.yunet import YuNet

CROP_SIDE = 200  # UTKFace's crops: the template's own pixels
# The face is known to be there: a weaker score than min_confidence serves to place its keypoints.
REFINE_CONFIDENCE = 0.3


class FaceFinder:
    """The detectors `detect` uses, loaded once: one for the whole image, one for its scans at
    the scales of small faces."""

    def __init__(self, settings: FacesConfig):
        if settings.detector == "yunet":
            self.whole: BlazeFace | YuNet = YuNet()
        else:
            self.whole = BlazeFace(settings.detector)
        same = settings.scan_detector == settings.detector
        self.scan = self.whole if same else BlazeFace(settings.scan_detector)


_FINDERS: dict[tuple[str, str], FaceFinder] = {}
_FINDERS_LOCK = threading.Lock()


def cached_finder(settings: FacesConfig) -> FaceFinder:
    """The face detectors, loaded once per process (a Python worker) like the model: scoring and
    training preparation share them."""
    key = (settings.detector, settings.scan_detector)
    with _FINDERS_LOCK:
        if key not in _FINDERS:
            _FINDERS[key] = FaceFinder(settings)
        return _FINDERS[key]


@dataclasses.dataclass(frozen=True)
class Face:
    """A face found in an image: its box, confidence and keypoints in the image's pixels, and its
    aligned crop (CROP_SIDE square, RGB)."""

    box: tuple[int, int, int, int]
    confidence: float
    keypoints: np.ndarray
    crop: Image.Image


def scan_scales(
    width: int, height: int, pixels: int, side: int, cover: bool = False
) -> list[float]:
    """The scales (input pixels per image pixel) at which the scan detector looks at the whole
    image, so that windows of `pixels`, 3 x `pixels`, 9 x `pixels`... image pixels fill its
    `side`-pixel input, while the image is larger than such a window: every face is then seen at
    a size the detector knows. With `cover`, an image that is scanned at all is scanned once more
    at the next scale, whose window covers the whole image (its large faces)."""
    scales = []
    while max(width, height) > pixels * 1.25:
        scales.append(side / pixels)
        pixels *= 3
    if cover and scales:
        scales.append(side / pixels)
    return scales


def _whole(image: Image.Image, finder: FaceFinder, settings: FacesConfig, context: float):
    """The whole-image pass, with a black border of `context` times the long side around it."""
    border = round(context * max(image.size))
    return finder.whole.detect(image, settings.min_confidence, border)


def detect(image: Image.Image, finder: FaceFinder, settings: FacesConfig) -> list[Detection]:
    """Faces in an RGB image, most confident first, at most max_faces: YuNet's one pass over the
    whole image (`detector: yunet`), or BlazeFace's passes (`_blazeface`); merged, the smaller
    than `min_face_pixels` dropped, and each one's keypoints refined (`refined`)."""
    if settings.detector == "yunet":
        found = _whole_yunet(image, finder, settings)
    else:
        found = _blazeface(image, finder, settings)
    if not found:
        return []
    corners = np.array([[x, y, x + w, y + h] for x, y, w, h in (f.box for f in found)])
    keypoints = np.stack([f.keypoints for f in found])
    scores = np.array([f.confidence for f in found])
    merged = [
        Detection((box[0], box[1], box[2] - box[0], box[3] - box[1]), score, points)
        for box, points, score in weighted_nms(corners, keypoints, scores)
    ]
    big_enough = [face for face in merged if min(face.box[2:]) >= settings.min_face_pixels]
    return [refined(image, face, finder, settings) for face in big_enough[: settings.max_faces]]


def _blazeface(image: Image.Image, finder: FaceFinder, settings: FacesConfig) -> list[Detection]:
    """BlazeFace's scans at the scales of small faces and its whole-image pass (with context
    around it, for faces that fill the image). With `whole_pass: unscanned`, an image large
    enough to scan gets a last scan covering it instead of the whole-image pass, which then
    serves small images (crops) alone. An image too small to scan where the whole-image pass
    finds nothing is looked at once more with the wider context: a face that fills a tight crop
    is found only when it is small in the detector's input."""
    width, height = image.size
    cover = settings.whole_pass == "unscanned"
    scales = scan_scales(width, height, settings.scan_pixels, finder.scan.side, cover)
    found = [] if cover and scales else _whole(image, finder, settings, settings.context)
    if not found and not scales and settings.wide_context != settings.context:
        found = _whole(image, finder, settings, settings.wide_context)
    for scale in scales:
        found += finder.scan.detect_scaled(image, scale, settings.scan_min_confidence)
    return found


def _whole_yunet(image: Image.Image, finder: FaceFinder, settings: FacesConfig) -> list[Detection]:
    """YuNet over the whole image at each of `detector_pixels`: an image too small to scan (a
    crop) with the context border around it, and once more with the wide one where that finds
    nothing. Faces from `min_confidence`, or from `large_min_confidence` where their box's
    shorter side is `large_face_pixels` or more."""
    width, height = image.size
    small = not scan_scales(width, height, settings.scan_pixels, finder.scan.side)
    lowest = min(settings.min_confidence, settings.large_min_confidence)
    found: list[Detection] = []
    for context in dict.fromkeys((settings.context, settings.wide_context) if small else (0.0,)):
        border = round(context * max(image.size))
        for side in settings.detector_pixels:
            found += [
                face
                for face in finder.whole.detect(image, lowest, side, border)
                if face.confidence >= settings.min_confidence
                or (
                    min(face.box[2:]) >= settings.large_face_pixels
                    and face.confidence >= settings.large_min_confidence
                )
            ]
        if found:
            break
    return found


def refined(image: Image.Image, face: Detection, finder: FaceFinder, settings: FacesConfig):
    """The face with its keypoints found again by the scan detector in a window of
    `refine_window` times its box's side around it, where the face fills the detector's input:
    a face found small (in a large frame, or at a scan's scale) has keypoints several pixels off,
    and the aligned crop with it. Its box and confidence stay; no face in the window (or
    `refine_window` 0) leaves it as it was."""
    if not settings.refine_window:
        return face
    x, y, w, h = face.box
    centre_x, centre_y = x + w / 2, y + h / 2
    half = settings.refine_window * max(w, h) / 2
    left, top = round(centre_x - half), round(centre_y - half)
    window = image.crop((left, top, left + round(2 * half), top + round(2 * half)))
    found = finder.scan.detect(window, REFINE_CONFIDENCE)
    reach = max(w, h) / 2
    near = [
        f
        for f in found
        if math.hypot(f.box[0] + f.box[2] / 2 - half, f.box[1] + f.box[3] / 2 - half) < reach
    ]
    if not near:
        return face
    best = max(near, key=lambda f: f.confidence)
    return Detection(face.box, face.confidence, best.keypoints + [left, top])


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no shear) that maps `source` points
    onto `target` points best in least squares (Umeyama's method)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / source_centred.var(axis=0).sum()
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align(
    image: Image.Image, keypoints: np.ndarray, settings: FacesConfig, side: int = CROP_SIDE
) -> Image.Image:
    """The face mapped onto the template, as a side x side crop. Pixels the crop needs beyond the
    image are filled by mirroring the image at its border ('reflect') or left black ('black')."""
    template = np.asarray(settings.template, dtype=np.float64) * side / CROP_SIDE
    forward = similarity(np.asarray(keypoints, dtype=np.float64), template)
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], float)
    reach = corners @ inverse.T  # where the crop's corners fall in the image
    width, height = image.size
    margin = int(
        math.ceil(max(0.0, -reach.min(), reach[:, 0].max() - width, reach[:, 1].max() - height))
    )
    margin = min(margin, max(width, height) * 2)
    if margin and settings.border == "reflect":
        pixels = np.asarray(image)
        for _ in range(3):  # np.pad's reflect needs the margin below the side: pad in rounds
            step = min(margin - (pixels.shape[1] - width) // 2, min(pixels.shape[:2]) - 1)
            if step <= 0:
                break
            pixels = np.pad(pixels, ((step, step), (step, step), (0, 0)), mode="reflect")
        margin = (pixels.shape[1] - width) // 2
        image = Image.fromarray(pixels)
    elif margin:
        framed = Image.new("RGB", (width + 2 * margin, height + 2 * margin))
        framed.paste(image, (margin, margin))
        image = framed
    inverse[:, 2] += margin
    return image.transform(
        (side, side), Image.Transform.AFFINE, inverse.ravel().tolist(), Image.Resampling.BILINEAR
    )


def find_faces(image: Image.Image, finder: FaceFinder, settings: FacesConfig) -> list[Face]:
    """Every face in the image, with its aligned crop."""
    faces = []
    for found in detect(image, finder, settings):
        x, y, w, h = found.box
        box = (round(x), round(y), round(w), round(h))
        crop = align(image, found.keypoints, settings)
        faces.append(Face(box, round(float(found.confidence), 4), found.keypoints, crop))
    return faces


def working_image(data: bytes | None, spec: ImageSpec, settings: FacesConfig) -> Image.Image:
    """An image file as detection looks at it: EXIF orientation applied, no larger than
    `working_pixels` on its long side (`info["original_size"]`: its size before). Raises
    ImageError for a file that is not a usable image."""
    image = open_image(data, spec, settings.working_pixels)
    if max(image.size) > settings.working_pixels:
        image.thumbnail(
            (settings.working_pixels, settings.working_pixels), Image.Resampling.BILINEAR
        )
    return image


def faces_in(
    data: bytes | None, spec: ImageSpec, finder: FaceFinder, settings: FacesConfig
) -> tuple[list[Face], int, int]:
    """Every face in an image file, with boxes and keypoints in the pixels of the image after EXIF
    orientation, and that size (width, height). Larger images are looked at no larger than
    `working_pixels` on their long side. Raises ImageError for a file that is not a usable image."""
    image = working_image(data, spec, settings)
    width, height = image.info["original_size"]
    scale = width / image.width
    faces = []
    for face in find_faces(image, finder, settings):
        box = tuple(round(value * scale) for value in face.box)
        faces.append(dataclasses.replace(face, box=box, keypoints=face.keypoints * scale))
    return faces, width, height
