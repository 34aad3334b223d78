from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import types as T

from sparkface.core.config import FacesConfig, IngestConfig, LabelConfig
from sparkface.core.errors import InputError, OutputError
from sparkface.core.images import decode_face
from sparkface.core.package import ModelBundle, flip_for, load_bundle, load_model_file, predict
from sparkface.score.run import run_scoring
from sparkface.score.transform import OUTPUT_COLUMNS
from sparkface.spark.exits import run_main
from tests.conftest import bad_and_odd_files, tiny_model_package, utk_names, write_faces


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_package(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def scored(spark, model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    cases = bad_and_odd_files()
    for name, (data, _) in cases.items():
        (folder / "odd" / name).parent.mkdir(exist_ok=True)
        (folder / "odd" / name).write_bytes(data)
    write_faces(folder / "faces", utk_names(40), size=(80, 80))
    # Over the 50 MB limit: listed, never read, reported.
    with open(folder / "odd" / "huge.jpg", "wb") as handle:
        handle.truncate(51 * 1024 * 1024)
    cases = {**cases, "huge.jpg": (b"", "file too large: 53477376 bytes")}
    # No regular file behind the name, which Spark passes over: a row each, saying so.
    os.symlink(folder / "deleted.jpg", folder / "odd" / "gone.jpg")
    os.mkfifo(folder / "odd" / "pipe.jpg")
    cases = {**cases, "gone.jpg": (b"", "not a file"), "pipe.jpg": (b"", "not a file")}
    (folder / "README.txt").write_text("not an image: filtered by extension, no row")
    (folder / "odd" / "IMG_0001.HEIC").write_bytes(b"a phone's photo: no row, counted")
    (folder / "odd" / "frame").write_bytes(cases["good.jpg"][0])
    out = tmp_path_factory.mktemp("out") / "predictions"
    summary = run_scoring(
        spark,
        str(folder),
        str(out),
        load_bundle(str(model_dir)),
        IngestConfig(),
        batch_size=8,
        run_id="test-run",
        faces="aligned",
    )
    rows = spark.read.parquet(str(out / "parquet"))
    return folder, out, summary, rows, cases


def test_every_image_file_gives_exactly_one_row(scored):
    folder, _, summary, rows, cases = scored
    expected = len(cases) + 40
    assert rows.count() == expected
    assert rows.select("path").distinct().count() == expected
    assert summary["files"] == expected
    assert summary["errors"] == sum(1 for _, error in cases.values() if error)
    assert summary["left_out_by_extension"] == {"": 1, ".heic": 1, ".txt": 1}
    assert summary["gone_before_read"] == 0  # each file listed has its row


def test_errors_name_their_cause(scored):
    _, _, _, rows, cases = scored
    found = {r.file_name: (r.status, r.error) for r in rows.where("path like '%/odd/%'").collect()}
    for name, (_, expected_error) in cases.items():
        status, error = found[name]
        if expected_error is None:
            assert (status, error) == ("ok", None), name
        else:
            assert status == "error" and expected_error in error, (name, error)


def test_schema_is_the_documented_one(scored):
    _, _, _, rows, _ = scored
    assert tuple(rows.columns) == OUTPUT_COLUMNS
    types = {f.name: f.dataType for f in rows.schema.fields}
    assert types["file_size"] == T.LongType()
    assert types["modified_at"] == T.TimestampType()
    assert types["age_years"] == T.DoubleType()
    assert types["probabilities"]["race"].dataType == T.MapType(T.StringType(), T.DoubleType())
    ok = rows.where("status = 'ok'").first()
    assert ok.gender in ("male", "female")
    assert ok.race in ("white", "black", "asian", "indian", "others")
    assert set(ok.probabilities["age_group"]) == set(LabelConfig().age_groups)
    assert abs(sum(ok.probabilities["race"].values()) - 1.0) < 1e-5
    assert ok.race_probability == max(ok.probabilities["race"].values())
    assert ok.run_id == "test-run" and ok.model_version == "test-1"


def test_job_agrees_with_the_model_called_directly(scored, model_dir):
    folder, _, _, rows, _ = scored
    bundle = load_bundle(str(model_dir))
    model = load_model_file(model_dir / "model.keras")
    faces = rows.where("path like '%/faces/%'").orderBy("path").collect()
    pixels = np.stack(
        [
            decode_face((folder / "faces" / r.file_name).read_bytes(), bundle.image_spec).pixels
            for r in faces
        ]
    )
    direct = predict(model, pixels, flip=True)
    for index, row in enumerate(faces):
        for head in ("age_group", "gender", "race"):
            names = bundle.classes[head]
            assert row[head] == names[int(direct[head][index].argmax())]
            got = np.array([row.probabilities[head][n] for n in names])
            np.testing.assert_allclose(got, direct[head][index], atol=1e-5)
        assert abs(row.age_years - direct["age"][index]) < 0.01


def test_output_reads_back_in_pandas_duckdb_and_json(scored):
    import duckdb

    _, out, summary, _, _ = scored
    frame = pd.read_parquet(out / "parquet")
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    counts = duckdb.sql(
        f"select status, count(*) from read_parquet('{out}/parquet/*.parquet') group by status"
    ).fetchall()
    assert dict(counts) == {"ok": summary["scored"], "error": summary["errors"]}
    lines = [
        json.loads(line)
        for path in (out / "json").glob("part-*.json")
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == summary["files"]
    assert set(lines[0]) == set(OUTPUT_COLUMNS)


def test_rerun_replaces_rather_than_duplicates(spark, scored, model_dir):
    folder, out, summary, _, _ = scored
    again, _ = score_aligned(spark, model_dir, folder, out, run_id="second")
    assert again["files"] == summary["files"]
    assert spark.read.parquet(str(out / "parquet")).where("run_id = 'test-run'").count() == 0


def score_aligned(spark, model_dir, folder, out, **options) -> tuple[dict, list[str]]:
    """A folder scored as crops: the run's summary and the paths of the rows it wrote."""
    summary = run_scoring(
        spark,
        str(folder),
        str(out),
        load_bundle(str(model_dir)),
        IngestConfig(),
        formats=("parquet",),
        batch_size=8,
        faces="aligned",
        **options,
    )
    # Read back by a client that takes no pattern.
    written = Path(str(out).removeprefix("file://"), "parquet")
    return summary, pd.read_parquet(written, columns=["path"])["path"].tolist()


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_rerun_without_json_leaves_no_earlier_run_s_json(spark, model_dir, tmp_path, scheme):
    # OUT/json held the first run's rows beside the second run's Parquet and summary.
    write_faces(tmp_path / "first", utk_names(3))
    write_faces(tmp_path / "second", utk_names(2, seed=1))
    bundle = load_bundle(str(model_dir))
    out = tmp_path / "out"
    for folder, formats in (("first", ("parquet", "json")), ("second", ("parquet",))):
        given = f"{scheme}{out}"
        run_scoring(
            spark,
            str(tmp_path / folder),
            given,
            bundle,
            IngestConfig(),
            formats,
            8,
            faces="aligned",
        )
        assert (out / "json").is_dir() == ("json" in formats)
    assert len(pd.read_parquet(out / "parquet")) == 2


def test_a_disk_that_fills_up_while_writing_is_exit_3_with_one_line(
    spark, model_dir, tmp_path, capsys
):
    # The check before any work cannot see a disk fill up: the run ended with exit 1 ("a bug")
    # and pages of Java. /dev/full is a real disk that is always full.
    write_faces(tmp_path / "in", utk_names(2))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").symlink_to("/dev/full")

    def work() -> None:
        score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")

    assert run_main("score", work) == 3
    logged = capsys.readouterr().err
    assert (
        "ERROR sparkface: the output's storage is full (No space left on device); free space "
        "there or choose another output, then rerun (a rerun replaces what this run wrote)"
    ) in logged
    assert "Traceback" not in logged


def test_a_folder_named_like_a_pattern_is_read_as_named(spark, model_dir, tmp_path):
    # Spark takes its input as a glob: `cam[1]` would mean `cam1`, and listing its siblings to
    # match it fails on one whose name holds a colon (an hour's folder, `2026-12-07T14:00`).
    write_faces(tmp_path / "cam[1]", utk_names(3), size=(40, 40))
    write_faces(tmp_path / "2026-12-07T14:00", utk_names(2), size=(40, 40))
    summary, paths = score_aligned(spark, model_dir, tmp_path / "cam[1]", tmp_path / "out")
    assert (summary["files"], summary["scored"]) == (3, 3)
    assert len(set(paths)) == 3 and all("/cam[1]/" in path for path in paths)


def test_an_output_named_like_a_pattern_or_an_hour_is_written_and_read_back_as_named(
    spark, model_dir, tmp_path, monkeypatch
):
    # The job reads back what it wrote: `night[1]` was read as `night1`, another night's rows
    # (its summary and JSON), or failed as missing; a relative `2026-12-07T15:00` was taken for
    # a URI with a scheme, and failed.
    write_faces(tmp_path / "tonight", utk_names(3), size=(40, 40))
    write_faces(tmp_path / "last-night", utk_names(2, seed=1), size=(40, 40))
    score_aligned(spark, model_dir, tmp_path / "last-night", tmp_path / "night1")
    monkeypatch.chdir(tmp_path)
    for out in ("night[1]", "2026-12-07T15:00", "{a,b} *?"):
        summary, paths = score_aligned(spark, model_dir, "tonight", out)
        assert (summary["files"], summary["scored"], summary["output"]) == (3, 3, out)
        assert len(paths) == 3 and all("/tonight/" in path for path in paths)
        assert json.loads((tmp_path / out / "summary.json").read_text())["files"] == 3


def test_an_output_the_job_cannot_write_stops_it_before_any_image_is_read(
    spark, model_dir, tmp_path, monkeypatch
):
    # Spark's own refusal came after the whole input was scored, as a Java trace (exit 1).
    from sparkface.core.errors import OutputError
    from sparkface.score import run

    write_faces(tmp_path / "in", utk_names(2), size=(40, 40))
    (tmp_path / "taken").write_text("a file where the output's folder would be")
    monkeypatch.setattr(run, "images_to_score", lambda *_: pytest.fail("the input was read"))
    with pytest.raises(OutputError) as refused:
        score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "taken" / "out")
    assert refused.value.exit_code == 3 and "Not a directory" in str(refused.value)


@pytest.mark.parametrize(
    ("input_at", "output_at", "why"),
    [
        ("p/json", "p", "the input is inside the output"),  # the photos it had just read
        ("p", "p", "the input is inside the output"),
        ("p", "p/out", "vice versa"),  # each rerun listed what the last one wrote
        ("p/json", "file://{d}/p-link", "the input is inside the output"),  # links followed
    ],
)
def test_an_output_that_overlaps_its_input_is_refused_before_any_work(
    spark, model_dir, tmp_path, monkeypatch, input_at, output_at, why
):
    # `--input /p/json --output /p` scored the photos, then replaced /p/json with its JSON
    # lines: 592 photos gone, and 540 more that were in /p/parquet.
    from sparkface.score import run

    photos = write_faces(tmp_path / "p" / "json", utk_names(2), size=(40, 40))
    photos += write_faces(tmp_path / "p" / "parquet", utk_names(2, seed=1), size=(40, 40))
    (tmp_path / "p-link").symlink_to(tmp_path / "p")
    monkeypatch.setattr(run, "images_to_score", lambda *_: pytest.fail("the input was read"))
    output = output_at.format(d=tmp_path)
    output = output if "://" in output else str(tmp_path / output)
    with pytest.raises(OutputError) as refused:
        score_aligned(spark, model_dir, tmp_path / input_at, output)
    assert refused.value.exit_code == 3
    assert f"overlap ({why}): a run replaces folders of its output" in str(refused.value)
    assert all(Path(photo).is_file() for photo in photos)


def test_an_output_folder_holding_files_the_job_did_not_write_is_not_replaced(
    spark, model_dir, tmp_path
):
    write_faces(tmp_path / "in", utk_names(2), size=(40, 40))
    score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    # A rerun replaces the job's own Parquet, partition folders and an unfinished write's files.
    (tmp_path / "out" / "parquet" / "_temporary" / "0").mkdir(parents=True)
    (tmp_path / "out" / "parquet" / "_temporary" / "0" / "notes.txt").write_text("Spark's")
    summary, _ = score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    assert summary["files"] == 2
    # Not photos someone keeps in a folder of that name.
    photos = write_faces(tmp_path / "out" / "json" / "2026", utk_names(4, seed=2), size=(40, 40))
    with pytest.raises(OutputError) as refused:
        score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    assert str(refused.value).startswith(
        f"{tmp_path}/out/json holds 4 files that this job did not write (2026/"
    )
    assert ", ...): each run replaces that folder whole" in str(refused.value)
    assert all(Path(photo).is_file() for photo in photos)


@pytest.mark.parametrize(
    ("scheme", "name"),
    [("", name) for name in ("one.jpg", "empty.jpg", "_DSC0001.JPG", ".hidden.jpg", "a:b.jpg")]
    + [("file:", "one.jpg"), ("file://", "._mac.jpg")],
)
def test_one_file_as_the_input_is_scored_alone(spark, model_dir, tmp_path, scheme, name):
    # `--input photo.jpg` stopped with "input is not a folder".
    write_faces(tmp_path / "in", utk_names(2) + [name], size=(40, 40))
    if name == "empty.jpg":
        (tmp_path / "in" / name).write_bytes(b"")
    summary, paths = score_aligned(
        spark, model_dir, f"{scheme}{tmp_path}/in/{name}", tmp_path / "out"
    )
    assert paths == [f"file:{tmp_path}/in/{name}"]
    assert (summary["files"], summary["scored"], summary["gone_before_read"]) == (
        1,
        0 if name == "empty.jpg" else 1,
        0,
    )


def test_a_file_gone_between_listing_and_reading_is_counted(
    spark, model_dir, tmp_path, monkeypatch
):
    from sparkface.score import run

    files = write_faces(tmp_path / "in", utk_names(3), size=(40, 40))
    listed = run.images_to_score

    def listed_then_deleted(*args):
        found = listed(*args)
        files[0].unlink()  # a camera's upload replaced, a cleaner's run: the read comes later
        return found

    monkeypatch.setattr(run, "images_to_score", listed_then_deleted)
    summary, paths = score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    assert (summary["files"], summary["gone_before_read"], len(paths)) == (2, 1, 2)


def test_an_output_given_as_a_uri_keeps_its_summary_beside_its_rows(spark, model_dir, tmp_path):
    # A URI (hdfs://, s3a://; file:// here) is written through Hadoop, the summary included.
    write_faces(tmp_path / "in", utk_names(2), size=(40, 40))
    summary, paths = score_aligned(spark, model_dir, tmp_path / "in", f"file://{tmp_path}/out")
    assert summary["files"] == 2 and len(paths) == 2
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["scored"] == 2


def test_names_spark_would_hide_are_scored_and_hidden_ones_counted(spark, model_dir, tmp_path):
    # Cameras in Adobe RGB name photos `_DSC0001.JPG`, and `_archive` is anyone's folder:
    # Spark's listing hides every name starting with "_" or ".", so these had no row and no word.
    names = utk_names(4)
    write_faces(tmp_path / "in" / "cam", names[:1])
    (tmp_path / "in" / "cam" / names[0]).rename(tmp_path / "in" / "cam" / "_DSC0001.JPG")
    write_faces(tmp_path / "in" / "_archive", names[1:2])
    # Hidden as everywhere in Unix: a Mac's metadata twin, a file manager's thumbnails.
    write_faces(tmp_path / "in" / ".thumbnails", names[2:4])
    (tmp_path / "in" / "cam" / "._DSC0001.JPG").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    summary, paths = score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    assert sorted(path.split("/in/")[1] for path in paths) == [
        f"_archive/{names[1]}",
        "cam/_DSC0001.JPG",
    ]
    assert (summary["files"], summary["left_out_hidden"], summary["gone_before_read"]) == (2, 2, 0)


def test_a_name_spark_cannot_open_is_a_row_that_says_so(spark, model_dir, tmp_path):
    # A name in Latin-1 bytes (an old Windows copy's `café.jpg`): Spark names files in UTF-8,
    # could not open it and passed over it, so it had no row.
    write_faces(tmp_path / "in", utk_names(1))
    good = next((tmp_path / "in").iterdir()).read_bytes()
    folder = os.fsencode(tmp_path / "in")
    for name in (b"/caf\xe9.jpg", b"/d\xe9j\xe0/inside.jpg"):
        os.makedirs(os.path.dirname(folder + name), exist_ok=True)
        with open(folder + name, "wb") as handle:
            handle.write(good)
    summary, paths = score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    rows = pd.read_parquet(tmp_path / "out" / "parquet").set_index("path")
    named = {path.split("/in/")[1]: rows.loc[path, "error"] for path in paths if "\\x" in path}
    said = "unreadable file name: Spark cannot open a file by a name that is not UTF-8 (rename"
    assert {name: error[: len(said)] for name, error in named.items()} == {
        name: said for name in ("caf\\xe9.jpg", "d\\xe9j\\xe0/inside.jpg")
    }
    assert (summary["files"], summary["scored"], summary["gone_before_read"]) == (3, 1, 0)


@pytest.mark.slow
def test_names_beyond_ascii_are_read_without_a_utf8_locale(model_dir, tmp_path):
    # Java reads file names in the locale's character set: a cron job or a bare container (no
    # LANG) read them as ASCII, and every `ünï café.jpg` was passed over.
    import shutil
    import subprocess

    from tests.conftest import ROOT, job_environment, spark_submit

    write_faces(tmp_path / "in", utk_names(1))
    next((tmp_path / "in").iterdir()).rename(tmp_path / "in" / "ünï café.jpg")
    bare = {k: v for k, v in job_environment().items() if not k.startswith(("LANG", "LC_"))}
    # conf/spark/spark-env.sh (SPARK_CONF_DIR) sets a UTF-8 locale; without it, a row says why.
    (tmp_path / "conf").mkdir()
    shutil.copy(ROOT / "conf" / "spark" / "log4j2.properties", tmp_path / "conf")
    found = {}
    for conf in (ROOT / "conf" / "spark", tmp_path / "conf"):
        out = tmp_path / conf.parent.name / "out"
        args = ["--input", str(tmp_path / "in"), "--output", str(out), "--faces", "aligned"]
        args += ["--model", str(model_dir), "--format", "parquet"]
        result = subprocess.run(
            spark_submit("score.py", *args),
            capture_output=True,
            text=True,
            env={**bare, "SPARK_CONF_DIR": str(conf)},
            cwd=ROOT,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        (row,) = pd.read_parquet(out / "parquet").itertuples()
        found[conf.parent.name] = (row.path.endswith("/ünï café.jpg"), row.status, row.error)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["gone_before_read"] == 0
    assert found["conf"] == (True, "ok", None)
    assert found[tmp_path.name][:2] == (True, "error")
    assert found[tmp_path.name][2].startswith("unreadable file name")
    logged = result.stdout + result.stderr
    assert "WARNING sparkface: Java reads file names here as ANSI_X3.4-1968, not UTF-8" in logged


def test_an_input_given_as_a_uri_pattern_reads_each_match(spark, model_dir, tmp_path):
    # `s3a://cams/2026-12-*/` as the README has it; `file://` takes Hadoop's path here.
    for night, count in (("2026-12-06", 2), ("2026-12-07", 3), ("2025-01-01", 1)):
        write_faces(tmp_path / "in" / night, utk_names(count, seed=count))
    (tmp_path / "in" / "2026-12-07" / "empty.jpg").write_bytes(b"")
    write_faces(tmp_path / "in" / "2026-12-07" / ".thumbnails", utk_names(1))
    summary, paths = score_aligned(
        spark, model_dir, f"file://{tmp_path}/in/2026-12-*", tmp_path / "out"
    )
    assert (
        sorted(path.split("/in/")[1][:10] for path in paths)
        == ["2026-12-06"] * 2 + ["2026-12-07"] * 4
    )
    assert (summary["files"], summary["errors"], summary["left_out_hidden"]) == (6, 1, 1)
    with pytest.raises(InputError, match="nothing matches"):
        score_aligned(spark, model_dir, f"file://{tmp_path}/in/2027-*", tmp_path / "out")


def test_each_file_is_one_row_however_many_links_lead_to_it(spark, model_dir, tmp_path):
    # Spark follows a link to a folder every time it meets one: a `latest` link would score a
    # night's faces twice, a loop forty times.
    write_faces(tmp_path / "in" / "2026-12-07", utk_names(3), size=(40, 40))
    write_faces(tmp_path / "elsewhere", utk_names(2), size=(40, 40))
    os.symlink(tmp_path / "in" / "2026-12-07", tmp_path / "in" / "latest")
    os.symlink(tmp_path / "in", tmp_path / "in" / "2026-12-07" / "loop")
    os.symlink(tmp_path / "elsewhere", tmp_path / "in" / "mounted")
    # A link to the folder holding all of these: only what it adds is read through it.
    write_faces(tmp_path / "beside", utk_names(1), size=(40, 40))
    os.symlink(tmp_path, tmp_path / "in" / "wide")
    summary, paths = score_aligned(spark, model_dir, tmp_path / "in", tmp_path / "out")
    assert (summary["files"], len(paths), len(set(paths))) == (6, 6, 6)
    assert sum("/in/2026-12-07/" in path for path in paths) == 3
    assert sum("/in/mounted/" in path for path in paths) == 2
    assert sum("/in/wide/beside/" in path for path in paths) == 1


def test_evaluation_in_spark_matches_the_metrics_of_direct_predictions(
    spark, scored, model_dir, tmp_path
):
    from sparkface.core.config import LabelConfig
    from sparkface.evaluate.metrics import compute_metrics
    from sparkface.evaluate.tally import evaluate_folder

    folder, _, _, _, _ = scored
    bundle = load_bundle(str(model_dir))
    labels = LabelConfig()
    metrics = evaluate_folder(
        spark, str(folder / "faces"), str(tmp_path), bundle, IngestConfig(), labels, batch_size=8
    )
    model = load_model_file(model_dir / "model.keras")
    files = sorted((folder / "faces").iterdir())
    kept = [f for f in files if int(f.name.split("_")[0]) >= 7]
    direct = predict(
        model,
        np.stack([decode_face(f.read_bytes(), bundle.image_spec).pixels for f in kept]),
        flip=True,
    )
    fields = [f.name.split("_") for f in kept]
    truth = {
        "age": np.array([int(f[0]) for f in fields]),
        "gender": np.array([int(f[1]) for f in fields]),
        "race": np.array([int(f[2]) for f in fields]),
    }
    truth["age_group"] = np.array([labels.groups.index_of(a) for a in truth["age"]])
    direct["age"] = np.round(direct["age"], 2)
    expected = compute_metrics(direct, truth, labels.groups.names)
    assert metrics["faces"] == expected["faces"] == len(kept)
    for key in (
        "age_group_accuracy",
        "gender_accuracy",
        "race_accuracy",
        "age_group_within_one",
        "confusion",
    ):
        assert metrics[key] == expected[key], key
    # Spark sums the ages in another order: the rounded MAEs may differ in the last digit.
    assert metrics["age_mae_years"] == pytest.approx(expected["age_mae_years"], abs=0.01)
    assert len(metrics["by_race_gender"]) == len(expected["by_race_gender"])
    for got, want in zip(metrics["by_race_gender"], expected["by_race_gender"], strict=True):
        assert got["age_mae_years"] == pytest.approx(want["age_mae_years"], abs=0.011)
        assert {k: v for k, v in got.items() if k != "age_mae_years"} == {
            k: v for k, v in want.items() if k != "age_mae_years"
        }
    for head, want in expected["shares"].items():
        got = metrics["shares"][head]
        assert got["distance"]["counted"] == want["distance"]["counted"], head
        # Spark sums in another order: the rounded means may differ in the last digit.
        assert got["distance"]["mean_probability"] == pytest.approx(
            want["distance"]["mean_probability"], abs=2e-4
        )
        for name, row in want["classes"].items():
            assert got["classes"][name]["true"] == row["true"], (head, name)
            assert got["classes"][name]["mean_probability"] == pytest.approx(
                row["mean_probability"], abs=2e-4
            )
    assert (tmp_path / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("setting", "runtime", "least"),
    [
        (None, "keras", None),
        ("4g", "keras", None),
        ("8192m", "keras", None),
        ("1g", "keras", "4g"),
        ("3g", "keras", "4g"),
        ("2048", "keras", "4g"),
        (None, "tflite", None),
        ("1g", "tflite", None),
        ("1024m", "tflite", None),
        ("768m", "tflite", "1g"),
        ("512", "tflite", "1g"),
    ],
)
def test_a_python_memory_cap_too_small_for_the_runtime_is_refused(setting, runtime, least):
    from sparkface.score.transform import python_memory_problem

    problem = python_memory_problem(setting, runtime)
    assert (problem is not None) == (least is not None)
    if least:
        assert "address space" in problem and f"at least {least}" in problem
        assert f"a {runtime} package" in problem
    assert (
        python_memory_problem("lots", runtime)
        == "spark.executor.pyspark.memory='lots' is not a size such as 4g"
    )


@pytest.mark.parametrize(
    ("setting", "aligned", "detect"),
    [
        (None, True, True),
        (False, False, False),
        ({"aligned": False, "detect": True}, False, True),
        ({"detect": False}, True, False),
    ],
)
def test_the_mirror_image_is_used_in_each_mode_as_the_package_says(setting, aligned, detect):
    descriptor = {} if setting is None else {"flip_test_time": setting}
    assert flip_for(descriptor, "aligned") is aligned
    assert flip_for(descriptor, "detect") is detect
    assert flip_for(descriptor) is aligned


@pytest.mark.slow
def test_scoring_takes_the_mirror_setting_of_its_mode(spark, tmp_path, monkeypatch):
    """A package that mirrors detected faces only: the job scores crops without the mirror and
    faces found in images with it."""
    from sparkface.score import transform

    used = []
    real = transform.score_partitions

    def recording(broadcast, batch_size, flip, cores, faces=None):
        used.append(("aligned" if faces is None else "detect", flip))
        return real(broadcast, batch_size, flip, cores, faces)

    monkeypatch.setattr(transform, "score_partitions", recording)
    bundle = ModelBundle(b"", "0" * 64, {"flip_test_time": {"aligned": False, "detect": True}})
    images = spark.createDataFrame(
        [("a.jpg", "a.jpg", 1, None, b"x")],
        "path string, file_name string, file_size long, modified_at timestamp, content binary",
    )
    transform.score_images(images, bundle)
    transform.score_images(images, bundle, faces=FacesConfig())
    assert used == [("aligned", False), ("detect", True)]
