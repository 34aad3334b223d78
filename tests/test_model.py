from __future__ import annotations

import numpy as np
import pytest

from sparkface.core.config import ModelConfig
from sparkface.core.package import load_model_file, predict, save_package
from sparkface.train.model import compile_model, make_model


def small_config(**overrides) -> ModelConfig:
    values = {"filters": (8, 16, 16), "dense_units": (16, 8), "dropout": 0.1} | overrides
    return ModelConfig(**values)


def test_heads_have_the_configured_shapes():
    model = make_model(small_config(), 32, n_age_groups=6)
    outputs = model(np.zeros((3, 32, 32, 3), dtype=np.uint8), training=False)
    assert tuple(outputs["age_group"].shape) == (3, 6)
    assert tuple(outputs["gender"].shape) == (3, 2)
    assert tuple(outputs["race"].shape) == (3, 5)
    assert tuple(outputs["age"].shape) == (3, 1)


def test_architecture_follows_the_config():
    model = make_model(small_config(activation="relu", augment=False, convs_per_block=2), 32, 8)
    names = [layer.name for layer in model.layers]
    assert sum(name.startswith("conv") for name in names) == 6
    assert sum(name.startswith("bn") for name in names) == 6
    assert not any("leaky" in layer.__class__.__name__.lower() for layer in model.layers)
    leaky = make_model(small_config(), 32, 8)
    assert any(layer.__class__.__name__ == "LeakyReLU" for layer in leaky.layers)
    # Augmentation belongs to the training stream, never to the model that scoring runs.
    assert not any("random" in layer.__class__.__name__.lower() for layer in leaky.layers)


def test_dropout_acts_in_training_only_so_scoring_is_deterministic():
    model = make_model(small_config(dropout=0.5), 32, 8)
    faces = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    trained = [np.asarray(model(faces, training=True)["race"]) for _ in range(2)]
    assert not np.allclose(trained[0], trained[1])  # dropout draws differ between calls
    scored = [predict(model, faces, flip=False)["race"] for _ in range(2)]
    np.testing.assert_array_equal(scored[0], scored[1])
    mirrored = predict(model, faces[:, :, ::-1, :], flip=False)["race"]
    np.testing.assert_allclose(
        predict(model, faces, flip=True)["race"], (scored[0] + mirrored) / 2, atol=1e-6
    )


@pytest.mark.slow  # trains
def test_a_few_training_steps_lower_the_loss_and_survive_saving(tmp_path):
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    targets = {
        "age_group": rng.integers(0, 8, 64),
        "gender": (faces.mean(axis=(1, 2, 3)) > 127).astype(int),
        "race": rng.integers(0, 5, 64),
        "age": rng.random((64, 1)),
    }
    model = make_model(small_config(augment=False), 32, 8)
    compile_model(model, 0.01, 0.0, {})
    history = model.fit(faces, targets, batch_size=16, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    save_package(model, {"version": "t"}, tmp_path)
    loaded = load_model_file(tmp_path / "model.keras")
    np.testing.assert_allclose(
        predict(model, faces[:5])["race"], predict(loaded, faces[:5])["race"], atol=1e-6
    )
    assert predict(loaded, faces[:5])["age"].min() >= 0
    # The package holds the weights only: no optimizer state (which would triple its size).
    import zipfile

    import h5py

    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5", "r") as weights:
        assert "optimizer" not in weights


def test_the_shipped_model_matches_its_descriptor():
    import json

    from sparkface.core.package import default_model_dir, file_sha256, load_package_model
    from sparkface.core.runtime import runtime_file

    folder = default_model_dir()
    descriptor = json.loads((folder / "model.json").read_text())
    scored = folder / runtime_file(descriptor)
    assert descriptor["model_sha256"] == file_sha256(scored)
    assert scored.stat().st_size < 20 * 1024 * 1024
    model = load_package_model(folder)
    size = descriptor["input_size"][0]
    outputs = predict(model, np.zeros((2, size, size, 3), dtype=np.uint8))
    assert outputs["age_group"].shape == (2, len(descriptor["classes"]["age_group"]))
    assert descriptor["classes"]["race"] == ["white", "black", "asian", "indian", "others"]


def test_separable_blocks_use_depthwise_separable_convolutions_but_on_the_rgb_face():
    import keras

    plain = make_model(small_config(convs_per_block=2), 32, 8)
    model = make_model(small_config(convs_per_block=2, separable_blocks=(0, 1)), 32, 8)
    plain_kind, separable = keras.layers.Conv2D, keras.layers.SeparableConv2D
    kinds = [type(model.get_layer(name)) for name in ("conv0_0", "conv0_1", "conv1_1", "conv2_0")]
    assert kinds == [plain_kind, separable, separable, plain_kind]
    assert model.count_params() < plain.count_params()
    outputs = model(np.zeros((2, 32, 32, 3), dtype=np.uint8), training=False)
    assert tuple(outputs["race"].shape) == (2, 5)
    with pytest.raises(ValueError, match=r"separable_blocks: no block \[3\]"):
        small_config(separable_blocks=(1, 3))


def test_training_can_start_from_a_package_made_at_another_input_size(tmp_path):
    from sparkface.train.fit import load_initial_weights

    source = make_model(small_config(), 32, 8, seed=1)
    save_package(source, {"version": "stage-one"}, tmp_path / "stage1")
    target = make_model(small_config(), 48, 8, seed=2)
    assert load_initial_weights(target, tmp_path / "stage1") == "stage-one"
    for layer in target.layers:
        if layer.weights:
            for mine, theirs in zip(
                layer.get_weights(), source.get_layer(layer.name).get_weights(), strict=True
            ):
                np.testing.assert_array_equal(mine, theirs)
    other = make_model(small_config(dense_units=(32, 8)), 48, 8)
    with pytest.raises(ValueError, match="layer 'dense0' has weights of shapes"):
        load_initial_weights(other, tmp_path / "stage1")


def test_training_from_further_back_refreshes_the_top_and_freezes_the_bottom(tmp_path):
    from sparkface.train.fit import freeze_through, load_initial_weights

    source = make_model(small_config(), 32, 8, seed=1)
    save_package(source, {"version": "stage-one"}, tmp_path / "stage1")
    target = make_model(small_config(), 32, 8, seed=2)
    fresh = {layer.name: layer.get_weights() for layer in target.layers}
    load_initial_weights(target, tmp_path / "stage1", fresh_from="conv1_0")
    names = [layer.name for layer in target.layers]
    for layer in target.layers:
        if not layer.weights:
            continue
        kept = source if names.index(layer.name) < names.index("conv1_0") else None
        expected = kept.get_layer(layer.name).get_weights() if kept else fresh[layer.name]
        for mine, theirs in zip(layer.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(target.get_layer("conv2_0").get_weights()[0],
                              source.get_layer("conv2_0").get_weights()[0])  # fmt: skip

    assert freeze_through(target, "pool0", fresh_from="conv1_0") == names.index("pool0") + 1
    assert [layer.trainable for layer in target.layers] == [
        i > names.index("pool0") for i in range(len(names))
    ]
    before = [w.copy() for w in target.get_layer("bn0_0").get_weights()]
    top_before = target.get_layer("conv1_0").get_weights()[0].copy()
    compile_model(target, 0.01, 0.0, {})
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    labels = {"age_group": np.zeros(8), "gender": np.ones(8), "race": np.zeros(8),
              "age": np.full((8, 1), 0.3)}  # fmt: skip
    target.fit(faces, labels, epochs=1, batch_size=8, verbose=0)
    for now, then in zip(target.get_layer("bn0_0").get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)  # moving statistics too: inference mode
    assert not np.array_equal(target.get_layer("conv1_0").get_weights()[0], top_before)

    with pytest.raises(ValueError, match="frozen_through: 'conv1_0' must come before fresh_from"):
        freeze_through(target, "conv1_0", fresh_from="conv1_0")
    with pytest.raises(ValueError, match="fresh_from: the network has no layer 'conv9_0'"):
        load_initial_weights(target, tmp_path / "stage1", fresh_from="conv9_0")


def test_warmup_raises_the_learning_rate_from_zero_before_the_cosine_decay():
    model = make_model(small_config(), 32, 8)
    compile_model(model, 0.01, 0.0, {}, steps=100, warmup_steps=10)
    import keras

    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(0.005)
    assert rates[2] == pytest.approx(0.01)
    assert 0.0002 < rates[3] < 0.01
    assert rates[4] == pytest.approx(0.0002)


def test_the_precision_policy_is_given_back_even_when_training_fails():
    import keras

    from sparkface.train.fit import precision_policy

    before = keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError, match="out of memory"), precision_policy("mixed_float16"):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        raise RuntimeError("out of memory (injected)")
    assert keras.mixed_precision.global_policy().name == before == "float32"


def test_a_network_trained_in_mixed_precision_is_packaged_in_float32(tmp_path):
    """On a GPU, training runs under mixed_float16; the package must score in float32 with the
    trained weights, wherever it is loaded."""
    from sparkface.core.config import train_config_from_dict
    from sparkface.train.fit import in_float32, precision_policy

    config = train_config_from_dict({"image_size": 32, "model": {"filters": [8, 16, 16],
                                     "dense_units": [16, 8], "dropout": 0.1}})  # fmt: skip
    with precision_policy("mixed_float16"):
        mixed = make_model(config.model, 32, 8, seed=3)
    assert mixed.get_layer("conv0_0").dtype_policy.name == "mixed_float16"
    copy = in_float32(mixed, config, 8)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    for layer in (layer for layer in mixed.layers if layer.weights):
        for trained, kept in zip(layer.get_weights(), copy.get_layer(layer.name).get_weights(),
                                 strict=True):  # fmt: skip
            np.testing.assert_array_equal(trained, kept)
    save_package(copy, {"name": "t"}, tmp_path / "p")
    loaded = load_model_file(tmp_path / "p" / "model.keras")
    faces = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert loaded.predict_on_batch(faces)["race"].dtype == np.float32
    np.testing.assert_allclose(
        loaded.predict_on_batch(faces)["race"], mixed.predict_on_batch(faces)["race"], atol=0.01
    )


@pytest.mark.slow
def test_a_run_from_further_back_keeps_the_frozen_layers_and_saves_a_whole_network(tmp_path):
    import h5py

    from sparkface.core.config import TrainConfig, TrainingConfig, parse_age_groups
    from sparkface.train.fit import train
    from tests.test_ensemble import GROUPS, write_split

    start = make_model(small_config(), 32, len(GROUPS), seed=1)
    save_package(start, {"version": "start"}, tmp_path / "start")
    write_split(tmp_path / "shards", "train", 48, seed=3)
    write_split(tmp_path / "shards", "validation", 16, seed=4)
    training = TrainingConfig(
        batch_size=16, epochs=2, learning_rate=0.01, initial_model=str(tmp_path / "start"),
        fresh_from="conv2_0", frozen_through="pool1", class_weights=False,
    )  # fmt: skip
    config = TrainConfig(image_size=32, model=small_config(augment=False), training=training)
    model, run = train(tmp_path / "shards", config, parse_age_groups(GROUPS), tmp_path / "out", 0)
    assert run["initial_model"] == "start"
    for name in ("conv0_0", "bn0_0", "conv1_0", "bn1_0"):
        for now, then in zip(model.get_layer(name).get_weights(),
                             start.get_layer(name).get_weights(), strict=True):  # fmt: skip
            np.testing.assert_array_equal(now, then)
    for name in ("conv2_0", "dense0", "race"):
        assert not np.allclose(model.get_layer(name).get_weights()[0],
                               start.get_layer(name).get_weights()[0])  # fmt: skip
    assert all(layer.trainable for layer in model.layers)
    # The best epoch's weights alone, loadable into the recipe's network (what a run stopped by
    # its time limit brings back: scripts/gpu/train.sh, research/jobs/untrained.py --weights).
    best = make_model(small_config(), 32, len(GROUPS), seed=2)
    best.load_weights(tmp_path / "out" / "best.weights.h5")
    np.testing.assert_array_equal(best.get_layer("conv0_0").get_weights()[0],
                                  start.get_layer("conv0_0").get_weights()[0])  # fmt: skip
    assert not np.allclose(best.get_layer("conv2_0").get_weights()[0],
                           start.get_layer("conv2_0").get_weights()[0])  # fmt: skip
    # The weights alone: the optimiser's state (twice as much again) is not in the file.
    with h5py.File(tmp_path / "out" / "best.weights.h5") as saved:
        assert sorted(saved) == ["layers", "vars"]
