"""How `--faces detect` does on real photos with true face boxes: WIDER FACE's text format read,
detections matched to true faces, recall by size band, unmatched detections, and the reasons
the missed faces carry.

WIDER's ground truth (`wider_face_val_bbx_gt.txt`): for each photo its path, the number of faces,
then one line a face: `x y w h blur expression illumination invalid occlusion pose` (the last six
optional here). A photo without faces has a count of 0 and one line of zeros.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sparkface.core.errors import InputError

# Bands of the shorter side of a true face's box, in image pixels: (name, low, high).
BANDS = (("48-63", 48, 64), ("64-95", 64, 96), ("96-159", 96, 160), ("160+", 160, 1_000_000))
MIN_SIDE = BANDS[0][1]
MATCH_IOU = 0.3
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
# What a missed face's WIDER attributes say of it, checked in this order: its first reason.
REASONS = (
    ("atypical pose", "pose", 1),
    ("heavy occlusion", "occlusion", 2),
    ("heavy blur", "blur", 2),
    ("extreme light", "illumination", 1),
    ("partial occlusion", "occlusion", 1),
    ("some blur", "blur", 1),
)


@dataclasses.dataclass(frozen=True)
class TrueFace:
    box: tuple[int, int, int, int]  # x, y, width, height
    attributes: dict[str, int]

    @property
    def side(self) -> int:
        return min(self.box[2], self.box[3])


def read_wider_truth(path: str | Path) -> dict[str, list[TrueFace]]:
    """Photo path (as written: `event/name.jpg`) -> its true faces, from WIDER's text format."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    truth: dict[str, list[TrueFace]] = {}
    at = 0
    try:
        while at < len(lines):
            if not lines[at]:
                at += 1
                continue
            photo, count = lines[at], int(lines[at + 1])
            rows = lines[at + 2 : at + 2 + max(count, 1)]
            faces = []
            for row in rows[:count]:
                values = [int(float(v)) for v in row.split()]
                faces.append(
                    TrueFace(tuple(values[:4]), dict(zip(ATTRIBUTES, values[4:], strict=False)))
                )
            truth[photo] = faces
            at += 2 + max(count, 1)
    except (ValueError, IndexError) as error:
        raise InputError(f"{path}: not WIDER's box format near line {at + 1}: {error}") from None
    return truth


def in_half(name: str, half: str) -> bool:
    """Whether a photo belongs to `half` ('even', 'odd' or 'all'): the parity of the first 8 hex
    digits of the sha1 of its file name (the name alone, without its folder)."""
    if half == "all":
        return True
    digest = int(hashlib.sha1(Path(name).name.encode()).hexdigest()[:8], 16)
    return (digest % 2 == 0) == (half == "even")


def overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of every (x, y, w, h) box in `boxes` with every one in `others`."""
    if not len(boxes) or not len(others):
        return np.zeros((len(boxes), len(others)))
    a = np.asarray(boxes, float)[:, None, :]
    b = np.asarray(others, float)[None, :, :]
    width = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(
        a[..., 0], b[..., 0]
    )
    height = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(
        a[..., 1], b[..., 1]
    )
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / np.maximum(union, 1e-9)


def match(
    found: list[tuple[int, int, int, int]],
    confidences: list[float],
    truth: list[TrueFace],
    threshold: float = MATCH_IOU,
) -> tuple[list[int | None], int]:
    """Each true face's detection (index into `found`, or None), matched one to one, the most
    confident detection first, each to the free true face it overlaps most (IoU >= threshold);
    and how many detections overlap no true face of any size that much."""
    iou = overlaps(np.array(found).reshape(-1, 4), np.array([t.box for t in truth]).reshape(-1, 4))
    matched: list[int | None] = [None] * len(truth)
    for detection in np.argsort(-np.asarray(confidences, float), kind="stable"):
        free = [
            i for i in range(len(truth)) if matched[i] is None and iou[detection, i] >= threshold
        ]
        if free:
            matched[max(free, key=lambda i: iou[detection, i])] = int(detection)
    unmatched = int((iou.max(axis=1, initial=0.0) < threshold).sum()) if len(found) else 0
    return matched, unmatched


def band_of(side: int) -> str | None:
    for name, low, high in BANDS:
        if low <= side < high:
            return name
    return None


def reason_of(face: TrueFace) -> str:
    """A missed face's first reason by its WIDER attributes, or 'none marked'."""
    for reason, attribute, level in REASONS:
        if face.attributes.get(attribute, 0) >= level:
            return reason
    return "none marked"


@dataclasses.dataclass
class Tally:
    """Counts over photos: true faces and found ones per band, unmatched detections, missed faces'
    reasons, and gender against perceived gender on the faces found."""

    photos: int = 0
    seconds: float = 0.0
    unmatched: int = 0
    faces: dict[str, int] = dataclasses.field(default_factory=dict)
    found: dict[str, int] = dataclasses.field(default_factory=dict)
    missed_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    gender_faces: int = 0
    gender_right: int = 0

    def add_photo(
        self,
        truth: list[TrueFace],
        matched: list[int | None],
        unmatched: int,
        seconds: float,
        genders: dict[int, tuple[str, str | None]] | None = None,
    ) -> None:
        """One photo: its true faces, their matches, its unmatched detections, its time, and for
        true faces with a perceived gender (by index) that gender and the detection's."""
        self.photos += 1
        self.seconds += seconds
        self.unmatched += unmatched
        for index, face in enumerate(truth):
            band = band_of(face.side)
            if band is None:
                continue
            self.faces[band] = self.faces.get(band, 0) + 1
            if matched[index] is not None:
                self.found[band] = self.found.get(band, 0) + 1
            else:
                reason = reason_of(face)
                self.missed_reasons[reason] = self.missed_reasons.get(reason, 0) + 1
        for index, (perceived, predicted) in (genders or {}).items():
            if matched[index] is None or predicted is None or band_of(truth[index].side) is None:
                continue
            self.gender_faces += 1
            self.gender_right += int(perceived == predicted)

    def merge(self, other: Tally) -> Tally:
        for field in ("photos", "seconds", "unmatched", "gender_faces", "gender_right"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        for field in ("faces", "found", "missed_reasons"):
            mine = getattr(self, field)
            for key, value in getattr(other, field).items():
                mine[key] = mine.get(key, 0) + value
        return self

    def report(self) -> dict:
        faces, found = sum(self.faces.values()), sum(self.found.values())
        bands = {
            name: {
                "faces": self.faces.get(name, 0),
                "found": self.found.get(name, 0),
                "recall": _share(self.found.get(name, 0), self.faces.get(name, 0)),
            }
            for name, _, _ in BANDS
        }
        return {
            "photos": self.photos,
            "faces": faces,
            "recall": _share(found, faces),
            "bands": bands,
            "unmatched_per_photo": round(self.unmatched / max(self.photos, 1), 3),
            "seconds_per_photo": round(self.seconds / max(self.photos, 1), 3),
            "missed_reasons": dict(sorted(self.missed_reasons.items(), key=lambda kv: -kv[1])),
            "gender": {
                "faces": self.gender_faces,
                "accuracy": _share(self.gender_right, self.gender_faces),
            },
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def table(reports: dict[str, dict]) -> str:
    """Markdown: one row per named report, recall by band, all, unmatched a photo, time, gender."""
    head = ["", *(f"{name} px" for name, _, _ in BANDS), "all >= 48 px", "unmatched / photo"]
    head += ["s / photo", "gender"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, report in reports.items():
        cells = [name, *(_percent(report["bands"][band]["recall"]) for band, _, _ in BANDS)]
        cells += [_percent(report["recall"]), f"{report['unmatched_per_photo']:.3f}"]
        cells += [f"{report['seconds_per_photo']:.2f}", _percent(report["gender"]["accuracy"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def perceived_genders(path: str | Path, photos: Iterable[str]) -> dict[str, dict[int, str]]:
    """widerface-demographics' `demographics_val.csv`: photo -> {face index: 'male'|'female'}
    for the photos asked for (its `file` column is `images/event/name.jpg`, `face` the index into
    the photo's boxes in WIDER's order)."""
    import pandas as pd

    wanted = set(photos)
    table_ = pd.read_csv(path)
    genders: dict[str, dict[int, str]] = {}
    for file, face, gender in zip(
        table_["file"], table_["face"], table_["perceived_gender"], strict=True
    ):
        photo = str(file).removeprefix("images/")
        if photo in wanted and str(gender).lower() in ("male", "female"):
            genders.setdefault(photo, {})[int(face)] = str(gender).lower()
    return genders
