"""How `--faces detect` does on camera-like test data (sparkface.train.frames): faces found and
false faces in frames, and the attributes of what was found, against the truth in the face crops'
names, beside the same faces scored as crops in `aligned` mode.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from sparkface.core.config import AgeGroups
from sparkface.core.contract import GENDERS, RACES

# A detection is a pasted face when its centre lies within this share of the face's side.
MATCH_DISTANCE = 0.4


def truth_of(name: str, groups: AgeGroups) -> dict:
    """Labels from a UTKFace name: age, gender, race and age group."""
    age, gender, race = (int(part) for part in name.split("_")[:3])
    return {
        "age": age,
        "gender": GENDERS[gender],
        "race": RACES[race],
        "age_group": groups.names[groups.index_of(age)],
    }


def attribute_scores(rows: pd.DataFrame, groups: AgeGroups) -> dict[str, float]:
    """Gender, race, age-group accuracy (%) and age MAE (years) of predicted rows against the
    labels in their `source` names."""
    if rows.empty:
        return {"faces": 0}
    truth = pd.DataFrame([truth_of(name, groups) for name in rows["source"]], index=rows.index)
    scores = {"faces": int(len(rows))}
    for head in ("gender", "race", "age_group"):
        scores[head] = round(100 * float((rows[head] == truth[head]).mean()), 1)
    scores["age_mae"] = round(float((rows["age_years"] - truth["age"]).abs().mean()), 2)
    return scores


def read_rows(predictions: str | Path) -> pd.DataFrame:
    frame = pd.read_parquet(Path(predictions) / "parquet")
    frame["name"] = frame["path"].str.rsplit("/", n=1).str[-1]
    return frame


def match_frames(truth_file: Path, rows: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Each pasted face with the detection that found it (or none), the false detections, and the
    number of frames. Greedy: each face takes the nearest unused detection within reach."""
    by_frame = {name: group for name, group in rows[rows["status"] == "ok"].groupby("name")}
    matched, false, frames = [], 0, 0
    for line in truth_file.read_text().splitlines():
        record = json.loads(line)
        frames += 1
        found = by_frame.get(record["file_name"], pd.DataFrame())
        used: set[int] = set()
        for face in record["faces"]:
            best, best_distance = None, math.inf
            for index, row in found.iterrows():
                box = row["face_box"]
                centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                distance = math.hypot(centre[0] - face["centre_x"], centre[1] - face["centre_y"])
                if index not in used and distance < min(
                    best_distance, MATCH_DISTANCE * face["side"]
                ):
                    best, best_distance = index, distance
            entry = {"frame": record["file_name"], **face, "found": best is not None}
            if best is not None:
                used.add(best)
                hit = found.loc[best]
                entry.update({k: hit[k] for k in ("gender", "race", "age_group", "age_years")})
            matched.append(entry)
        false += len(found) - len(used)
    return pd.DataFrame(matched), false, frames


def frame_report(
    truth_file: Path, rows: pd.DataFrame, groups: AgeGroups, min_side: int = 48
) -> tuple[dict, pd.DataFrame]:
    """Recall (faces of at least min_side px), false faces per frame, and attributes of the found
    faces, with recall by face size and frame size; and the found faces themselves."""
    matched, false, frames = match_frames(truth_file, rows)
    counted = matched[matched["side"] >= min_side]
    sizes = pd.cut(
        counted["side"], [0, 64, 96, 160, 10_000], labels=["48-63", "64-95", "96-159", "160+"]
    )
    by_size = counted.groupby(sizes, observed=True)["found"].agg(["sum", "count"])
    width = counted["frame"].map(dict(zip(rows["name"], rows["width"], strict=False)))
    found = counted[counted["found"]]
    return {
        "frames": frames,
        "faces": int(len(counted)),
        "recall": round(100 * float(counted["found"].mean()), 1),
        "false_faces_per_frame": round(false / max(frames, 1), 3),
        "recall_by_side": {
            str(k): f"{int(v['sum'])}/{int(v['count'])}" for k, v in by_size.iterrows()
        },
        "recall_by_frame_width": {
            str(int(k)): round(100 * float(v.mean()), 1) for k, v in counted.groupby(width)["found"]
        },
        "attributes": attribute_scores(found, groups),
    }, found


def first_faces(rows: pd.DataFrame) -> pd.DataFrame:
    """The most confident face of each file (or the file's one row in aligned mode), with its
    file's name as `source`."""
    first = rows[(rows["status"] == "ok") & (rows["face_index"].fillna(0) == 0)].copy()
    first["source"] = first["name"]
    return first


def crop_report(rows: pd.DataFrame, groups: AgeGroups) -> dict:
    """Attributes of re-framed or original crops, one face expected per file: the most confident
    face of each (or the file's one row in aligned mode); files without a face are counted."""
    first = first_faces(rows)
    files = rows["name"].nunique()
    report = {"files": int(files), "found": round(100 * len(first) / max(files, 1), 1)}
    report.update(attribute_scores(first, groups))
    return report


def same_faces(found: pd.DataFrame, reference: pd.DataFrame, groups: AgeGroups) -> dict:
    """Attributes of the aligned-mode reference on exactly the faces that `found` holds."""
    names = set(found["source"])
    subset = reference[reference["name"].isin(names) & (reference["status"] == "ok")].copy()
    subset["source"] = subset["name"]
    return attribute_scores(subset, groups)


def paired_gap(
    detected: pd.DataFrame,
    reference: pd.DataFrame,
    head: str,
    groups: AgeGroups,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """How many points of `head` accuracy `reference` (the faces as crops, aligned) scores above
    `detected` on the faces both scored (matched by `source`), with a 95% interval from a paired
    bootstrap over those faces: whether a gap is larger than the noise of a few hundred faces."""
    both = detected[["source", head]].merge(
        reference[["source", head]], on="source", suffixes=("", "_reference")
    )
    if both.empty:
        return {"faces": 0}
    truth = pd.Series([truth_of(name, groups)[head] for name in both["source"]], index=both.index)
    difference = (both[f"{head}_reference"] == truth).to_numpy(float) - (
        both[head] == truth
    ).to_numpy(float)
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (draws, len(difference)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "faces": int(len(both)),
        "gap": round(100 * float(difference.mean()), 1),
        "low": round(100 * float(low), 1),
        "high": round(100 * float(high), 1),
    }
