"""research/jobs/fairface_more.py and merge_shards.py: FairFace's other training photos with
their bins put back, and shards prepared apart merged into one run (issue 33's trial)."""

from __future__ import annotations

import pytest

from research.jobs.fairface_more import fixed_age, left_out_rows
from research.jobs.merge_shards import check_compatible, merged_counts


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


def test_counts_of_two_preparations_add_up():
    first = {
        "files": 10,
        "unlabelled": 1,
        "under_min_age": 2,
        "unreadable_files": ["a"],
        "rows": {"train": 5, "test": 2},
        "sources": {"utkface/train": 5, "utkface/test": 2},
        "views": {"train": {"crop": 3, "frame": 2}},
        "faces": "detect",
        "image_size": 48,
    }
    second = {
        "files": 4,
        "unlabelled": 0,
        "under_min_age": 1,
        "unreadable_files": [],
        "rows": {"train": 3},
        "sources": {"more/train": 3},
        "views": {"train": {"crop": 1, "tighter": 2}},
        "faces": "detect",
        "image_size": 48,
    }
    merged = merged_counts([first, second])
    assert merged["files"] == 14 and merged["under_min_age"] == 3
    assert merged["rows"] == {"test": 2, "train": 8}
    assert merged["sources"] == {"more/train": 3, "utkface/test": 2, "utkface/train": 5}
    assert merged["views"] == {"train": {"crop": 4, "frame": 2, "tighter": 2}}
    assert merged["unreadable_files"] == ["a"]


def test_shards_made_with_other_settings_or_the_same_source_twice_are_refused():
    recipe = {"image_size": 48, "sources": {"a": 1.0, "b": 1.0}}
    check_compatible(
        recipe, [{"image_size": 48, "sources": {"a": 1}}, {"image_size": 48, "sources": {"b": 1}}]
    )
    with pytest.raises(SystemExit, match="image_size"):
        check_compatible(recipe, [{"image_size": 64, "sources": {"a": 1.0, "b": 1.0}}])
    with pytest.raises(SystemExit, match="prepared twice"):
        check_compatible(recipe, [{"image_size": 48, "sources": {"a": 1}}] * 2)
    with pytest.raises(SystemExit, match="not the recipe"):
        check_compatible(recipe, [{"image_size": 48, "sources": {"a": 1}}])
