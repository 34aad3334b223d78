"""`spark-submit jobs/score.py --faces detect`: a row per face found, with its box, confidence and
landmarks; one 'no_face' row for an image without a face; one 'error' row for a file that is not
a usable image; nothing lost, nothing counted twice, the same rows on a rerun."""

from __future__ import annotations

import io
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sparkface.train.frames import make_frame
from tests.conftest import (
    ROOT,
    SHARED_FACES,
    bad_and_odd_files,
    job_environment,
    spark_submit,
    tiny_model_package,
)

pytestmark = pytest.mark.slow


def jpeg(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, **save)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Frames with 3, 2 and 0 real faces, an upside-down photo (EXIF), a 1x1 image, a 10000x20
    strip, a grey frame, a 50-megapixel photo, and the bad and odd files of every scoring test."""
    if not SHARED_FACES.is_dir():
        pytest.skip("needs the shared UTKFace crops (../shared/data/utkface)")
    folder = tmp_path_factory.mktemp("frames")
    sources = sorted(SHARED_FACES.iterdir())[2000:2300:20]
    rng = np.random.default_rng(11)
    truth = {}
    for name, count, size in (("three.jpg", 3, (640, 480)), ("two.jpg", 2, (1280, 720))):
        frame, placed = make_frame(
            rng, sources[:count] if count == 3 else sources[5:7], count, size
        )
        (folder / name).write_bytes(jpeg(frame))
        truth[name] = placed
    empty, _ = make_frame(rng, [], 0, (640, 480))
    (folder / "nobody.jpg").write_bytes(jpeg(empty))
    photo = Image.new("RGB", (800, 600), (70, 80, 90))
    photo.paste(Image.open(sources[10]), (100, 50))
    exif = Image.Exif()
    exif[0x0112] = 3
    (folder / "upside_down.jpg").write_bytes(jpeg(photo.rotate(180), exif=exif.tobytes()))
    (folder / "tiny_1x1.png").write_bytes(jpeg(Image.new("RGB", (1, 1))))
    (folder / "strip.jpg").write_bytes(jpeg(Image.new("RGB", (10000, 20), (200, 10, 10))))
    (folder / "grey_frame.jpg").write_bytes(jpeg(Image.new("L", (640, 480), 128)))
    (folder / "fifty_megapixels.jpg").write_bytes(jpeg(Image.new("RGB", (8660, 5780))))
    bad = bad_and_odd_files()
    for name, (content, _) in bad.items():
        (folder / "odd" / name).parent.mkdir(exist_ok=True)
        (folder / "odd" / name).write_bytes(content)
    return folder, truth, bad


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_package(tmp_path_factory.mktemp("model"))


def score(folder, out, model) -> subprocess.CompletedProcess:
    command = spark_submit(
        "score.py", "--input", str(folder), "--output", str(out), "--model", str(model),
        "--faces", "detect", "--batch-size", "8",
    )  # fmt: skip
    result = subprocess.run(
        command, env=job_environment(), capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def scored(inputs, model_dir, tmp_path_factory):
    folder, _, _ = inputs
    out = tmp_path_factory.mktemp("out") / "predictions"
    score(folder, out, model_dir)
    rows = pd.read_parquet(out / "parquet")
    rows["name"] = rows["path"].str.rsplit("/", n=1).str[-1]
    return rows, out


def test_every_file_gives_its_rows_and_none_is_lost(inputs, scored):
    folder, truth, bad = inputs
    rows, out = scored
    files = {p.name for p in folder.rglob("*") if p.is_file()}
    assert set(rows["name"]) == files
    per_file = rows.groupby("name")
    # Files without a face, and files that are not usable images, give exactly one row.
    single = rows[rows["status"] != "ok"]
    assert single["name"].is_unique
    assert not set(single["name"]) & set(rows.loc[rows["status"] == "ok", "name"])
    for name, placed in truth.items():
        faces = per_file.get_group(name)
        assert (faces["status"] == "ok").all() and len(faces) == len(placed)
        assert sorted(faces["face_index"]) == list(range(len(placed)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == len(files)
    assert summary["scored"] == int((rows["status"] == "ok").sum())
    assert summary["no_face"] == int((rows["status"] == "no_face").sum())


def test_face_columns_hold_the_box_confidence_and_landmarks(inputs, scored):
    _, truth, _ = inputs
    rows, _ = scored
    found = rows[rows["name"] == "three.jpg"]
    for face in truth["three.jpg"]:
        nearest = min(
            found.itertuples(),
            key=lambda r: (
                abs(r.face_box["x"] + r.face_box["width"] / 2 - face.centre_x)
                + abs(r.face_box["y"] + r.face_box["height"] / 2 - face.centre_y)
            ),
        )
        box = nearest.face_box
        assert abs(box["x"] + box["width"] / 2 - face.centre_x) < 0.25 * face.side
        assert 0.5 <= nearest.face_confidence <= 1
        marks = nearest.face_landmarks
        assert set(marks) == {"right_eye", "left_eye", "nose_tip", "mouth_centre"}
        assert (
            box["x"] <= marks["right_eye"]["x"] < marks["left_eye"]["x"] <= box["x"] + box["width"]
        )
        assert marks["right_eye"]["y"] < marks["mouth_centre"]["y"]
        assert nearest.gender in ("male", "female") and nearest.width == 640


def test_images_without_a_face_and_bad_files_say_why(inputs, scored):
    _, _, bad = inputs
    rows, _ = scored
    by_name = rows.set_index("name")
    for name in ("nobody.jpg", "tiny_1x1.png", "strip.jpg", "grey_frame.jpg"):
        row = by_name.loc[name]
        assert row["status"] == "no_face", name
        assert row["face_index"] is None or pd.isna(row["face_index"])
        assert row["face_box"] is None and row["gender"] is None
    assert (by_name.loc["strip.jpg", "width"], by_name.loc["strip.jpg", "height"]) == (10000, 20)
    assert "image too large" in by_name.loc["fifty_megapixels.jpg", "error"]
    for name, (_, error) in bad.items():
        if error:
            assert by_name.loc[name, "status"] == "error" and error in by_name.loc[name, "error"]
    upside = by_name.loc[["upside_down.jpg"]]
    assert (upside["status"] == "ok").all()
    box = upside.iloc[0]["face_box"]  # in the pixels of the photo as shown: the face top left
    assert box["x"] < 400 and box["y"] < 300


def test_a_rerun_writes_the_same_rows(inputs, scored, model_dir, tmp_path):
    folder, _, _ = inputs
    rows, _ = scored
    score(folder, tmp_path / "again", model_dir)
    again = pd.read_parquet(tmp_path / "again" / "parquet")
    again["name"] = again["path"].str.rsplit("/", n=1).str[-1]
    key = ["name", "face_index"]
    first = rows.sort_values(key).reset_index(drop=True)
    second = again.sort_values(key).reset_index(drop=True)
    assert len(first) == len(second)
    for column in ("name", "face_index", "status", "error", "gender", "race", "age_group"):
        assert first[column].fillna(-1).tolist() == second[column].fillna(-1).tolist(), column
    assert first["face_box"].tolist() == second["face_box"].tolist()
