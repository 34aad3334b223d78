"""research/jobs/fairface_more.py: FairFace's other training photos, with their bins put back;
research/jobs/all_age_faces.py: All-Age-Faces' labels from its names (issue 33's trials)."""

from __future__ import annotations

from research.jobs.all_age_faces import label
from research.jobs.fairface_more import fixed_age, left_out_rows


def test_the_spreadsheets_ages_become_fairfaces_bins_again():
    assert [fixed_age(a) for a in ("03-Sep", "Oct-19", "more than 70", "20-29", " 0-2")] == [
        "3-9",
        "10-19",
        "70+",
        "20-29",
        "0-2",
    ]


def test_only_the_photos_the_shared_sample_left_out_are_kept(tmp_path):
    (tmp_path / "labels.csv").write_text("file,age,gender,race\ntrain/1.jpg,3-9,Male,White\n")
    table = (
        b"file,age,gender,race,service_test\n"
        b"train/1.jpg,03-Sep,Male,White,TRUE\n"
        b"train/2.jpg,Oct-19,Female,Indian,FALSE\n"
    )
    assert left_out_rows(table, tmp_path) == [
        {"file": "train/2.jpg", "age": "10-19", "gender": "Female", "race": "Indian"}
    ]


def test_all_age_faces_names_give_the_age_and_the_gender_by_the_id():
    assert label("00000A02.jpg") == {"file": "00000A02.jpg", "age": "2", "gender": "F"}
    assert label("07380A80.jpg")["gender"] == "F" and label("07381A10.jpg")["gender"] == "M"
    assert label("13321A64.jpg") == {"file": "13321A64.jpg", "age": "64", "gender": "M"}
    assert label("00000A02.png") is None and label("readme.txt") is None
