"""Averaging trained model packages into one (sparkface.train.ensemble, jobs/ensemble.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkface.core.config import ModelConfig
from sparkface.core.contract import GENDERS, RACES
from sparkface.core.package import load_model_file, save_package
from sparkface.train.ensemble import average_models
from sparkface.train.model import make_model, undo_class_weights
from tests.conftest import load_job

ensemble_job = load_job("ensemble")

GROUPS = ["7-12", "13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
# Six cycles at 32x32: five poolings bring the last cycle's input to 1x1.
CONFIG = ModelConfig(filters=(4, 4, 4, 4, 4, 8), dense_units=(8,), dropout=0.1, augment=False)
FACES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def outputs(model) -> dict[str, np.ndarray]:
    """The model's raw outputs (`predict` clips negative ages, which an untrained model makes)."""
    return {head: np.asarray(value) for head, value in model.predict_on_batch(FACES).items()}


def member(seed: int):
    model = make_model(CONFIG, 32, len(GROUPS), seed=seed)
    # Non-trivial batch-norm statistics, so that a wrong copy would show in the outputs.
    for layer in model.layers:
        if layer.name.startswith("bn"):
            gamma, beta, mean, variance = layer.get_weights()
            rng = np.random.default_rng(seed)
            layer.set_weights([gamma, beta + rng.normal(0, 0.1, beta.shape), mean, variance * 2.0])
    return model


def test_a_convolution_that_sees_one_pixel_keeps_only_its_centre_tap():
    model = member(1)
    single = average_models([model])
    assert tuple(model.get_layer("conv5_0").kernel.shape) == (3, 3, 4, 8)
    assert tuple(single.get_layer("m0_conv5_0").kernel.shape) == (1, 1, 4, 8)
    # Convolutions on larger maps are copied whole.
    assert tuple(single.get_layer("m0_conv4_0").kernel.shape) == (3, 3, 4, 4)
    assert single.count_params() < model.count_params()
    expected, got = outputs(model), outputs(single)
    for head in expected:
        np.testing.assert_allclose(got[head], expected[head], atol=1e-5)


def test_the_average_predicts_the_mean_of_its_members():
    first, second = member(1), member(2)
    both = average_models([first, second])
    one, two, mean = outputs(first), outputs(second), outputs(both)
    assert not np.allclose(one["race"], two["race"])
    for head in mean:
        np.testing.assert_allclose(mean[head], (one[head] + two[head]) / 2.0, atol=1e-5)


def test_undoing_class_weights_divides_a_heads_probabilities_by_them():
    model = member(1)
    before = outputs(model)
    weights = np.array([2.0, 0.5, 1.0, 1.0, 4.0, 1.0, 0.25, 1.0])
    undo_class_weights(model, "age_group", weights)
    after = outputs(model)
    expected = before["age_group"] / weights
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(after["age_group"], expected, atol=1e-5)
    for head in ("gender", "race", "age"):
        np.testing.assert_array_equal(after[head], before[head])
    with pytest.raises(ValueError, match="need 8 positive class weights"):
        undo_class_weights(model, "age_group", weights[:5])


def descriptor(version: str, fingerprint: str = "rows=30;xxhash64-sum=1", size: int = 32):
    return {
        "name": "sparkface-cnn",
        "version": version,
        "input_size": [size, size, 3],
        "input_dtype": "uint8",
        "preprocessing": "decode_face",
        "flip_test_time": True,
        "classes": {"age_group": GROUPS, "gender": list(GENDERS), "race": list(RACES)},
        "age_bins": GROUPS,
        "training_data": {"fingerprint": fingerprint, "train": 0, "validation": 10, "test": 14},
        "metrics": {"race_accuracy": 0.5},
        "training": {"epochs_run": 1},
        "config": {"seed": 1},
    }


def write_split(shards: Path, split: str, rows: int, seed: int, groups=None) -> None:
    rng = np.random.default_rng(seed)
    folder = shards / f"split={split}"
    folder.mkdir(parents=True)
    ages = rng.integers(7, 80, rows)
    table = pa.table(
        {
            "pixels": pa.array(
                [rng.integers(0, 256, 32 * 32 * 3, dtype=np.uint8).tobytes() for _ in range(rows)],
                pa.binary(),
            ),
            "age_group_index": rng.integers(0, len(GROUPS), rows) if groups is None else groups,
            "gender_index": rng.integers(0, 2, rows),
            "race_index": rng.integers(0, 5, rows),
            "age": ages,
        }
    )
    pq.write_table(table, folder / "part-0.parquet")


@pytest.fixture
def members_and_shards(tmp_path):
    for index in (1, 2):
        save_package(member(index), descriptor(f"m{index}"), tmp_path / f"m{index}")
    # As a training run leaves it: OUT/model beside OUT/training/history.csv.
    save_package(member(3), descriptor("m3"), tmp_path / "run3" / "model")
    (tmp_path / "run3" / "training").mkdir()
    (tmp_path / "run3" / "training" / "history.csv").write_text("epoch,loss\n0,1.5\n")
    write_split(tmp_path / "shards", "validation", 10, seed=5)
    write_split(tmp_path / "shards", "test", 14, seed=6)
    return tmp_path


def test_the_job_writes_one_package_evaluated_on_both_splits(members_and_shards):
    root = members_and_shards
    code = ensemble_job.main(
        [
            "--members", str(root / "m1"), str(root / "m2"), str(root / "run3" / "model"),
            "--shards", str(root / "shards"), "--output", str(root / "ens"),
        ]
    )  # fmt: skip
    assert code == 0
    written = json.loads((root / "ens" / "model.json").read_text())
    assert written["metrics"]["faces"] == 14
    assert written["validation_metrics"]["faces"] == 10
    assert [m["version"] for m in written["ensemble"]["members"]] == ["m1", "m2", "m3"]
    assert [p.name for p in (root / "ens" / "members").iterdir()] == ["m2-history.csv"]
    assert written["input_size"] == [32, 32, 3]
    assert written["classes"]["race"] == list(RACES)
    assert written["version"] not in ("m1", "m2")
    saved = json.loads((root / "ens" / "test-evaluation" / "metrics.json").read_text())
    assert saved["race_accuracy"] == written["metrics"]["race_accuracy"]
    model = load_model_file(root / "ens" / "model.keras")
    mean = outputs(model)
    one = outputs(load_model_file(root / "m1" / "model.keras"))
    two = outputs(load_model_file(root / "m2" / "model.keras"))
    three = outputs(load_model_file(root / "run3" / "model" / "model.keras"))
    for head in mean:
        np.testing.assert_allclose(mean[head], (one[head] + two[head] + three[head]) / 3, atol=1e-6)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (descriptor("m2", size=48), "input_size differs"),
        (descriptor("m2", fingerprint="rows=31;xxhash64-sum=9"), "trained on other data"),
    ],
)
def test_members_that_do_not_fit_together_stop_the_job(members_and_shards, capsys, other, message):
    root = members_and_shards
    (root / "m2" / "model.json").write_text(json.dumps(other))
    code = ensemble_job.main(
        [
            "--members", str(root / "m1"), str(root / "m2"),
            "--shards", str(root / "shards"), "--output", str(root / "ens"),
        ]
    )  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (root / "ens" / "model.keras").exists()


def test_shards_of_other_data_stop_the_job(members_and_shards, capsys):
    root = members_and_shards
    write_split(root / "other", "validation", 10, seed=5)
    write_split(root / "other", "test", 3, seed=6)
    code = ensemble_job.main(
        [
            "--members", str(root / "m1"), str(root / "m2"),
            "--shards", str(root / "other"), "--output", str(root / "ens"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "the test split has 3 faces, the members were trained with 14" in capsys.readouterr().err
    assert not (root / "ens" / "model.keras").exists()


def run_undoing(root: Path, *heads: str) -> int:
    return ensemble_job.main(
        [
            "--members", str(root / "m1"), str(root / "m2"),
            "--shards", str(root / "shards"), "--output", str(root / "ens"),
            "--undo-class-weights", *heads,
        ]
    )  # fmt: skip


def trained_with_class_weights(root: Path, groups: np.ndarray) -> None:
    """Members as runs with class weights leave them, with the train split they were trained on."""
    write_split(root / "shards", "train", len(groups), seed=7, groups=groups)
    for name in ("m1", "m2"):
        path = root / name / "model.json"
        written = json.loads(path.read_text())
        written["config"] = {"training": {"class_weights": True}}
        written["training_data"]["train"] = len(groups)
        path.write_text(json.dumps(written))


def test_the_job_takes_the_training_class_weights_out_of_each_member(members_and_shards):
    root = members_and_shards
    # 16, 4, 4, 1, 1, 1, 1, 4 faces per age group: weights in proportion to 1 / sqrt(count).
    counts = np.array([16, 4, 4, 1, 1, 1, 1, 4])
    trained_with_class_weights(root, np.repeat(np.arange(len(GROUPS)), counts))
    raw = 1.0 / np.sqrt(counts)
    weights = raw / ((raw * counts).sum() / counts.sum())
    assert run_undoing(root, "age_group") == 0
    written = json.loads((root / "ens" / "model.json").read_text())
    undone = written["ensemble"]["class_weights_undone"]
    assert list(undone) == ["age_group"]
    np.testing.assert_allclose(undone["age_group"], weights, rtol=1e-5)
    members = [outputs(load_model_file(root / name / "model.keras")) for name in ("m1", "m2")]
    corrected = [m["age_group"] / weights for m in members]
    expected = np.mean([c / c.sum(axis=1, keepdims=True) for c in corrected], axis=0)
    got = outputs(load_model_file(root / "ens" / "model.keras"))
    np.testing.assert_allclose(got["age_group"], expected, atol=1e-5)
    race = (members[0]["race"] + members[1]["race"]) / 2
    np.testing.assert_allclose(got["race"], race, atol=1e-6)


@pytest.mark.parametrize(
    ("heads", "with_weights", "message"),
    [
        (("age_group",), False, "trained without class weights, there are none to undo"),
        (("age",), True, "--undo-class-weights age: not a class head"),
    ],
)
def test_class_weights_that_cannot_be_undone_stop_the_job(
    members_and_shards, capsys, heads, with_weights, message
):
    root = members_and_shards
    if with_weights:
        trained_with_class_weights(root, np.arange(len(GROUPS)))
    else:
        write_split(root / "shards", "train", 0, seed=7)
    assert run_undoing(root, *heads) == 2
    assert message in capsys.readouterr().err
    assert not (root / "ens" / "model.keras").exists()


def test_training_can_start_from_a_member_as_it_was_trained(members_and_shards):
    """`training.initial_member`: a member of an ensemble package gets back its full kernels and
    the class weights the ensemble took out, so it predicts exactly what it did before."""
    from sparkface.train.fit import load_initial_weights

    root = members_and_shards
    trained_with_class_weights(root, np.repeat(np.arange(len(GROUPS)), [16, 4, 4, 1, 1, 1, 1, 4]))
    assert run_undoing(root, "age_group") == 0
    for index, name in enumerate(("m1", "m2")):
        fresh = member(10 + index)
        version = load_initial_weights(fresh, root / "ens", member=index)
        assert version.endswith(f"member {index}")
        assert tuple(fresh.get_layer("conv5_0").kernel.shape) == (3, 3, 4, 8)
        expected = outputs(load_model_file(root / name / "model.keras"))
        got = outputs(fresh)
        for head in expected:
            np.testing.assert_allclose(got[head], expected[head], atol=1e-5)
    with pytest.raises(ValueError, match="has no layer 'm2_conv0_0'"):
        load_initial_weights(member(1), root / "ens", member=2)


def run_weight_average(root: Path, *members: str, extra: tuple[str, ...] = ()) -> int:
    return ensemble_job.main(
        [
            "--members", *(str(root / name) for name in members),
            "--shards", str(root / "shards"), "--output", str(root / "soup"),
            "--average", "weights", *extra,
        ]
    )  # fmt: skip


def with_train_split(root: Path, rows: int = 40) -> None:
    """The members' train split, which the weight average estimates batch norms on."""
    write_split(root / "shards", "train", rows, seed=7)
    for name in ("m1", "m2"):
        path = root / name / "model.json"
        written = json.loads(path.read_text())
        written["training_data"]["train"] = rows
        path.write_text(json.dumps(written))


def test_the_weight_average_is_one_network_with_the_members_mean_weights(members_and_shards):
    root = members_and_shards
    with_train_split(root)
    assert run_weight_average(root, "m1", "m2") == 0
    soup = load_model_file(root / "soup" / "model.keras")
    first, second = (load_model_file(root / name / "model.keras") for name in ("m1", "m2"))
    # One network of the members' architecture, not a network per member.
    assert [layer.name for layer in soup.layers] == [layer.name for layer in first.layers]
    assert soup.count_params() == first.count_params()
    for layer in first.layers:
        if layer.name.startswith("bn") or not layer.weights:
            continue
        mean = [
            (a + b) / 2
            for a, b in zip(
                layer.get_weights(), second.get_layer(layer.name).get_weights(), strict=True
            )
        ]
        for got, expected in zip(soup.get_layer(layer.name).get_weights(), mean, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # Batch norms: scale and shift averaged, moving statistics estimated again on the train split.
    norm = "bn0_0"
    gamma, beta, moving_mean, _ = soup.get_layer(norm).get_weights()
    members_gamma = (
        first.get_layer(norm).get_weights()[0] + second.get_layer(norm).get_weights()[0]
    ) / 2
    np.testing.assert_allclose(gamma, members_gamma, rtol=1e-6)
    members_mean = (
        first.get_layer(norm).get_weights()[2] + second.get_layer(norm).get_weights()[2]
    ) / 2
    assert not np.allclose(moving_mean, members_mean)
    written = json.loads((root / "soup" / "model.json").read_text())
    assert [m["version"] for m in written["weight_average"]["members"]] == ["m1", "m2"]
    assert written["weight_average"]["batch_norm_batches"] == 200
    assert "ensemble" not in written
    assert written["name"] == "sparkface-cnn"
    assert written["metrics"]["faces"] == 14
    assert written["validation_metrics"]["faces"] == 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("architecture", "layer 'conv0_0' is missing or has other shapes"),
        ("ensemble", "an ensemble; average single networks"),
        ("undo", "--undo-class-weights works on outputs"),
    ],
)
def test_members_that_cannot_be_averaged_weight_by_weight_stop_the_job(
    members_and_shards, capsys, change, message
):
    root = members_and_shards
    with_train_split(root)
    extra: tuple[str, ...] = ()
    if change == "architecture":
        wider = ModelConfig(
            filters=(6, 4, 4, 4, 4, 8), dense_units=(8,), dropout=0.1, augment=False
        )
        written = json.loads((root / "m2" / "model.json").read_text())
        save_package(make_model(wider, 32, len(GROUPS), seed=2), written, root / "m2")
    elif change == "ensemble":
        path = root / "m2" / "model.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "ensemble": {"members": []}}))
    else:
        extra = ("--undo-class-weights", "age_group")
    assert run_weight_average(root, "m1", "m2", extra=extra) == 2
    assert message in capsys.readouterr().err
    assert not (root / "soup" / "model.keras").exists()
