"""YuNet (Shiqi Yu et al., libfacedetection.train), a face detector trained on WIDER FACE's photos,
run with ONNX Runtime: faces as boxes with a confidence and keypoints in the image's pixels.

It sees faces from about 10 to 300 pixels in its input, frontal and turned, in crowds, which
BlazeFace (trained for a face near a phone's camera) misses. The model file ships with sparkface
(`sparkface/detect/models/yunet_n_dynamic.onnx`, Apache-2.0; NOTICE.md there). Its outputs are
decoded here as its training code's head decodes them: per stride (8, 16, 32) and cell, a score
(the square root of class times objectness, as OpenCV's FaceDetectorYN reports it), a box
(centre offset in cells, log size in cells) and five keypoints (offsets in cells).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sparkface.detect.blazeface import Detection, weighted_nms

MODEL_FILE = Path(__file__).resolve().parent / "models" / "yunet_n_dynamic.onnx"
STRIDES = (8, 16, 32)
SHAPE_STEP = 32  # the input is padded to a multiple of the coarsest stride
# YuNet's five keypoints: the person's right eye (image left), left eye, nose tip, right and left
# mouth corners. BlazeFace's four (what alignment uses) take the corners' mean as mouth centre.
EYES_AND_NOSE, MOUTH_CORNERS = slice(0, 3), slice(3, 5)


class YuNet:
    """The detector, loaded once; `detect` is safe to call repeatedly from one thread."""

    def __init__(self, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.outputs = [output.name for output in self.session.get_outputs()]

    def detect(
        self,
        image: Image.Image,
        min_confidence: float = 0.6,
        long_side: int = 640,
        border: int = 0,
    ) -> list[Detection]:
        """Faces in an RGB image seen with a black `border` of that many pixels around it and
        then scaled so that its long side is at most `long_side` pixels; most confident first, in
        the image's pixels."""
        width, height = image.size
        framed = (width + 2 * border, height + 2 * border)
        scale = min(1.0, long_side / max(framed))
        inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        offset = round(border * scale)
        shape = tuple(-(-(side + 2 * offset) // SHAPE_STEP) * SHAPE_STEP for side in inner[::-1])
        canvas = np.zeros((1, 3, *shape), dtype=np.float32)
        same = inner == image.size
        pixels = np.asarray(
            image if same else image.resize(inner, Image.Resampling.BILINEAR, reducing_gap=3.0)
        )
        # Blue, green, red in 0-255, as the network was trained (OpenCV's order, no scaling).
        for channel in range(3):
            canvas[0, channel, offset : offset + inner[1], offset : offset + inner[0]] = pixels[
                ..., 2 - channel
            ]
        raw = dict(zip(self.outputs, self.session.run(None, {"input": canvas}), strict=True))
        corners, keypoints, scores = decode(raw, shape[1], min_confidence)
        found = []
        for box, points, confidence in weighted_nms(corners, keypoints, scores):
            x0, y0 = (box[:2] - offset) / scale
            x1, y1 = (box[2:] - offset) / scale
            found.append(
                Detection((x0, y0, x1 - x0, y1 - y0), confidence, (points - offset) / scale)
            )
        return found


def decode(
    raw: dict[str, np.ndarray], width: int, min_confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corners (n, 4), keypoints (n, 4, 2: right eye, left eye, nose tip, mouth centre) and
    scores (n,) of the cells scoring at least `min_confidence`, in the input's pixels."""
    corners, keypoints, scores = [], [], []
    for stride in STRIDES:
        score = np.sqrt(
            np.clip(raw[f"cls_{stride}"][0, :, 0] * raw[f"obj_{stride}"][0, :, 0], 0, 1)
        )
        keep = np.flatnonzero(score >= min_confidence)
        if not keep.size:
            continue
        columns = width // stride
        row, column = keep // columns, keep % columns
        box = raw[f"bbox_{stride}"][0, keep]
        centre_x, centre_y = (column + box[:, 0]) * stride, (row + box[:, 1]) * stride
        half_w, half_h = np.exp(box[:, 2]) * stride / 2, np.exp(box[:, 3]) * stride / 2
        corners.append(
            np.stack(
                [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1
            )
        )
        points = raw[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
        points = (points + np.stack([column, row], 1)[:, None, :]) * stride
        mouth = points[:, MOUTH_CORNERS].mean(axis=1, keepdims=True)
        keypoints.append(np.concatenate([points[:, EYES_AND_NOSE], mouth], axis=1))
        scores.append(score[keep])
    if not scores:
        return np.zeros((0, 4)), np.zeros((0, 4, 2)), np.zeros(0)
    return np.concatenate(corners), np.concatenate(keypoints), np.concatenate(scores)
