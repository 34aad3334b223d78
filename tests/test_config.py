from __future__ import annotations

import pytest

from sparkface.core.config import (
    ConfigError,
    load_ingest,
    load_labels,
    load_train,
    parse_age_groups,
)
from sparkface.core.contract import MODEL_FILE


def test_shipped_defaults_load():
    assert load_labels().groups.names[0] == "7-12"
    assert ".jpg" in load_ingest().extensions
    assert load_train().sample_fractions == {"race": {"white": 0.5}}


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
        ("image_sise: 64\n", r"unknown key\(s\) \['image_sise'\]"),
        ("sample_fractions: {race: {white: 1.5}}\n", "sample_fractions.race.white"),
        ("sample_fractions: {race: {purple: 0.5}}\n", "unknown class 'purple'"),
        ("split: {validation: 0.6, test: 0.5}\n", "must leave faces for training"),
        ("model: {activation: tanh}\n", "model.activation"),
        ("model: {age_branch: yes please}\n", "model.age_branch: true or false"),
        ("training: {batch_size: 0}\n", "training.batch_size"),
        ("training: {epoch: 3}\n", r"training: unknown key\(s\) \['epoch'\]"),
        ("training: {epochs: 4, warmup_epochs: 4}\n", "training.warmup_epochs"),
        ("training: {initial_model: no/such/package}\n", "training.initial_model: no model"),
        ("training: {initial_member: 1}\n", "training.initial_member: needs initial_model"),
        ("training: {teacher: no/such/package}\n", "training.teacher: no model"),
        ("training: {teacher_share: 1.5}\n", "training.teacher_share"),
        ("training: {teacher_mixup: 0.5}\n", "training.teacher_mixup: needs a teacher"),
        ("training: {epochs: 4, warmup_epochs: 1, average_epochs: 3}\n", "average_epochs"),
        ("training: {average_epochs: 2, average_learning_rate: 0.01}\n", "average_learning_rate"),
        ("faces: {mode: detected}\n", "faces.mode: must be one of aligned, detect"),
        ("faces: {views: {crop: 0.5, photo: 0.5}}\n", r"unknown view\(s\) \['photo'\]"),
        ("faces: {views: {crop: 0.5, frame: 0.4}}\n", "faces.views: shares must sum to 1"),
        ("faces: {views: {crop: 1.5, frame: -0.5}}\n", "faces.views.crop"),
    ],
)
def test_bad_training_config_stops_with_the_key(tmp_path, text, message):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_train(path)


def test_mixup_is_refused_beside_descriptors_it_would_not_blend(tmp_path):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / MODEL_FILE).write_bytes(b"")
    path = tmp_path / "train.yaml"
    path.write_text(f"training: {{teacher: {tmp_path / 'teacher'}, teacher_mixup: 1.5}}\n")
    with pytest.raises(ConfigError, match="training.teacher_mixup: must be a fraction"):
        load_train(path)
    path.write_text(
        f"training: {{teacher: {tmp_path / 'teacher'}, teacher_mixup: 0.5, descriptor_weight: 1}}\n"
    )
    with pytest.raises(ConfigError, match="descriptors are not blended"):
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
        "extends: base.yaml\nseed: 2\nmodel: {dropout: 0.1}\ntraining: {epochs: 7}\n"
    )
    child = load_train(tmp_path / "child.yaml")
    assert (child.image_size, child.seed) == (48, 2)
    assert (child.model.dropout, child.model.filters) == (0.1, (8, 16))
    assert (child.training.epochs, child.training.patience) == (7, 2)


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
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "a cycle"),
        ({"a.yaml": "extends: missing.yaml\n"}, "config file not found"),
        ({"a.yaml": "extends: [b.yaml]\n"}, "expected a file name"),
    ],
)
def test_bad_extends_are_named(tmp_path, files, message):
    from sparkface.core.config import load_train

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_train(tmp_path / "a.yaml")
