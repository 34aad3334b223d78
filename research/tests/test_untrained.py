"""research/jobs/untrained.py: the multiply-adds a face that the scoring cost is planned with."""

from __future__ import annotations

from research.jobs.untrained import multiply_adds
from sparkface.core.config import ModelConfig
from sparkface.train.model import make_model


def test_multiply_adds_count_each_convolution_as_built_and_the_dense_layers():
    def network(separable):
        config = ModelConfig(filters=(8, 16), dense_units=(4,), separable_blocks=separable)
        return make_model(config, 8, 8)

    # conv0_0 on RGB at 8 x 8: 8*8*8 outputs x 3*3*3; conv1_0 at 4 x 4: 4*4*16 x 3*3*8, or
    # separable 4*4*8 x (9 + 16); dense0 16 x 4 and the heads 4 x (8 + 2 + 5 + 1).
    assert multiply_adds(network(())) == 13824 + 18432 + 64 + 64
    assert multiply_adds(network((0, 1))) == 13824 + 3200 + 64 + 64


def test_a_checkpoint_s_weights_become_a_package_marked_as_such(tmp_path, monkeypatch):
    import json
    import sys

    import keras
    import numpy as np

    from research.jobs import untrained
    from sparkface.core.config import load_labels, load_train

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "extends: conf/models/sparkface-cnn.yaml\nimage_size: 16\n"
        "model: {filters: [4, 8], dense_units: [4]}\n"
    )
    config = load_train(str(recipe))
    groups = len(load_labels().groups.names)
    trained = make_model(config.model, 16, groups, seed=config.seed + 1)  # other weights
    trained.save_weights(tmp_path / "best.weights.h5")
    like = tmp_path / "like"
    like.mkdir()
    (like / "model.json").write_text(json.dumps({"name": "sparkface-cnn", "model_sha256": "x"}))
    for weights, out in ((None, "fresh"), (tmp_path / "best.weights.h5", "epoch")):
        extra = ["--weights", str(weights)] if weights else []
        argv = ["untrained", "--config", str(recipe), "--like", str(like)]
        monkeypatch.setattr(sys, "argv", [*argv, "--output", str(tmp_path / out), *extra])
        untrained.main()
    fresh = keras.saving.load_model(tmp_path / "fresh" / "model.keras", compile=False)
    epoch = keras.saving.load_model(tmp_path / "epoch" / "model.keras", compile=False)
    for got, want in zip(epoch.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(fresh.get_weights()[0], trained.get_weights()[0])
    descriptor = json.loads((tmp_path / "epoch" / "model.json").read_text())
    assert "untrained" not in descriptor and descriptor["checkpoint"]["weights_file"].endswith(
        "best.weights.h5"
    )
    assert descriptor["model_sha256"] != "x"
    assert "untrained" in json.loads((tmp_path / "fresh" / "model.json").read_text())
