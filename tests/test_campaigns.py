from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from sparkface.core.config import ConfigError, load_faces, validated
from sparkface.core.package import load_bundle
from sparkface.score.campaigns import (
    Campaign,
    CampaignError,
    CampaignLock,
    CampaignLocked,
    load_campaign,
    run_campaign,
    select_files,
)
from sparkface.score.transform import OUTPUT_COLUMNS
from tests.conftest import tiny_model_package, utk_names, write_faces


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(str(tiny_model_package(tmp_path_factory.mktemp("model"))))


@pytest.fixture
def setup(tmp_path, bundle):
    inbox = tmp_path / "inbox"
    write_faces(inbox, utk_names(30, seed=1)[:20])
    campaign = Campaign(
        name="lobby",
        inputs=(str(inbox),),
        output=str(tmp_path / "out"),
        batch_size=8,
        faces="aligned",  # synthetic crops: no face a detector would find
    )
    return inbox, campaign, tmp_path / "out"


def published(out, campaign="lobby") -> pd.DataFrame:
    frame = pd.read_parquet(out / "predictions")
    return frame[frame["campaign"] == campaign]


def runs(out) -> pd.DataFrame:
    return pd.read_parquet(out / "runs").sort_values("started_at")


def test_two_nights_score_each_file_exactly_once(spark, setup, bundle):
    inbox, campaign, out = setup
    (inbox / "Thumbs.db").write_bytes(b"not an image: no row, counted in the manifest")
    (inbox / ".DS_Store").write_bytes(b"hidden: no row, counted in the manifest")
    first = run_campaign(spark, campaign, "2026-11-27", bundle=bundle)
    write_faces(inbox / "new", utk_names(30, seed=1)[20:])
    second = run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    assert (first["scored"], second["scored"]) == (20, 10)
    assert second["skipped_already_scored"] == 20
    rows = published(out)
    assert len(rows) == 30 and rows["path"].is_unique
    assert rows.groupby(rows["run_date"].astype(str)).size().to_dict() == {
        "2026-11-27": 20,
        "2026-11-28": 10,
    }
    for day in ("2026-11-27", "2026-11-28"):
        partition = out / "predictions" / "campaign=lobby" / f"run_date={day}"
        assert (partition / "_SUCCESS").is_file()
        manifest = json.loads((partition / "_manifest.json").read_text())
        assert manifest["campaign"] == "lobby" and manifest["run_date"] == day
        assert manifest["model_sha256"] == bundle.sha256
        assert manifest["left_out_by_extension"] == {".db": 1}
        assert manifest["left_out_hidden"] == 1
        assert {
            "files_seen",
            "scored",
            "errors",
            "skipped_already_scored",
            "duration_seconds",
            "spark_application_id",
            "run_id",
            "model_version",
        } <= set(manifest)
        assert list(
            (out / "predictions_json" / "campaign=lobby" / f"run_date={day}").glob("part-*.json")
        )
    assert list(runs(out)["status"]) == ["succeeded", "succeeded"]


def test_an_output_named_like_a_pattern_holds_the_nights_each_run_reads_back(
    spark, setup, bundle, tmp_path
):
    # A run reads back its staged night and the nights before it: read as a pattern, `out[prod]`
    # named no folder, and the second night failed.
    inbox, campaign, _ = setup
    out = tmp_path / "out[prod]"
    campaign = campaign.model_copy(update={"output": str(out)})
    run_campaign(spark, campaign, "2026-11-27", bundle=bundle)
    second = run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    assert (second["scored"], second["skipped_already_scored"]) == (0, 20)
    assert len(published(out)) == 20 and list(runs(out)["status"]) == ["succeeded"] * 2


def test_rerun_of_a_night_replaces_it_with_the_same_rows(spark, setup, bundle):
    inbox, campaign, out = setup
    run_campaign(spark, campaign, "2026-11-27", bundle=bundle)
    write_faces(inbox / "new", utk_names(30, seed=1)[20:])
    run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    before = published(out).sort_values("path").reset_index(drop=True)
    run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    after = published(out).sort_values("path").reset_index(drop=True)
    assert len(after) == 30
    columns = ["path", "run_date", "status", "age_group", "gender", "race", "age_years"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
    untouched = after["run_date"].astype(str) == "2026-11-27"
    assert (after.loc[untouched, "run_id"] == before.loc[untouched, "run_id"]).all()


def test_changed_file_is_scored_again_and_full_rescores_all(spark, setup, bundle):
    inbox, campaign, out = setup
    run_campaign(spark, campaign, "2026-11-27", bundle=bundle)
    changed = sorted(inbox.glob("*.jpg"))[0]
    later = time.time() + 60
    os.utime(changed, (later, later))
    second = run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    assert second["scored"] == 1
    third = run_campaign(spark, campaign, "2026-11-29", full=True, bundle=bundle)
    assert third["scored"] == 20 and third["skipped_already_scored"] == 0


def test_a_run_that_fails_midway_changes_nothing_published(spark, setup, bundle):
    inbox, campaign, out = setup
    run_campaign(spark, campaign, "2026-11-27", bundle=bundle)
    before = published(out).sort_values("path").reset_index(drop=True)
    write_faces(inbox / "new", utk_names(30, seed=1)[20:])

    def crash(staging):
        assert list((staging / "parquet").glob("part-*.parquet"))  # rows were written...
        raise RuntimeError("executor lost (injected)")  # ...but never published

    # Not a user's error: it reaches the job runner as it was, to be logged with its traceback.
    with pytest.raises(RuntimeError, match="injected"):
        run_campaign(spark, campaign, "2026-11-28", bundle=bundle, before_publish=crash)
    pd.testing.assert_frame_equal(published(out).sort_values("path").reset_index(drop=True), before)
    assert not (out / "predictions" / "campaign=lobby" / "run_date=2026-11-28").exists()
    assert not any((out / "_staging").rglob("*.parquet"))
    log = runs(out)
    assert list(log["status"]) == ["succeeded", "failed"]
    assert "injected" in log["reason"].iloc[-1]
    again = run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    assert again["scored"] == 10 and len(published(out)) == 30


def test_missing_input_is_a_failed_run_with_its_reason(spark, tmp_path, bundle):
    campaign = Campaign(
        name="gone", inputs=(str(tmp_path / "nowhere"),), output=str(tmp_path / "out")
    )
    with pytest.raises(CampaignError, match="input folder"):
        run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    log = runs(tmp_path / "out")
    assert list(log["status"]) == ["failed"]
    assert "missing" in log["reason"].iloc[0]
    assert not (tmp_path / "out" / "predictions").exists()


def test_a_second_run_at_once_is_refused_and_a_dead_lock_is_taken_over(spark, setup, bundle):
    _, campaign, out = setup
    holder = CampaignLock(out, "lobby", "first-run", 12)
    holder.acquire()
    with pytest.raises(CampaignLocked, match="in progress"):
        run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    holder.release()
    holder.path.write_text(
        json.dumps(
            {
                "run_id": "crashed",
                "pid": 999_999_999,
                "host": os.uname().nodename,
                "started": time.time(),
            }
        )
    )
    assert run_campaign(spark, campaign, "2026-11-28", bundle=bundle)["status"] == "succeeded"
    assert not holder.path.exists()


def test_duckdb_reads_the_documented_columns(spark, setup, bundle):
    _, campaign, out = setup
    run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    relation = duckdb.sql(
        f"select * from read_parquet('{out}/predictions/**/*.parquet', hive_partitioning=true)"
    )
    assert set(OUTPUT_COLUMNS) | {"campaign", "run_date"} == set(relation.columns)
    rows = duckdb.sql(
        f"select campaign, cast(run_date as varchar), count(*) from read_parquet("
        f"'{out}/predictions/**/*.parquet', hive_partitioning=true) group by all"
    ).fetchall()
    assert rows == [("lobby", "2026-11-28", 20)]
    spark_rows = spark.read.parquet(str(out / "predictions"))
    assert {"campaign", "run_date"} <= set(spark_rows.columns)


def test_campaign_files_are_validated(tmp_path):
    (tmp_path / "a.yaml").write_text("inputs: [x]\noutput: y\nmodle: z\n")
    with pytest.raises(
        ConfigError, match=r"a.yaml: modle: unknown key; known keys: \['audience', 'batch_size'"
    ):
        load_campaign("a", tmp_path)
    (tmp_path / "b.yaml").write_text("inputs: [x]\n")
    with pytest.raises(ConfigError, match=r"b.yaml: output: missing key"):
        load_campaign("b", tmp_path)
    # Publishing renames folders and keeps a lock: a URI's run wrote them to a local `hdfs:`.
    (tmp_path / "d.yaml").write_text("inputs: [x]\noutput: hdfs://nn/campaigns\n")
    with pytest.raises(ConfigError, match=r"d.yaml: output: 'hdfs://nn/campaigns' is a URI"):
        load_campaign("d", tmp_path)
    with pytest.raises(ConfigError, match="no campaign 'c'"):
        load_campaign("c", tmp_path)
    assert load_campaign("utkface-nightly").formats == ("parquet", "json")


def test_a_campaign_s_paths_may_start_from_the_user_s_home(tmp_path, monkeypatch):
    # As a shell reads `~/cams`: it was a folder named `~` under the project.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "n.yaml").write_text("inputs: [~/cams]\noutput: ~/out\n")
    campaign = load_campaign("n", tmp_path)
    assert (campaign.inputs, campaign.output) == ((f"{tmp_path}/cams",), f"{tmp_path}/out")


@pytest.mark.parametrize(
    "inputs, where",
    [
        (["{d}/cams", "{d}/cams/lobby"], "'{d}/cams/lobby' is inside '{d}/cams'"),
        (["{d}/cams/lobby", "{d}/cams"], "'{d}/cams/lobby' is inside '{d}/cams'"),
        (["{d}/cams", "{d}/cams/"], "'{d}/cams' is listed twice"),
        # Named where the link leads, as the campaign's rows name its files.
        (["{d}/cams/lobby", "{d}/lobby-link"], "'{d}/cams/lobby' is listed twice"),
        (["s3a://c/cams/", "s3a://c/cams/lobby"], "'s3a://c/cams/lobby' is inside 's3a://c/cams/'"),
    ],
)
def test_inputs_that_hold_each_other_are_refused(tmp_path, inputs, where):
    # Each file of the inner folder was read through both inputs: four rows of one photo a
    # night, and a log that said "14 files seen, 10 skipped as already scored, 14 scored".
    (tmp_path / "cams" / "lobby").mkdir(parents=True)
    (tmp_path / "lobby-link").symlink_to(tmp_path / "cams" / "lobby")
    named = [path.format(d=tmp_path) for path in inputs]
    (tmp_path / "n.yaml").write_text(json.dumps({"inputs": named, "output": "out"}))
    with pytest.raises(ConfigError) as refused:
        load_campaign("n", tmp_path)
    assert str(refused.value).endswith(
        f"inputs: {where.format(d=tmp_path)} (links followed): each of its files would be "
        "scored twice a night; list one of them"
    )
    # A folder whose name only starts like another's is not inside it.
    beside = [f"{tmp_path}/cams", f"{tmp_path}/cams-2"]
    (tmp_path / "m.yaml").write_text(json.dumps({"inputs": beside, "output": "out"}))
    assert load_campaign("m", tmp_path).inputs == tuple(beside)


@pytest.mark.parametrize(
    ("inputs", "output"),
    [(["cams"], "cams/out"), (["lobby", "out/cams"], "out"), (["cams"], "cams-link")],
)
def test_an_output_that_overlaps_an_input_is_refused(tmp_path, inputs, output):
    # A night replaces folders under its output, and would list what it wrote the night before.
    (tmp_path / "cams").mkdir()
    (tmp_path / "cams-link").symlink_to(tmp_path / "cams")
    named = {"inputs": [f"{tmp_path}/{name}" for name in inputs], "output": f"{tmp_path}/{output}"}
    (tmp_path / "n.yaml").write_text(json.dumps(named))
    with pytest.raises(ConfigError, match="overlap .links followed.; choose an output apart"):
        load_campaign("n", tmp_path)


@pytest.mark.parametrize(
    "pattern",
    [
        r"^cam\d+_",
        r"^(?P<camera>cam\d+)_",  # checked as Python's, run as Java's: it failed after listing
        r"^(?P<cam_id>cam(?P<digit>\d))(?P=digit)?_",  # a name Java refuses, a back-reference
    ],
)
def test_the_filters_keep_the_files_they_name(spark, tmp_path, pattern):
    files = spark.createDataFrame(
        [
            ("cam1_0900.jpg", datetime(2026, 12, 7, 9, tzinfo=UTC)),
            ("cam11_0901.jpg", datetime(2026, 12, 7, 9, 1, tzinfo=UTC)),
            ("cam2_0700.jpg", datetime(2026, 12, 7, 7, tzinfo=UTC)),
            ("lobby.jpg", datetime(2026, 12, 7, 9, tzinfo=UTC)),
        ],
        "file_name string, modified_at timestamp",
    )
    campaign = Campaign(
        name="n", inputs=[f"{tmp_path}/cams"], output=f"{tmp_path}/out", file_name_pattern=pattern
    )
    kept = {row.file_name for row in select_files(files, campaign).collect()}
    assert kept == {"cam1_0900.jpg", "cam11_0901.jpg", "cam2_0700.jpg"}
    later = campaign.model_copy(update={"modified_after": "2026-12-07T08:00:00+00:00"})
    kept = {row.file_name for row in select_files(files, later).collect()}
    assert kept == {"cam1_0900.jpg", "cam11_0901.jpg"}


def test_a_fault_while_publishing_leaves_the_night_and_a_killed_publish_is_completed(
    spark, setup, bundle, monkeypatch
):
    import sparkface.score.publish as publishing

    inbox, campaign, out = setup
    run_campaign(spark, campaign, "2026-11-28", bundle=bundle)
    before = published(out).sort_values("path").reset_index(drop=True)
    old_json = sorted((out / "predictions_json").rglob("part-*.json"))

    def fail(step):
        if step == "parquet swapped":
            raise OSError("disk full (injected)")

    with pytest.raises(OSError, match="injected"):
        run_campaign(spark, campaign, "2026-11-28", full=True, bundle=bundle, fault=fail)
    pd.testing.assert_frame_equal(published(out).sort_values("path").reset_index(drop=True), before)
    assert sorted((out / "predictions_json").rglob("part-*.json")) == old_json
    assert list(runs(out)["status"]) == ["succeeded", "failed"]

    # As if the process died after the Parquet swap: nothing undone, the journal left behind.
    def die(swap, run_id):
        raise RuntimeError("killed (injected)")

    monkeypatch.setattr(publishing, "_swap_back", die)
    with pytest.raises(RuntimeError, match="killed"):
        run_campaign(spark, campaign, "2026-11-28", full=True, bundle=bundle, fault=fail)
    monkeypatch.undo()
    killed = runs(out)["run_id"].iloc[-1]
    assert published(out)["run_id"].unique().tolist() == [killed]  # Parquet: the new rows
    assert sorted((out / "predictions_json").rglob("part-*.json")) == old_json  # JSON: the old

    write_faces(inbox / "new", utk_names(30, seed=1)[20:])
    run_campaign(spark, campaign, "2026-11-29", bundle=bundle)
    log = runs(out)
    recovered = log[log["status"] == "recovered"]
    assert recovered[["run_id", "run_date"]].values.tolist() == [[killed, "2026-11-28"]]
    night = out / "predictions_json" / "campaign=lobby" / "run_date=2026-11-28"
    json_rows = pd.concat(pd.read_json(p, lines=True) for p in night.glob("part-*.json"))
    assert set(json_rows["run_id"]) == {killed} and len(json_rows) == 20
    assert not list((out / "_publish" / "campaign=lobby").glob("*.json"))
    assert not [path for path in (out / "_staging").rglob("*") if path.is_file()]


def test_a_campaign_says_how_faces_are_found():
    base = {"name": "lobby", "inputs": ("in",), "output": "out"}
    assert Campaign(**base, faces="aligned").face_settings() is None
    detect = Campaign(**base, faces="detect").face_settings()
    assert detect is not None and detect.min_face_pixels == load_faces().min_face_pixels
    default = Campaign(**base).face_settings()  # conf/faces.yaml's mode
    assert (default is None) == (load_faces().mode == "aligned")
    with pytest.raises(ConfigError, match="faces: Input should be '', 'aligned' or 'detect'"):
        validated(Campaign, {**base, "faces": "crops"}, "lobby.yaml")
