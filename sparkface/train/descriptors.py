"""A second teacher while training only: dlib's ResNet face descriptor (128 numbers a face), which
knows more about race and gender than our networks but costs about 80 ms a face, too dear to run
when scoring. Preparation computes it once per face, on the executors, from the face's original
crop, and stores it in the shards; a student then learns to predict it beside its four heads
(feature distillation: `training.descriptor_weight`), and the head is dropped from the package.

The models ship inside the `face_recognition_models` package (MIT): dlib's 5-point shape predictor
and `dlib_face_recognition_resnet_model_v1`, which their author released into the public domain
(the dlib-models README). The 68-point predictor in the same package was trained on data that
excludes commercial use and is not used. They run with `dlib-bin` (Boost Software License). Both
install with the `teacher` extra; nothing is downloaded at run time.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd

DESCRIPTOR_COLUMN = "descriptor"
DESCRIPTOR_SIZE = 128
# The descriptor's numbers are about +-0.1; the student learns them times this, so that their
# mean squared error weighs about as much as one class head's cross-entropy.
DESCRIPTOR_SCALE = 10.0
# UTKFace's crops are dlib face chips: the face's box in a 200-px crop, where the shape
# predictor starts looking for the five landmarks.
CROP_SIDE = 200
FACE_BOX = (29, 29, 171, 171)


class Describer:
    """dlib's shape predictor and face descriptor network, loaded once per process."""

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as error:
            raise RuntimeError(
                "face descriptors need the teacher extra: pip install 'sparkface[teacher]'"
            ) from error
        self.dlib = dlib
        self.landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.network = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def describe(self, crop: Image.Image) -> np.ndarray:
        """The 128 numbers of a face crop framed as UTKFace's are."""
        if crop.size != (CROP_SIDE, CROP_SIDE):
            crop = crop.resize((CROP_SIDE, CROP_SIDE), Image.Resampling.BILINEAR)
        pixels = np.ascontiguousarray(np.asarray(crop.convert("RGB")))
        shape = self.landmarks(pixels, self.dlib.rectangle(*FACE_BOX))
        return np.asarray(self.network.compute_face_descriptor(pixels, shape), dtype=np.float32)


_DESCRIBER: Describer | None = None
_LOCK = threading.Lock()


def cached_describer() -> Describer:
    global _DESCRIBER
    with _LOCK:
        if _DESCRIBER is None:
            _DESCRIBER = Describer()
        return _DESCRIBER


def describe_contents(contents: pd.Series) -> list[list[float] | None]:
    """Each file's descriptor; None for a file missing or not an image."""
    describer = cached_describer()
    found: list[list[float] | None] = []
    for content in contents:
        try:
            if content is None:
                raise ValueError("no such file")
            with Image.open(io.BytesIO(content)) as image:
                found.append(describer.describe(image).tolist())
        except (OSError, ValueError):
            found.append(None)
    return found


def _describe_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        batch[DESCRIPTOR_COLUMN] = describe_contents(batch.pop("content"))
        yield batch


def descriptors_of(shards, images):
    """(path, descriptor) once for each distinct path of `shards`, computed on the executors from
    `images` (binaryFile rows: path, content); the descriptor is null where the face's original
    file could not be read. Only paths and file bytes reach Python."""
    if "path" not in shards.columns:
        raise ValueError("shards: need a path column to find each face's original file")
    paths = shards.select("path").distinct()
    joined = paths.join(images.select("path", "content"), "path", "left")
    return joined.mapInPandas(_describe_batches, f"path string, {DESCRIPTOR_COLUMN} array<float>")


def with_descriptors(shards, images, described=None):
    """The shards' rows (DataFrame) with a `descriptor` column, joined on `path` from
    `described` (`descriptors_of`'s output), computed from `images` when not given."""
    if described is None:
        described = descriptors_of(shards, images)
    joined = shards.join(described, "path", "left")
    return joined.select(*shards.columns, DESCRIPTOR_COLUMN)


def descriptor_targets(column, rows: int) -> np.ndarray:
    """A shard's descriptor column (list<float>) as (rows, 128) float32 targets, times
    DESCRIPTOR_SCALE; a null row (no descriptor) gives zeros."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    targets = np.zeros((rows, DESCRIPTOR_SIZE), dtype=np.float32)
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if valid.any():
        values = column.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        targets[valid] = values.reshape(-1, DESCRIPTOR_SIZE)
    return targets * DESCRIPTOR_SCALE
