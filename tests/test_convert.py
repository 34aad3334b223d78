"""A model package converted for TensorFlow Lite (sparkface.core.runtime,
sparkface.evaluate.convert, jobs/convert.py) and scored by the job like any other package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sparkface.core.config import IngestConfig, ModelConfig
from sparkface.core.errors import PackageError
from sparkface.core.images import decode_face
from sparkface.core.package import (
    load_bundle,
    load_model_file,
    load_package_model,
    predict,
    save_package,
)
from sparkface.core.runtime import TFLiteModel
from sparkface.score.run import run_scoring
from sparkface.score.transform import cached_model
from sparkface.train.model import make_model
from tests.conftest import utk_names, write_faces
from tests.test_ensemble import FACES, descriptor, member, outputs, write_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
import convert as convert_job  # noqa: E402


@pytest.fixture
def package_and_shards(tmp_path):
    save_package(member(1), descriptor("m1"), tmp_path / "keras")
    write_split(tmp_path / "shards", "validation", 10, seed=5)
    write_split(tmp_path / "shards", "test", 14, seed=6)
    return tmp_path


def keras_model(root: Path):
    return load_model_file(root / "keras" / "model.keras")


def convert(root: Path, weights: str, *extra: str) -> int:
    return convert_job.main(
        ["--model", str(root / "keras"), "--shards", str(root / "shards")]
        + ["--output", str(root / weights), "--weights", weights, *extra]
    )


def test_a_float32_conversion_answers_as_keras_does(package_and_shards):
    root = package_and_shards
    assert convert(root, "float32") == 0
    written = json.loads((root / "float32" / "model.json").read_text())
    assert written["runtime"] == "tflite"
    assert sorted(p.name for p in (root / "float32").iterdir()) == [
        "model.json",
        "model.tflite",
        "test-evaluation",
    ]
    assert written["conversion"]["from_version"] == "m1"
    assert written["metrics"]["faces"] == 14 and written["validation_metrics"]["faces"] == 10
    for split in ("validation", "test"):
        check = written["conversion"]["agreement_with_keras"][split]
        assert check["race"]["class_changed"] == 0.0
        assert check["race"]["max_probability_difference"] < 1e-4
    converted = load_package_model(root / "float32")
    assert isinstance(converted, TFLiteModel)
    expected, got = outputs(keras_model(root)), outputs(converted)
    for head in expected:
        np.testing.assert_allclose(got[head], expected[head], atol=1e-4)


def test_int8_weights_make_a_smaller_model_close_to_keras(package_and_shards):
    root = package_and_shards
    # Only weight tensors of 1,024 numbers or more are quantized: a wider network than member's.
    wide = ModelConfig(
        filters=(8, 16, 32, 32, 64, 64), dense_units=(64,), dropout=0.1, augment=False
    )
    save_package(make_model(wide, 32, 8, seed=1), descriptor("wide"), root / "keras")
    assert convert(root, "float32") == 0
    # An untrained network's classes are near ties that any rounding flips: not checked here.
    assert convert(root, "int8", "--max-changed", "1") == 0
    small = (root / "int8" / "model.tflite").stat().st_size
    assert small < 0.6 * (root / "float32" / "model.tflite").stat().st_size
    expected, got = outputs(keras_model(root)), outputs(load_package_model(root / "int8"))
    for head in ("age_group", "gender", "race"):
        np.testing.assert_allclose(got[head], expected[head], atol=0.05)


def test_a_conversion_that_changes_answers_is_refused(package_and_shards, monkeypatch, capsys):
    """Converting another network (here: other weights) changes classes and must not be
    written."""
    root = package_and_shards
    from sparkface.evaluate import convert as module

    real = module.to_tflite
    monkeypatch.setattr(module, "to_tflite", lambda model, weights: real(member(7), weights))
    assert convert(root, "float32") == 2
    assert "changes class for" in capsys.readouterr().err
    assert not (root / "float32").exists()


def test_a_package_that_needs_an_unknown_runtime_is_refused(tmp_path):
    save_package(member(1), {**descriptor("m1"), "runtime": "onnx"}, tmp_path)
    with pytest.raises(PackageError, match="needs runtime 'onnx'"):
        load_bundle(tmp_path)


def test_the_bundle_of_a_converted_package_carries_the_tflite_file(package_and_shards):
    root = package_and_shards
    assert convert(root, "float32") == 0
    bundle = load_bundle(root / "float32")
    assert bundle.runtime == "tflite"
    assert bundle.model_bytes == (root / "float32" / "model.tflite").read_bytes()
    model = cached_model(bundle)
    assert isinstance(model, TFLiteModel)
    np.testing.assert_allclose(
        predict(model, FACES)["race"], predict(keras_model(root), FACES)["race"], atol=1e-4
    )


@pytest.mark.slow
def test_the_job_scores_with_a_converted_package(spark, package_and_shards, tmp_path):
    root = package_and_shards
    assert convert(root, "float32") == 0
    write_faces(tmp_path / "faces", utk_names(12), size=(64, 64))
    (tmp_path / "faces" / "empty.jpg").write_bytes(b"")
    bundle = load_bundle(root / "float32")
    summary = run_scoring(
        spark,
        str(tmp_path / "faces"),
        str(tmp_path / "out"),
        bundle,
        IngestConfig(),
        batch_size=5,
        run_id="tflite",
    )
    assert summary["files"] == 13 and summary["errors"] == 1
    rows = spark.read.parquet(str(tmp_path / "out" / "parquet")).orderBy("path").collect()
    ok = [row for row in rows if row.status == "ok"]
    assert len(ok) == 12
    assert all(row.model_version == bundle.descriptor["version"] for row in ok)
    pixels = np.stack(
        [
            decode_face((tmp_path / "faces" / row.file_name).read_bytes(), bundle.image_spec).pixels
            for row in ok
        ]
    )
    direct = predict(keras_model(root), pixels)
    for index, row in enumerate(ok):
        got = [row.probabilities["race"][name] for name in bundle.classes["race"]]
        np.testing.assert_allclose(got, direct["race"][index], atol=1e-4)
