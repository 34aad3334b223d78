"""Training-time augmentation of uint8 face batches, in NumPy and Pillow.

It runs in the training stream, outside the model: the model's graph then holds only the network,
which XLA compiles on the CPU (image-warping ops inside the graph made XLA training 2-3x slower),
and the same code serves every Keras backend.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

MAX_SHIFT = 0.06  # of the side, each way
MAX_ZOOM = 0.10  # scale in [1 - MAX_ZOOM, 1 + MAX_ZOOM]
MAX_DEGREES = 10.0
MAX_BRIGHTNESS = 0.15  # of the full range, added
MAX_CONTRAST = 0.2  # factor in [1 - MAX_CONTRAST, 1 + MAX_CONTRAST] around each face's mean
# Light and colour as cameras see them (`light=True`): warmer or cooler light, a blurred face, a
# face re-encoded as a low-quality JPEG.
MAX_TEMPERATURE = 0.15  # red gain 1 + t, blue gain 1 - t, t in [-MAX_TEMPERATURE, MAX_TEMPERATURE]
BLUR_SHARE, MAX_BLUR = 0.3, 1.0  # the share of faces blurred, and the largest radius in pixels
JPEG_SHARE, JPEG_QUALITY = 0.5, (30, 90)  # the share of faces re-encoded, and the quality range


def _warp(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random flip, shift, zoom and rotation of an (h, w, 3) face (`warp`)."""
    side = face.shape[0]
    scale = 1.0 + rng.uniform(-MAX_ZOOM, MAX_ZOOM)
    degrees = rng.uniform(-MAX_DEGREES, MAX_DEGREES)
    shift_x, shift_y = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * side
    return warp(face, scale, degrees, shift_x, shift_y, flip=rng.random() < 0.5)


def warp(
    face: np.ndarray,
    scale: float = 1.0,
    degrees: float = 0.0,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """An (h, w, 3) face zoomed by `scale` (> 1: closer), rotated, shifted (pixels) and mirrored
    about its centre, in one affine resampling. Edges are extended (not filled with black) by
    padding with the border pixels first."""
    side = face.shape[0]
    pad = side // 4
    padded = Image.fromarray(np.pad(face, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    angle = math.radians(degrees)
    mirror = -1.0 if flip else 1.0
    # Pillow maps each output pixel to an input pixel: output centre -> input centre + shift.
    centre = side / 2 + pad
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    a, b = cos * mirror, sin
    d, e = -sin * mirror, cos
    out_centre = side / 2
    c = centre + shift_x - a * out_centre - b * out_centre
    f = centre + shift_y - d * out_centre - e * out_centre
    warped = padded.transform(
        (side, side), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped)


def _camera(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One face blurred and/or re-encoded as JPEG, each with its own chance."""
    image = Image.fromarray(face)
    if rng.random() < BLUR_SHARE:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, MAX_BLUR)))
    if rng.random() < JPEG_SHARE:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(*JPEG_QUALITY, endpoint=True)))
        image = Image.open(buffer)
    return np.asarray(image.convert("RGB"))


def augment_batch(
    faces: np.ndarray, rng: np.random.Generator, light: bool = False, gray: float = 0.0
) -> np.ndarray:
    """A randomly flipped, shifted, zoomed, rotated, brightened and contrasted copy of a batch of
    uint8 faces (n, h, w, 3); with `light`, also under warmer or cooler light, blurred and
    JPEG-compressed at random; `gray` of them, at random, in grey. The input is left unchanged."""
    if not len(faces):
        return faces.copy()
    warped = np.stack([_warp(face, rng) for face in faces]).astype(np.float32)
    n = len(faces)
    contrast = rng.uniform(1 - MAX_CONTRAST, 1 + MAX_CONTRAST, size=(n, 1, 1, 1))
    brightness = rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS, size=(n, 1, 1, 1)) * 255.0
    mean = warped.mean(axis=(1, 2, 3), keepdims=True)
    adjusted = (warped - mean) * contrast + mean + brightness
    if light:
        warmth = rng.uniform(-MAX_TEMPERATURE, MAX_TEMPERATURE, size=(n, 1, 1))
        adjusted[..., 0] *= 1 + warmth
        adjusted[..., 2] *= 1 - warmth
    out = np.clip(np.rint(adjusted), 0, 255).astype(np.uint8)
    if light:
        out = np.stack([_camera(face, rng) for face in out])
    if gray:
        # Drawn only when asked, so that recipes without it see the same faces as before.
        chosen = rng.random(n) < gray
        out[chosen] = to_gray(out[chosen])
    return out


def to_gray(faces: np.ndarray) -> np.ndarray:
    """uint8 faces (n, h, w, 3) as grey: ITU-R BT.601 luminance in all three channels."""
    luminance = faces.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = np.clip(np.rint(luminance), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
