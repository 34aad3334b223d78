"""Detection measured on real photos (sparkface.evaluate.photos): WIDER's box format, the halves,
one-to-one matching, unmatched detections, size bands, missed faces' reasons, perceived gender,
and the benchmark's run over photos the test makes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sparkface.core.errors import InputError
from sparkface.evaluate.photos import (
    Tally,
    TrueFace,
    band_of,
    in_half,
    match,
    overlaps,
    perceived_genders,
    read_wider_truth,
    reason_of,
    table,
)

WIDER = """0--Parade/0_Parade_Parade_0_1.jpg
2
10 20 50 60 0 0 0 0 0 0
100 100 200 180 2 0 0 0 1 1
0--Parade/0_Parade_Parade_0_2.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_Handshaking_3.jpg
1
5 5 80 80
"""


def face(x, y, w, h, **attributes):
    return TrueFace((x, y, w, h), attributes)


def test_wider_truth_is_read_with_its_attributes_and_empty_photos(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(WIDER)
    truth = read_wider_truth(path)
    assert list(truth) == [
        "0--Parade/0_Parade_Parade_0_1.jpg",
        "0--Parade/0_Parade_Parade_0_2.jpg",
        "1--Handshaking/1_Handshaking_3.jpg",
    ]
    first = truth["0--Parade/0_Parade_Parade_0_1.jpg"]
    assert [f.box for f in first] == [(10, 20, 50, 60), (100, 100, 200, 180)]
    assert first[1].attributes == dict(
        blur=2, expression=0, illumination=0, invalid=0, occlusion=1, pose=1
    )
    assert first[1].side == 180
    assert truth["0--Parade/0_Parade_Parade_0_2.jpg"] == []
    assert truth["1--Handshaking/1_Handshaking_3.jpg"][0].attributes == {}


def test_a_file_not_in_wider_format_is_an_input_error(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("photo.jpg\ntwo\n1 2 3 4\n")
    with pytest.raises(InputError, match="not WIDER's box format near line 1"):
        read_wider_truth(path)


def test_the_halves_split_by_the_sha1_of_the_name_alone():
    names = [f"0--Parade/0_Parade_Parade_0_{i}.jpg" for i in range(200)]
    even = [n for n in names if in_half(n, "even")]
    odd = [n for n in names if in_half(n, "odd")]
    assert sorted(even + odd) == sorted(names) and not set(even) & set(odd)
    assert 70 < len(even) < 130
    # The folder does not count: the same name elsewhere falls in the same half.
    assert all(in_half("elsewhere/" + n.split("/")[1], "even") for n in even)
    # sha1("0_Parade_marchingband_1_765.jpg") starts d1f59b10 (even), as the rule says.
    assert in_half("0--Parade/0_Parade_marchingband_1_765.jpg", "even")
    assert all(in_half(n, "all") for n in names)


def test_overlap_is_intersection_over_union():
    iou = overlaps(
        np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    )
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])
    assert overlaps(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)


def test_matching_is_one_to_one_most_confident_first_and_counts_stray_detections():
    truth = [face(0, 0, 100, 100), face(200, 0, 100, 100), face(400, 0, 10, 10)]
    found = [
        (5, 5, 100, 100),  # the first face
        (0, 0, 90, 90),  # the first face again, less confident: no second match, not stray
        (600, 600, 50, 50),  # nothing there: stray
        (401, 0, 10, 10),  # the small face: a match, even below the bands
    ]
    matched, unmatched = match(found, [0.9, 0.8, 0.95, 0.7], truth)
    assert matched == [0, None, 3]
    assert unmatched == 1
    assert match([], [], truth) == ([None, None, None], 0)
    assert match([(0, 0, 5, 5)], [0.5], []) == ([], 1)


def test_a_detection_takes_the_free_face_it_overlaps_most():
    truth = [face(0, 0, 100, 100), face(60, 0, 100, 100)]
    matched, _ = match([(50, 0, 100, 100), (0, 0, 100, 100)], [0.9, 0.5], truth)
    assert matched == [1, 0]


@pytest.mark.parametrize(
    "side, band",
    [(47, None), (48, "48-63"), (63, "48-63"), (64, "64-95"), (159, "96-159"), (160, "160+")],
)
def test_size_bands_by_the_shorter_side(side, band):
    assert band_of(side) == band


def test_a_missed_faces_reason_is_its_first_marked_attribute():
    assert reason_of(face(0, 0, 50, 50, pose=1, occlusion=2)) == "atypical pose"
    assert reason_of(face(0, 0, 50, 50, occlusion=2, blur=2)) == "heavy occlusion"
    assert reason_of(face(0, 0, 50, 50, blur=1)) == "some blur"
    assert reason_of(face(0, 0, 50, 50, blur=0, occlusion=0)) == "none marked"


def test_the_tally_counts_bands_reasons_strays_time_and_gender():
    truth = [face(0, 0, 50, 50), face(100, 0, 200, 200, pose=1), face(400, 0, 20, 20)]
    tally = Tally()
    tally.add_photo(truth, [0, None, None], 2, 0.5, {0: ("female", "male"), 2: ("male", "male")})
    other = Tally()
    other.add_photo([face(0, 0, 70, 70)], [0], 0, 1.5, {0: ("male", "male")})
    report = tally.merge(other).report()
    assert report["photos"] == 2 and report["faces"] == 3  # the 20-px face is in no band
    assert report["recall"] == round(2 / 3, 4)
    assert report["bands"]["48-63"] == {"faces": 1, "found": 1, "recall": 1.0}
    assert report["bands"]["160+"] == {"faces": 1, "found": 0, "recall": 0.0}
    assert report["bands"]["96-159"]["recall"] is None
    assert report["unmatched_per_photo"] == 1.0 and report["seconds_per_photo"] == 1.0
    assert report["missed_reasons"] == {"atypical pose": 1}
    # Gender only on found faces in a band: the 20-px face does not count.
    assert report["gender"] == {"faces": 2, "accuracy": 0.5}
    assert "| faces.yaml | 100.0% | 100.0% | – | 0.0% | 66.7% | 1.000 | 1.00 | 50.0% |" in table(
        {"faces.yaml": report}
    )


def test_perceived_gender_by_photo_and_face_index(tmp_path):
    path = tmp_path / "demographics.csv"
    path.write_text(
        ",file,perceived_gender,perceived_age,perceived_skin,face\n"
        "0,images/0--Parade/a.jpg,Male,Young Adult,I,3\n"
        "1,images/0--Parade/a.jpg,Female,Adult,II,0\n"
        "2,images/0--Parade/a.jpg,Unsure,Adult,II,1\n"
        "3,images/0--Parade/b.jpg,Female,Adult,II,0\n"
    )
    genders = perceived_genders(path, ["0--Parade/a.jpg"])
    assert genders == {"0--Parade/a.jpg": {3: "male", 0: "female"}}


@pytest.mark.slow
def test_the_benchmark_finds_the_faces_of_photos_it_is_given(tmp_path):
    """Real crops pasted into two photos with WIDER-style truth: the benchmark's report says
    every face of a band was found, none stray, in both configs it compares."""
    from benchmarks.detect_photos import main
    from tests.test_detect import real_faces

    sources = real_faces(3)
    images = tmp_path / "images" / "0--Test"
    images.mkdir(parents=True)
    lines = []
    for index, path in enumerate(sources[:2]):
        photo = Image.new("RGB", (900, 600), (90, 110, 130))
        crop = Image.open(path).convert("RGB").resize((160, 160))
        photo.paste(crop, (100 + 300 * index, 200))
        photo.save(images / f"photo_{index}.jpg", quality=92)
        # The true box: the face inside the crop (the crops' faces fill about 60% of them).
        lines += [f"0--Test/photo_{index}.jpg", "1", f"{100 + 300 * index + 30} 230 100 110"]
    (tmp_path / "gt.txt").write_text("\n".join(lines) + "\n")
    output = tmp_path / "report.json"
    code = main(
        [
            "--images", str(tmp_path / "images"), "--truth", str(tmp_path / "gt.txt"),
            "--workers", "1", "--set", "blazeface:detector=full,min_confidence=0.55",
            "--output", str(output),
        ]
    )  # fmt: skip
    assert code == 0
    reports = json.loads(output.read_text())
    assert list(reports) == ["faces.yaml", "blazeface"]
    for report in reports.values():
        assert report["photos"] == 2 and report["faces"] == 2
        assert report["recall"] == 1.0 and report["unmatched_per_photo"] == 0.0
        assert report["seconds_per_photo"] > 0


def test_set_changes_several_keys_and_lists_of_the_first_config():
    """--set NAME:KEY=VALUE,...: commas inside a list belong to its value."""
    from benchmarks.detect_photos import parse_args, variants

    args = parse_args(
        ["--images", "i", "--truth", "t", "--set", "two:detector_pixels=[800, 400],max_faces=9"]
    )
    configs = variants(args)
    assert list(configs) == ["faces.yaml", "two"]
    assert configs["two"].detector_pixels == (800, 400) and configs["two"].max_faces == 9
    assert configs["two"].min_confidence == configs["faces.yaml"].min_confidence


@pytest.mark.slow
def test_the_detect_benchmark_runs_both_modes_and_the_settings_it_is_against(tmp_path):
    """benchmarks/detect_bench.py, run as a user runs it (its own process and Spark session):
    crops in aligned mode, frames in detect mode with conf/faces.yaml and with --against's
    settings, every file a row in each, and the ratio between the two detectors."""
    from tests.conftest import ROOT, job_environment, utk_names, write_faces

    source = tmp_path / "faces"
    write_faces(source, utk_names(8), size=(200, 200))
    command = [
        sys.executable, str(ROOT / "benchmarks" / "detect_bench.py"), "--input", str(source),
        "--frames", "6", "--breakdown", "2", "--rounds", "2",
        "--against", str(ROOT / "research" / "conf" / "faces-blazeface.yaml"),
    ]  # fmt: skip
    run = subprocess.run(
        command, env=job_environment(), capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    names = [row.split(" | ")[0].lstrip("| ") for row in rows[1:]]
    assert names == ["aligned, crops", "detect, frames", "detect (faces-blazeface.yaml), frames"]
    assert all(row.split(" | ")[1] == "6" for row in rows[1:])
    assert "detect frames/s over detect (faces-blazeface.yaml), frames:" in run.stdout
