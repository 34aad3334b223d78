"""Training faces as scoring's `--faces detect` gives them: each crop found and aligned by the
detector, the train split's faces first shown as a camera might give them.

A model scores what the detector aligned, not UTKFace's own crops: a face found in a frame is
smaller, re-sampled, JPEG-compressed and aligned by another method's landmarks, and a tight crop's
aligned version has mirrored borders. Preparation shows the model the same, so that training and
scoring see faces made by one path (`sparkface.detect.faces.faces_in`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image

from sparkface.core.config import FacesConfig
from sparkface.core.images import ImageError, ImageSpec, check_file_size, decode_face, square_pixels
from sparkface.detect.faces import Face, FaceFinder, faces_in
from sparkface.train.frames import camera_frame, jpeg, reframe

FALLBACK = "aligned"  # the view recorded for a face the detector missed in every view


def choose_view(views: dict[str, float], position: float) -> str:
    """The view whose share of [0, 1) holds `position` (a hash of the file name), in the
    mapping's order."""
    total = 0.0
    for name, share in views.items():
        total += share
        if position < total:
            return name
    return next(reversed(views))


def shown_as(content: bytes, view: str, rng: np.random.Generator) -> tuple[bytes, tuple | None]:
    """The crop's bytes as `view` shows them, and where its face's centre lies in them (None: in
    the middle)."""
    if view == "crop":
        return content, None
    face = Image.open(io.BytesIO(content)).convert("RGB")
    if view == "frame":
        return camera_frame(face, rng)
    image, _ = reframe(face, view, rng)
    return jpeg(image, 90), None


def nearest(faces: list[Face], width: int, height: int, centre: tuple | None) -> Face | None:
    """The face whose box centre is nearest `centre` (default: the image's): the labelled one,
    not a neighbour or a false face."""
    if not faces:
        return None
    x, y = centre if centre is not None else (width / 2, height / 2)
    return min(
        faces, key=lambda f: math.hypot(f.box[0] + f.box[2] / 2 - x, f.box[1] + f.box[3] / 2 - y)
    )


def detected_faces(
    contents: Iterable[bytes | None],
    views: Iterable[str],
    seeds: Iterable[int],
    spec: ImageSpec,
    finder: FaceFinder,
    settings: FacesConfig,
) -> Iterator[tuple[np.ndarray | None, int | None, int | None, str | None, str | None]]:
    """(pixels, width, height, view, error) for each crop: the model's input from the face the
    detector found in the crop shown as its view, aligned as scoring aligns it. A view where the
    detector finds no face falls back to the crop itself, and a crop where it finds none to the
    crop as `aligned` mode takes it (view `FALLBACK`), so no labelled face is lost. A file that
    is not a usable image gives (None, None, None, None, reason)."""
    for content, view, seed in zip(contents, views, seeds, strict=True):
        try:
            check_file_size(len(content) if content is not None else None, spec)
            plain = decode_face(content, spec)
        except ImageError as error:
            yield None, None, None, None, str(error)
            continue
        rng = np.random.default_rng(seed)
        for tried in dict.fromkeys((view, "crop")):
            data, centre = shown_as(content, tried, rng)
            found, width, height = faces_in(data, spec, finder, settings)
            face = nearest(found, width, height, centre)
            if face is not None:
                yield square_pixels(face.crop, spec.size), plain.width, plain.height, tried, None
                break
        else:
            yield plain.pixels, plain.width, plain.height, FALLBACK, None
