"""The jobs end to end, as a user runs them: spark-submit in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import (
    NO_SPARK,
    ROOT,
    job_environment,
    spark_submit,
    tiny_model_package,
    utk_names,
    write_faces,
)

pytestmark = pytest.mark.slow


def submit(job: str, *args: str) -> subprocess.CompletedProcess:
    """Run a job; its whole log is in `.stdout`."""
    return subprocess.run(
        spark_submit(job, *args),
        capture_output=True,
        text=True,
        env=job_environment(),
        cwd=ROOT,
        timeout=600,
    )


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    write_faces(folder, utk_names(160, seed=9), size=(64, 64))
    write_faces(folder, ["39_1_20170116174525125.jpg.chip.jpg", "notes/readme.txt"])
    (folder / "broken.jpg").write_bytes(b"")
    return folder


def test_profile_job(faces, tmp_path):
    result = submit("profile_faces.py", "--input", str(faces), "--output", str(tmp_path / "p"))
    assert result.returncode == 0, result.stdout[-3000:]
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["files"] == 162
    assert summary["ignored_files"] == 1
    assert summary["labelled"] == 160
    assert summary["unlabelled"]["count"] == 2
    assert "profile written to" in result.stdout
    assert "INFO SparkContext" not in result.stdout  # Spark's log stays at WARN


def test_profile_job_on_a_missing_folder_says_so(tmp_path):
    result = submit(
        "profile_faces.py", "--input", str(tmp_path / "nope"), "--output", str(tmp_path)
    )
    assert result.returncode == 2
    assert "input folder does not exist" in result.stdout
    assert "Traceback" not in result.stdout


def test_train_evaluate_and_score_end_to_end(faces, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "image_size: 32\nshards: 2\n"
        "model: {filters: [8, 16, 16], dense_units: [16, 8], dropout: 0.1}\n"
        "training: {batch_size: 16, epochs: 3, patience: 3, shuffle_buffer: 64,"
        " average_epochs: 2, average_learning_rate: 0.001}\n"
    )
    # A stopped run's state left in OUT (of another recipe) cannot go on with new shards.
    stale = tmp_path / "t" / "training" / "resume"
    stale.mkdir(parents=True)
    (stale / "state.json").write_text('{"fingerprint": "other", "state": {"epoch": 1}}')
    trained = submit(
        "train.py", "--input", str(faces), "--output", str(tmp_path / "t"), "--config", str(config)
    )
    assert trained.returncode == 0, trained.stdout[-3000:]
    assert "stopped run's state" in trained.stdout and not stale.exists()
    model = tmp_path / "t" / "model"
    descriptor = json.loads((model / "model.json").read_text())
    assert descriptor["input_size"] == [32, 32, 3]
    assert descriptor["classes"]["race"] == ["white", "black", "asian", "indian", "others"]
    assert "rows=" in descriptor["training_data"]["fingerprint"]
    metrics = json.loads((tmp_path / "t" / "evaluation" / "metrics.json").read_text())
    preparation = json.loads((tmp_path / "t" / "preparation.json").read_text())
    assert metrics["faces"] == preparation["rows"]["test"] > 0  # the whole test split
    confusion = np.asarray(metrics["confusion"]["gender"])
    assert confusion.sum() == metrics["faces"]
    assert metrics["gender_accuracy"] == round(np.trace(confusion) / metrics["faces"], 6)
    assert descriptor["metrics"]["gender_accuracy"] == metrics["gender_accuracy"]
    assert (tmp_path / "t" / "config.yaml").is_file()
    averaging = descriptor["training"]["averaging"]  # the last two epochs' weights averaged
    assert averaging["epochs"] == [2, 3]
    assert averaging["batch_norm_batches"] > 0
    assert averaging["kept"] == (
        "average" if averaging["val_loss"] < averaging["best_epoch_val_loss"] else "best epoch"
    )

    # The same data prepared alone (--prepare-only), then trained without Spark (jobs/fit.py, for
    # a GPU node): Spark cannot even be imported, and the package records the fingerprint Spark
    # computed when it prepared the shards.
    prepared = submit(
        "train.py", "--input", str(faces), "--output", str(tmp_path / "p"), "--config", str(config),
        "--prepare-only",
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stdout[-3000:]
    assert (tmp_path / "p" / "config.yaml").is_file()
    assert json.loads((tmp_path / "p" / "preparation.json").read_text()) == preparation
    assert not (tmp_path / "p" / "model").exists() and not (tmp_path / "p" / "training").exists()
    fitted = subprocess.run(
        [sys.executable, "-c", NO_SPARK, "--output", str(tmp_path / "p"), "--input", str(faces),
         "--config", str(config)],
        capture_output=True, text=True, env=job_environment(), cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    again = json.loads((tmp_path / "p" / "model" / "model.json").read_text())
    assert again["version"] != descriptor["version"]
    assert again["training_data"] == descriptor["training_data"]
    assert again["input_size"] == [32, 32, 3]

    evaluated = submit(
        "evaluate.py", "--model", str(model), "--input", str(faces), "--output", str(tmp_path / "e")
    )
    assert evaluated.returncode == 0, evaluated.stdout[-3000:]
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["faces"] == sum(1 for n in utk_names(160, seed=9) if int(n.split("_")[0]) >= 7)
    assert len(metrics["by_race_gender"]) >= 8
    assert (tmp_path / "e" / "confusion_race.png").is_file()

    scored = submit(
        "score.py", "--input", str(faces), "--output", str(tmp_path / "s"), "--model", str(model),
        "--faces", "aligned",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout[-3000:]
    rows = pd.read_parquet(tmp_path / "s" / "parquet")
    assert len(rows) == 162
    assert (rows["status"] == "error").sum() == 1
    assert rows.loc[rows["status"] == "error", "error"].iloc[0] == "empty file"


def test_bad_config_stops_before_any_work(faces, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("sample_fractions: {race: {white: 2}}\n")
    result = submit(
        "train.py", "--input", str(faces), "--output", str(tmp_path / "t"), "--config", str(config)
    )
    assert result.returncode == 2
    assert "sample_fractions.race.white" in result.stdout
    assert not (tmp_path / "t").exists()


def test_score_job_with_a_missing_model(faces, tmp_path):
    result = submit(
        "score.py",
        "--input",
        str(faces),
        "--output",
        str(tmp_path / "s"),
        "--model",
        str(tmp_path / "no-model"),
    )
    assert result.returncode == 2
    assert "no model descriptor" in result.stdout


def test_score_job_uses_a_model_package(faces, tmp_path):
    model = tiny_model_package(tmp_path / "m")
    result = submit(
        "score.py",
        "--input",
        str(faces),
        "--output",
        str(tmp_path / "s"),
        "--model",
        str(model),
        "--format",
        "json",
        "--faces",
        "aligned",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["files"] == 162 and summary["scored"] == 161
    assert list((tmp_path / "s" / "json").glob("part-*.json"))
