"""A model package converted for TensorFlow Lite (sparkface.core.runtime,
sparkface.train.convert, jobs/convert.py) and scored by the job like any other package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparkface.core.config import IngestConfig, ModelConfig
from sparkface.core.errors import PackageError
from sparkface.core.images import decode_face
from sparkface.core.package import (
    flip_for,
    load_bundle,
    load_model_file,
    load_package_model,
    predict,
    save_package,
)
from sparkface.core.runtime import TFLiteModel
from sparkface.evaluate.metrics import compute_metrics
from sparkface.evaluate.split import predict_stream
from sparkface.score.run import run_scoring
from sparkface.score.transform import cached_model
from sparkface.train.model import make_model
from sparkface.train.shards import ParquetFaces, shard_files
from tests.conftest import load_job, utk_names, write_faces
from tests.test_ensemble import FACES, GROUPS, descriptor, member, outputs, write_split

convert_job = load_job("convert")


@pytest.fixture
def package_and_shards(tmp_path):
    save_package(member(1), descriptor("m1"), tmp_path / "keras")
    write_split(tmp_path / "shards", "validation", 10, seed=5)
    write_split(tmp_path / "shards", "test", 14, seed=6)
    write_split(tmp_path / "shards", "train", 20, seed=7)
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
    save_package(make_model(WIDE, 32, 8, seed=1), descriptor("wide"), root / "keras")
    assert convert(root, "float32") == 0
    # An untrained network's classes are near ties that any rounding flips: not checked here.
    assert convert(root, "int8", "--max-changed", "1") == 0
    small = (root / "int8" / "model.tflite").stat().st_size
    assert small < 0.6 * (root / "float32" / "model.tflite").stat().st_size
    expected, got = outputs(keras_model(root)), outputs(load_package_model(root / "int8"))
    for head in ("age_group", "gender", "race"):
        np.testing.assert_allclose(got[head], expected[head], atol=0.05)


WIDE = ModelConfig(filters=(8, 16, 32, 32, 64, 64), dense_units=(64,), dropout=0.1, augment=False)


def int8_tensors(path: Path) -> int:
    """How many tensors of the .tflite model hold int8 numbers (weights and activations)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return sum(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())


def test_int8_activations_are_calibrated_on_the_train_split(package_and_shards):
    root = package_and_shards
    save_package(make_model(WIDE, 32, 8, seed=1), descriptor("wide"), root / "keras")
    assert convert(root, "int8", "--max-changed", "1") == 0
    full = ["--max-changed", "1", "--activations", "int8", "--calibration-faces", "12"]
    assert (
        convert_job.main(
            ["--model", str(root / "keras"), "--shards", str(root / "shards")]
            + ["--output", str(root / "full"), "--weights", "int8", *full]
        )
        == 0
    )
    written = json.loads((root / "full" / "model.json").read_text())
    assert written["conversion"]["activations"] == "int8"
    assert written["conversion"]["calibration_faces"] == 24  # 12 faces and their mirror images
    # Weights only: a handful of int8 tensors; activations too: most of the network's tensors.
    assert int8_tensors(root / "full" / "model.tflite") > 3 * int8_tensors(
        root / "int8" / "model.tflite"
    )
    expected, got = outputs(keras_model(root)), outputs(load_package_model(root / "full"))
    for head in ("age_group", "gender", "race"):
        np.testing.assert_allclose(got[head], expected[head], atol=0.05)


def test_int8_activations_need_a_train_split(package_and_shards, capsys):
    root = package_and_shards
    shutil.rmtree(root / "shards" / "split=train")
    assert convert(root, "int8", "--activations", "int8") == 2
    assert "no Parquet shards for split 'train'" in capsys.readouterr().err
    assert not (root / "int8").exists()


@pytest.mark.parametrize(
    ("flip", "setting"),
    [("no", False), ("detect-only", {"aligned": False, "detect": True})],
)
def test_a_conversion_without_the_mirror_is_checked_against_keras_without_it(
    package_and_shards, flip, setting
):
    root = package_and_shards
    assert convert(root, "float32", "--flip", flip) == 0
    written = json.loads((root / "float32" / "model.json").read_text())
    assert written["flip_test_time"] == setting
    assert written["conversion"]["flip_test_time"] == {"keras": True, "converted": setting}
    # Compared like with like: the same network without the mirror changes no class.
    for split in ("validation", "test"):
        for head in ("age_group", "gender", "race"):
            assert written["conversion"]["agreement_with_keras"][split][head]["class_changed"] == 0
    # Its metrics are its own, without the mirror; the Keras ones beside them are the source's.
    model = keras_model(root)
    stream = ParquetFaces(shard_files(root / "shards", "test"), 32, 256)
    for mirrored, recorded in (
        (False, written["metrics"]),
        (True, written["conversion"]["keras_metrics"]["test"]),
    ):
        predictions, truth = predict_stream(model, stream, mirrored)
        expected = compute_metrics(predictions, truth, GROUPS)
        assert recorded["age_mae_years"] == pytest.approx(expected["age_mae_years"], abs=1e-3)
        assert recorded["age_group_accuracy"] == pytest.approx(expected["age_group_accuracy"])
    descriptor = load_bundle(root / "float32").descriptor
    assert flip_for(descriptor, "aligned") is False
    assert flip_for(descriptor, "detect") is (flip == "detect-only")


def test_a_conversion_that_changes_answers_is_refused(package_and_shards, monkeypatch, capsys):
    """Converting another network (here: the package's own with the gender head's logits
    negated, so that every face changes gender; a freshly initialised network could agree with
    the package's classes by chance, as member(1) made again once did) changes classes and must
    not be written."""
    root = package_and_shards
    from sparkface.train import convert as module

    other = keras_model(root)
    kernel, bias = other.get_layer("gender").get_weights()
    other.get_layer("gender").set_weights([-kernel, -bias])
    real = module.to_tflite
    monkeypatch.setattr(module, "to_tflite", lambda model, *args: real(other, *args))
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


def test_the_speed_benchmark_times_a_converted_package_one_image_at_a_time(
    package_and_shards, tmp_path
):
    """benchmarks/score_bench.py's notebook loop and one-process ceiling run the shipped kind of
    package (TensorFlow Lite) as well as Keras's."""
    score_bench = load_job("score_bench", "benchmarks")

    root = package_and_shards
    assert convert(root, "float32") == 0
    files = write_faces(tmp_path / "faces", utk_names(3), size=(64, 64))
    for package in (root / "keras", root / "float32"):
        bundle, model = load_bundle(package), load_package_model(package)
        assert score_bench.bench_notebook(files, bundle, model) > 0
        assert score_bench.bench_ceiling(files, bundle, model) > 0


def test_the_onnx_benchmark_builds_the_same_network_for_onnx_runtime():
    """benchmarks/onnx_bench.py's graph answers as Keras does: batch norms folded into their
    convolutions, and the last block's 3x3 convolutions, which see a 1x1 map, made 1x1."""
    onnx_bench = load_job("onnx_bench", "research/benchmarks")

    model = make_model(WIDE, 32, 8, seed=3)  # 32 px: the sixth block sees 1x1
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.name.startswith(("bn", "conv5")):
            layer.set_weights([rng.normal(1.0, 0.3, w.shape) for w in layer.get_weights()])
    for layer in model.layers:
        if layer.name.startswith("bn"):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta - 1.0, mean - 1.0, np.abs(variance) + 0.1])
    graph = onnx_bench.onnx_graph(model)
    assert b"conv5_0" in graph
    expected = outputs(model)
    got = onnx_bench.OnnxModel(graph).predict_on_batch(FACES)
    for head in expected:
        np.testing.assert_allclose(got[head], expected[head], rtol=1e-4, atol=1e-4)


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
        faces="aligned",
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


class CountingModel:
    """A stand-in network: gender and race probabilities set per face (a face's first pixel
    says how sure it is), another answer for a mirrored face; it records each batch's size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_on_batch(self, faces):
        self.batches.append(len(faces))
        sure = faces[:, 0, 0, 0] / 100.0  # pixel 95: 0.95 sure of gender and race
        mirrored = faces[:, 0, -1, 1] == 1  # the marker, top left, is top right in a mirror
        gender = np.stack([sure, 1 - sure], axis=1)
        race = np.stack([sure, 1 - sure, 0 * sure, 0 * sure, 0 * sure], axis=1)
        age = np.where(mirrored, 0.5, 0.3)[:, None]
        return {"age_group": np.tile([[0.5, 0.5]], (len(faces), 1)), "gender": gender,
                "race": race, "age": age}  # fmt: skip


def test_the_mirror_image_only_for_the_faces_the_network_is_unsure_of():
    faces = np.zeros((4, 2, 2, 3), dtype=np.uint8)
    faces[:, 0, 0, 0] = [95, 60, 99, 75]  # how sure of gender and race: faces 1 and 3 unsure
    faces[:, 0, 0, 1] = 1  # a marker that the mirror image moves right...
    faces[:, 0, 1, 0] = faces[:, 0, 0, 0]  # ...and the same sureness there: a mirror keeps it
    model = CountingModel()
    result = predict(model, faces, flip=0.8)
    assert model.batches == [4, 2]  # one look at every face, a second at the two unsure ones
    once, both = 0.3, 0.4  # the face alone; the mean with its mirror image (0.5)
    ratio = result["age"] / result["age"][0]
    np.testing.assert_allclose(ratio, [1, both / once, 1, both / once])
    model = CountingModel()
    predict(model, faces, flip=True)
    assert model.batches == [4, 4]
    model = CountingModel()
    predict(model, faces, flip=False)
    assert model.batches == [4]
    model = CountingModel()
    predict(model, faces, flip=0.5)  # every face sure enough
    assert model.batches == [4]


def test_the_unsure_faces_setting_travels_in_the_descriptor(package_and_shards):
    from sparkface.core.package import flip_in_mode

    assert (
        flip_in_mode(0.8) == 0.8
        and flip_in_mode({"aligned": False, "detect": 0.7}, "detect") == 0.7
    )
    assert flip_in_mode(True) is True and flip_in_mode(1) is True and flip_in_mode(0) is False
    root = package_and_shards
    assert convert(root, "float32", "--flip", "yes", "--flip-below", "0.8") == 0
    written = json.loads((root / "float32" / "model.json").read_text())
    assert written["flip_test_time"] == 0.8
    assert flip_for(load_bundle(root / "float32").descriptor, "detect") == 0.8
    assert convert(root, "int8", "--flip", "no", "--flip-below", "0.8") == 2
    assert convert(root, "int8", "--flip", "yes", "--flip-below", "1.5") == 2
    assert not (root / "int8").exists()


def test_a_converted_package_changes_its_mirror_setting_and_keeps_its_network(
    package_and_shards, capsys
):
    """A policy change ships without a new network: the same model.tflite, byte for byte, its
    metrics measured again with the new setting and the package's own beside them."""
    root = package_and_shards
    assert convert(root, "int8") == 0  # mirrors every face, as the Keras package does
    remirror = ["--model", str(root / "int8"), "--shards", str(root / "shards")]
    assert convert_job.main([*remirror, "--output", str(root / "once"), "--flip", "no"]) == 0
    source = json.loads((root / "int8" / "model.json").read_text())
    written = json.loads((root / "once" / "model.json").read_text())
    assert (root / "once" / "model.tflite").read_bytes() == (
        root / "int8" / "model.tflite"
    ).read_bytes()
    assert written["model_sha256"] == source["model_sha256"]
    assert written["version"].startswith("0.") and written["flip_test_time"] is False
    changed = written["mirror_changed"]
    assert changed["from_version"] == source["version"]
    assert changed["flip_test_time"] == {"before": True, "after": False}
    assert changed["metrics_before"]["test"] == source["metrics"]
    model = TFLiteModel((root / "int8" / "model.tflite").read_bytes())
    stream = ParquetFaces(shard_files(root / "shards", "test"), 32, 256)
    predictions, truth = predict_stream(model, stream, False)
    expected = compute_metrics(predictions, truth, GROUPS)
    assert written["metrics"]["age_mae_years"] == pytest.approx(expected["age_mae_years"], 1e-3)
    moved = changed["agreement_with_before"]["test"]
    assert max(moved[head]["max_probability_difference"] for head in ("gender", "race")) > 0
    assert (root / "once" / "test-evaluation" / "metrics.json").is_file()
    # Only the mirror setting can change; a setting that changes too many answers is refused.
    weights = ["--weights", "float32", "--flip", "no"]
    assert convert_job.main([*remirror, "--output", str(root / "x"), *weights]) == 2
    assert convert_job.main([*remirror, "--output", str(root / "x")]) == 2
    assert "only its --flip can change" in capsys.readouterr().err
    assert (
        convert_job.main(
            [*remirror, "--output", str(root / "x"), "--flip", "no", "--max-changed", "-1"]
        )
        == 2
    )
    assert "changes class for" in capsys.readouterr().err
    assert not (root / "x").exists()
