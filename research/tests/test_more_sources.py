"""research/jobs/fairface_more.py: FairFace's other training photos, with their bins put back
(issue 33's trial)."""

from __future__ import annotations

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
