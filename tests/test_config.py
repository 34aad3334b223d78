from __future__ import annotations

import json

import pytest

from sparkface.core.config import (
    CONF_DIR,
    DEFAULT_FACE_MODE,
    ConfigError,
    FacesConfig,
    IngestConfig,
    LabelConfig,
    TrainConfig,
    load_faces,
    load_ingest,
    load_labels,
    load_train,
    parse_age_groups,
    require_packages,
)


def test_the_defaults_are_the_shipped_files():
    """Code and conf/ say the same: a default changed in one place only is a failure."""
    assert FacesConfig() == load_faces()
    assert LabelConfig() == load_labels()
    assert IngestConfig() == load_ingest()
    assert TrainConfig() == load_train() == load_train(CONF_DIR / "models" / "sparkface-cnn.yaml")
    assert load_faces().mode == DEFAULT_FACE_MODE == "detect"


def test_every_recipe_validates_without_its_packages_on_disk(tmp_path, monkeypatch):
    """A fresh clone validates every recipe; the packages a recipe starts from are checked when
    it trains (require_packages), with the command that makes them."""
    recipes = sorted((CONF_DIR / "models").glob("*.yaml"))
    assert len(recipes) == 21
    student = load_train(CONF_DIR / "models" / "sparkface-cnn-student-m2-swa-lowdrop.yaml")
    assert student.training.teacher == str(CONF_DIR.parent / "out" / "ensemble-detect")
    for recipe in recipes:
        load_train(recipe)
    with pytest.raises(ConfigError, match="training.initial_model: no model package.*make model"):
        require_packages(student)
    plain = load_train()
    require_packages(plain)  # nothing to find


def test_the_shipped_package_records_the_recipe_make_model_runs():
    """`make model` trains conf/models/sparkface-cnn-scratch.yaml: the shipped package was made
    with exactly those settings (a recipe edited without a new package is a failure)."""
    shipped = CONF_DIR.parent / "models" / "sparkface-cnn" / "model.json"
    descriptor = json.loads(shipped.read_text())
    recipe = load_train(CONF_DIR / "models" / "sparkface-cnn-scratch.yaml")
    assert json.loads(json.dumps(recipe.to_dict())) == descriptor["config"]
    assert descriptor["config"]["training"]["initial_model"] is None
    assert descriptor["training"]["initial_model"] is None
    makefile = (CONF_DIR.parent / "Makefile").read_text()
    target = makefile[makefile.index("\nmodel:") :].split("\n\n")[0]
    # stopped part-way, make model goes on: the shards reused, training resumed
    assert "--config conf/models/sparkface-cnn-scratch.yaml --reuse-shards" in target


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ([], "at least one bin"),
        (["7-12", "14-20"], "must start at 13"),
        (["7-12", "13+", "20-30"], "only the last bin may be open"),
        (["12-7"], "ends before it starts"),
        (["teen"], "'teen' is not"),
    ],
)
def test_bad_age_bins_are_named(bins, message):
    with pytest.raises(ConfigError, match=message):
        parse_age_groups(bins)


def test_custom_bins_index_ages():
    groups = parse_age_groups(["10-19", "20 - 39", "40+"])
    assert groups.names == ("10-19", "20-39", "40+")
    assert [groups.index_of(a) for a in (3, 10, 39, 40, 99)] == [-1, 0, 1, 2, 2]
    assert groups.below_first == "<10"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image_sise: 64\n", r"image_sise: unknown key; known keys: \['faces', 'image_size'"),
        ("sample_fractions: {race: {white: 1.5}}\n", "sample_fractions.race.white: Input should"),
        ("sample_fractions: {race: {purple: 0.5}}\n", r"unknown class\(es\) \['purple'\]"),
        ("split: {validation: 0.6, test: 0.5}\n", "must leave faces for training"),
        ("model: {activation: tanh}\n", "model.activation: Input should be 'relu' or 'leaky_relu'"),
        ("model: {augment: yes please}\n", "model.augment: Input should be a valid boolean"),
        ("model: {augment: 1}\n", "model.augment: Input should be a valid boolean"),
        ("training: {class_weights: 'no'}\n", "training.class_weights: Input should be a valid"),
        ("training: {xla: 0}\n", "training.xla: Input should be a valid boolean"),
        ("training: {flip_test_time: 'true'}\n", "training.flip_test_time: Input should be"),
        ("training: {steps_per_epoch: 2.5}\n", "training.steps_per_epoch: Input should be"),
        ("training: {steps_per_epoch: 0}\n", "training.steps_per_epoch: Input should be greater"),
        ("training: {loss_weights: {age: many}}\n", "training.loss_weights.age: Input should be"),
        (
            "training: {loss_weights: {eyes: 1}}\n",
            "training.loss_weights.eyes: unknown key",
        ),
        ("training: {batch_size: 0}\n", "training.batch_size: Input should be greater"),
        ("training: {epochs: 4.0}\n", "training.epochs: Input should be a valid integer"),
        (
            "training: {epoch: 3}\n",
            r"training.epoch: unknown key; known keys: \['augment_workers', 'average_epochs'",
        ),
        ("training: {epochs: 4, warmup_epochs: 4}\n", "training.warmup_epochs"),
        ("training: {initial_member: 1}\n", "training.initial_member: needs initial_model"),
        ("training: {fresh_from: conv3_0}\n", "training.fresh_from: needs initial_model"),
        ("training: {frozen_through: pool2}\n", "training.frozen_through: needs initial_model"),
        ("training: {teacher_share: 1.5}\n", "training.teacher_share"),
        ("training: {teacher_mixup: 0.5}\n", "training.teacher_mixup: unknown key"),
        ("training: {epochs: 4, warmup_epochs: 1, average_epochs: 3}\n", "average_epochs"),
        ("training: {average_epochs: 2, average_learning_rate: 0.01}\n", "average_learning_rate"),
        ("faces: {mode: detected}\n", "faces.mode: Input should be 'aligned' or 'detect'"),
        ("faces: {views: {crop: 0.5, photo: 0.5}}\n", "faces.views.photo: unknown key"),
        ("faces: {views: {crop: 0.5, frame: 0.4}}\n", "faces.views: shares must sum to 1"),
        ("faces: {views: {crop: 1.5, frame: -0.5}}\n", "faces.views.crop"),
    ],
)
def test_bad_training_config_stops_with_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}: .*{message}"):
        load_train(path)


def test_labels_config_rejects_empty_bins(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text("age_groups: []\n")
    with pytest.raises(ConfigError, match="at least one bin"):
        load_labels(path)


def test_a_recipe_extends_another_by_the_keys_it_changes(tmp_path):
    from sparkface.core.config import load_train

    (tmp_path / "base.yaml").write_text(
        "image_size: 48\nseed: 1\nmodel: {dropout: 0.3, filters: [8, 16]}\n"
        "training: {epochs: 5, patience: 2}\n"
    )
    (tmp_path / "child.yaml").write_text(
        f"extends: {tmp_path / 'base.yaml'}\nseed: 2\n"
        "model: {dropout: 0.1}\ntraining: {epochs: 7}\n"
    )
    child = load_train(tmp_path / "child.yaml")
    assert (child.image_size, child.seed) == (48, 2)
    assert (child.model.dropout, child.model.filters) == (0.1, (8, 16))
    assert (child.training.epochs, child.training.patience) == (7, 2)


def test_a_recipe_that_names_its_sources_trains_on_those_only(tmp_path):
    from sparkface.core.config import load_train

    (tmp_path / "base.yaml").write_text(
        "sources: {utkface: 1.0, fairface: 1.0}\nsample_fractions: {race: {white: 0.5}}\n"
    )
    (tmp_path / "child.yaml").write_text(
        f"extends: {tmp_path / 'base.yaml'}\nsources: {{fairface: 2.0}}\n"
        "sample_fractions: {race: {black: 0.9}}\n"
    )
    (tmp_path / "same.yaml").write_text(f"extends: {tmp_path / 'base.yaml'}\nseed: 3\n")
    child = load_train(tmp_path / "child.yaml")
    assert child.sources == {"fairface": 2.0}
    assert child.sample_fractions == {"race": {"white": 0.5, "black": 0.9}}
    assert load_train(tmp_path / "same.yaml").sources == {"utkface": 1.0, "fairface": 1.0}


def test_the_ensembles_seeds_differ_from_the_first_member_only_where_they_say():
    from sparkface.core.config import CONF_DIR, load_train

    first = load_train(CONF_DIR / "models" / "sparkface-cnn.yaml").to_dict()
    second = load_train(CONF_DIR / "models" / "sparkface-cnn-seed2.yaml").to_dict()
    third = load_train(CONF_DIR / "models" / "sparkface-cnn-seed3.yaml").to_dict()
    assert {**first, "seed": 2027} == second
    assert {**first, "seed": 3031, "training": {**first["training"], "epochs": 30}} == third


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "extends: {dir}/b.yaml\n", "b.yaml": "extends: {dir}/a.yaml\n"}, "a cycle"),
        ({"a.yaml": "extends: missing.yaml\n"}, "config file not found"),
        ({"a.yaml": "extends: [b.yaml]\n"}, "expected a file name"),
    ],
)
def test_bad_extends_are_named(tmp_path, files, message):
    from sparkface.core.config import load_train

    for name, text in files.items():
        (tmp_path / name).write_text(text.format(dir=tmp_path))
    with pytest.raises(ConfigError, match=message):
        load_train(tmp_path / "a.yaml")
