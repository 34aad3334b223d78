"""Camera-like test data made from face crops: frames with faces pasted into them, and the same
faces re-framed (looser, tighter, shifted, tilted), with the truth kept beside them.

Users' cameras give whole frames, or crops framed by another detector; these sets measure what
`--faces detect` finds and how well it scores what it finds. Build them from the test split only.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FRAME_SIZES = ((640, 480), (1280, 720))
FACE_SIDES = (48, 260)
MAX_TILT = 20.0
JPEG_QUALITY = (60, 90)
REFRAMINGS = {
    "looser": (0.15, 0.30),  # more background on each side, as a share of the crop's side
    "tighter": (0.08, 0.15),  # cut from each side
    "shifted": (0.0, 0.10),  # the crop moved by up to this share of its side
    "tilted": (8.0, 15.0),  # degrees, either way
}


@dataclasses.dataclass(frozen=True)
class PastedFace:
    """Where a source crop went: its centre and side in the frame's pixels, its tilt."""

    source: str
    centre_x: float
    centre_y: float
    side: float
    angle: float


def background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A frame without faces: a lit gradient, shapes like furniture and signs, sensor noise."""
    top, bottom = rng.integers(30, 220, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).astype(np.float32)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 20))):
        x0, x1 = sorted(rng.integers(0, width, size=2))
        y0, y1 = sorted(rng.integers(0, height, size=2))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 12)))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))
    noisy = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(2, 8), (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def feathered(face: Image.Image, side: int, angle: float) -> tuple[Image.Image, Image.Image]:
    """The face resized to `side` and tilted by `angle` degrees, with a soft-edged mask."""
    face = face.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    # A narrow feather (the outer 3-4% of each side): no hard seam, and the crop's own hair, ears
    # and background kept, as a camera would see them. A wide one (the outer 10%) wipes what the
    # model reads at the crop's edges and costs it 5 points of gender on the same faces.
    mask = Image.new("L", (side, side), 0)
    inset = max(1, side // 50)
    ImageDraw.Draw(mask).rounded_rectangle(
        (inset, inset, side - inset, side - inset), radius=side // 8, fill=255
    )
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, side / 60)))
    rotated = face.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    return rotated, mask.rotate(angle, Image.Resampling.BILINEAR, expand=True)


def _fits(placed: list[PastedFace], x: float, y: float, side: float) -> bool:
    return all(math.hypot(x - p.centre_x, y - p.centre_y) > 0.75 * (side + p.side) for p in placed)


def make_frame(
    rng: np.random.Generator, sources: Sequence[Path], count: int, size: tuple[int, int]
) -> tuple[Image.Image, list[PastedFace]]:
    """One frame of `size` holding up to `count` faces from `sources`, none overlapping."""
    frame = background(rng, *size)
    placed: list[PastedFace] = []
    for source in sources[:count]:
        spot = paste_face(rng, frame, lambda source=source: Image.open(source), placed)
        if spot is not None:
            placed.append(PastedFace(source.name, *spot))
    return frame, placed


def paste_face(
    rng: np.random.Generator,
    frame: Image.Image,
    face: Callable[[], Image.Image],
    placed: Sequence[PastedFace] = (),
) -> tuple[float, float, float, float] | None:
    """Paste `face()` into `frame` at a random side (FACE_SIDES, log-uniform), place (clear of
    `placed`) and tilt, with a feathered edge; its (centre x, centre y, side, angle), or None
    where no clear place was found in 30 tries."""
    width, height = frame.size
    low, high = FACE_SIDES
    for _ in range(30):
        side = int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
        side = min(side, int(min(width, height) * 0.8))
        x = float(rng.uniform(side * 0.7, width - side * 0.7))
        y = float(rng.uniform(side * 0.7, height - side * 0.7))
        if _fits(list(placed), x, y, side):
            break
    else:
        return None
    angle = float(rng.uniform(-MAX_TILT, MAX_TILT))
    pasted, mask = feathered(face(), side, angle)
    frame.paste(pasted, (round(x - pasted.width / 2), round(y - pasted.height / 2)), mask)
    return x, y, float(side), angle


def camera_frame(face: Image.Image, rng: np.random.Generator) -> tuple[bytes, tuple[float, float]]:
    """A JPEG frame (FRAME_SIZES, JPEG_QUALITY) holding `face` alone, made as the test frames
    are; and the face's centre in it. Training uses it to show a face as a camera gives it."""
    frame = background(rng, *FRAME_SIZES[int(rng.integers(0, len(FRAME_SIZES)))])
    x, y, _, _ = paste_face(rng, frame, lambda: face)  # one face always has a clear place
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    return jpeg(frame, quality), (x, y)


def reframe(
    face: Image.Image, kind: str, rng: np.random.Generator
) -> tuple[Image.Image, dict[str, float]]:
    """The crop framed as another detector might: `kind` is one of REFRAMINGS."""
    face = face.convert("RGB")
    side = face.width
    low, high = REFRAMINGS[kind]
    amount = float(rng.uniform(low, high))
    if kind == "tighter":
        cut = round(side * amount)
        return face.crop((cut, cut, side - cut, side - cut)), {"cut": amount}
    margin = round(side * amount) if kind == "looser" else round(side * 0.3)
    canvas = background(rng, side + 2 * margin, side + 2 * margin)
    angle = float(rng.choice([-1, 1]) * amount) if kind == "tilted" else 0.0
    pasted, mask = feathered(face, side, angle)
    canvas.paste(
        pasted, (margin + (side - pasted.width) // 2, margin + (side - pasted.height) // 2), mask
    )
    if kind == "looser":
        return canvas, {"margin": amount}
    if kind == "shifted":
        dx, dy = (rng.uniform(-amount, amount, size=2) * side).round().astype(int)
        box = (margin + dx, margin + dy, margin + dx + side, margin + dy + side)
        return canvas.crop(tuple(int(v) for v in box)), {"shift_x": dx / side, "shift_y": dy / side}
    return canvas.crop((margin, margin, margin + side, margin + side)), {"angle": angle}


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
