"""Decoding and resizing face images: the one function shared by training and scoring.

`decode_face` turns file bytes into a (size, size, 3) uint8 RGB array, or raises ImageError with a
reason a user can act on. Training and serving both call it, so they can never disagree.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# No process-wide Pillow settings: `decode_face` checks its own pixel limit (ImageSpec.max_pixels)
# from the header before decoding, and Pillow's own decompression-bomb guard stays on for every
# other caller; a file past Pillow's guard gets the same "image too large" error.


class ImageError(ValueError):
    """A file that cannot be turned into a face image; the message says why."""


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """How files become model inputs. Part of the model's descriptor: scoring uses the same."""

    size: int = 64
    max_pixels: int = 40_000_000
    max_file_bytes: int = 50 * 1024 * 1024
    draft: bool = True


@dataclasses.dataclass(frozen=True)
class DecodedFace:
    pixels: np.ndarray  # (size, size, 3) uint8 RGB
    width: int  # of the original image, after EXIF orientation
    height: int


def _describe_unknown(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return "not an image: the file holds HTML/XML text"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "not an image: the file holds plain text"
    return "not an image: unrecognised format"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: 16/32-bit greys are scaled, alpha is composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size else 0.0
        scale = 255.0 / top if top > 255 else 1.0
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def check_file_size(size: int | None, spec: ImageSpec) -> None:
    """Refuse a file over the byte limit by its size, whether or not its bytes were read."""
    if size is not None and size > spec.max_file_bytes:
        raise ImageError(f"file too large: {size} bytes, limit {spec.max_file_bytes}")


def check_listed(content: bytes | None, size: int | None, spec: ImageSpec) -> None:
    """Refuse a listed file by its size (`check_file_size`), or one with a size and no bytes
    within the limit: the walk found it, and Spark could not open it by its name."""
    check_file_size(size, spec)
    if content is None and size is not None:
        raise ImageError(
            "unreadable file name: Spark cannot open a file by a name that is not UTF-8 (rename "
            "it, e.g. `convmv -f latin1 -t utf8 --notest`), nor by one beyond ASCII where the "
            "job's locale is not UTF-8 (run it with LANG=C.UTF-8)"
        )


# EXIF tags of the capture time: DateTimeOriginal and its offset (Exif IFD), DateTime (IFD0)
# and its own offset, OffsetTime (Exif IFD).
EXIF_IFD = 0x8769
DATE_TIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011
DATE_TIME = 0x0132
OFFSET_TIME = 0x9010


def _exif_time(text: object, offset: object) -> tuple[datetime, str | None] | None:
    """An EXIF time ("2026:12:01 09:20:00") with its offset, in UTC; None if it is no time (a
    camera that never set its clock writes "0000:00:00 00:00:00" or blanks)."""
    if not isinstance(text, str):
        return None
    try:
        taken = datetime.strptime(text.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = offset.strip().rstrip("\x00") if isinstance(offset, str) else ""
    if not re.fullmatch(r"[+-]\d{2}:\d{2}", offset):
        return taken.replace(tzinfo=UTC), None
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = (int(part) for part in offset[1:].split(":"))
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return taken.replace(tzinfo=zone).astimezone(UTC), offset


def capture_time(data: bytes | None) -> tuple[datetime | None, str | None]:
    """When the photo was taken, from its EXIF (DateTimeOriginal, else DateTime, each with its
    own offset tag), in UTC, and the offset from UTC the camera wrote with it ("+05:30"); None
    when the file has no such time or is not an image. A time without an offset is the camera's
    clock, taken here to be UTC (an audience may read it in its own time zone). Reads the header
    only, not the pixels."""
    if not data:
        return None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = Image.open(io.BytesIO(data)).getexif()
            details = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 - a missing or unreadable tag means "no capture time"
        return None, None
    original = _exif_time(details.get(DATE_TIME_ORIGINAL), details.get(OFFSET_TIME_ORIGINAL))
    return original or _exif_time(exif.get(DATE_TIME), details.get(OFFSET_TIME)) or (None, None)


def open_image(data: bytes | None, spec: ImageSpec, draft_size: int | None = None) -> Image.Image:
    """Decode bytes to an RGB image, EXIF orientation applied, after the checks every file gets
    (empty, file size, pixel limit, format). With `draft_size`, a JPEG may be decoded at a power-
    of-two reduction no smaller than that (DCT scaling). Raises ImageError naming what was wrong;
    the image's `info["original_size"]` is its size after EXIF orientation, before any draft."""
    if data is None:
        # No bytes at all: the input's entry is no regular file (a file too large to read is
        # refused by its size before it gets here).
        raise ImageError(
            "not a file: nothing to read (a symbolic link to nothing, a pipe, a socket or a device)"
        )
    if len(data) == 0:
        raise ImageError("empty file")
    check_file_size(len(data), spec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > spec.max_pixels:
                raise ImageError(
                    f"image too large: {width}x{height} pixels, limit {spec.max_pixels} "
                    "(possible decompression bomb)"
                )
            if draft_size and image.format == "JPEG":
                # DCT scaling: decode at the largest power-of-two reduction still >= the
                # target, then resize; several times faster on large JPEGs.
                image.draft("RGB", (draft_size, draft_size))
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            image = ImageOps.exif_transpose(image)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            image = _to_rgb(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(_describe_unknown(data)) from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"image too large: {error}") from None
    except MemoryError:
        raise ImageError("image too large: out of memory while decoding") from None
    except Exception as error:  # noqa: BLE001 - any decoder failure is this file's fault, not the job's
        detail = str(error) or type(error).__name__
        raise ImageError(f"truncated or corrupt image: {detail}") from None
    image.info["original_size"] = (width, height)
    return image


def square_pixels(image: Image.Image, size: int) -> np.ndarray:
    """The model's input from a face image: centre square, resized to size x size, uint8 RGB."""
    side = min(image.size)
    left = (image.size[0] - side) // 2
    top = (image.size[1] - side) // 2
    if image.size[0] != image.size[1]:
        image = image.crop((left, top, left + side, top + side))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(image, dtype=np.uint8)


def decode_face(data: bytes | None, spec: ImageSpec) -> DecodedFace:
    """Decode bytes to a (size, size, 3) uint8 RGB face: EXIF orientation applied, centre-cropped to
    a square, resized. Raises ImageError naming what was wrong."""
    image = open_image(data, spec, spec.size if spec.draft else None)
    width, height = image.info["original_size"]
    return DecodedFace(square_pixels(image, spec.size), width, height)


def decode_each(
    contents: Iterable[bytes | None], spec: ImageSpec, sizes: Iterable[int] | None = None
) -> Iterator[tuple[DecodedFace | None, str | None]]:
    """(face, None) for each file that decodes, (None, reason) for each that does not: the one
    loop that preparation, profiling and scoring share. With `sizes` (the files' sizes in bytes),
    a file over the limit is refused by its size, whether or not its bytes were read."""
    sizes = iter(sizes) if sizes is not None else None
    for content in contents:
        size = next(sizes) if sizes is not None else None
        try:
            check_listed(content, size, spec)
            yield decode_face(content, spec), None
        except ImageError as error:
            yield None, str(error)
