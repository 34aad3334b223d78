from __future__ import annotations

import json

import numpy as np
import pytest

from sparkface.core.config import ModelConfig, TrainConfig, TrainingConfig
from sparkface.core.errors import InputError
from sparkface.train.resume import Resumption, RunState, recipe_fingerprint, stream_seed
from tests.test_ensemble import GROUPS, write_split


class Stopped(Exception):
    """The machine taken back in the middle of a run."""


def tiny_recipe(**training) -> TrainConfig:
    settings = {"batch_size": 16, "epochs": 4, "learning_rate": 0.01, "class_weights": False}
    model = ModelConfig(filters=(8, 16, 16), dense_units=(16, 8), dropout=0.1, augment=False)
    return TrainConfig(image_size=32, model=model, training=TrainingConfig(**settings | training))


def shards(folder):
    write_split(folder, "train", 48, seed=3)
    write_split(folder, "validation", 16, seed=4)
    return folder


class FakeModel:
    def save_weights(self, path, overwrite=True):
        path.write_bytes(b"weights")


def test_the_state_names_its_epoch_and_the_earlier_epochs_files_go(tmp_path):
    resumption = Resumption(tmp_path / "resume", "recipe")
    for epoch in (1, 2):
        resumption.save(FakeModel(), RunState(epoch=epoch, averaged_epochs=[epoch]), [np.ones(2)])
    assert sorted(p.name for p in (tmp_path / "resume").iterdir()) == [
        "epoch-2.mean.npz",
        "epoch-2.weights.h5",
        "state.json",
    ]
    assert resumption.load().epoch == 2
    resumption.remove()
    assert not (tmp_path / "resume").exists()
    assert resumption.load() == RunState()


def test_a_state_of_another_recipe_or_other_shards_is_refused(tmp_path):
    folder = shards(tmp_path / "shards")
    recipe = tiny_recipe()
    fingerprint = recipe_fingerprint(recipe, folder)
    Resumption(tmp_path / "resume", fingerprint).save(FakeModel(), RunState(epoch=1), None)
    assert Resumption(tmp_path / "resume", fingerprint).load().epoch == 1
    other_recipe = recipe_fingerprint(tiny_recipe(learning_rate=0.02), folder)
    with pytest.raises(InputError, match="another recipe or of other shards"):
        Resumption(tmp_path / "resume", other_recipe).load()
    with (folder / "split=train" / "more.parquet").open("wb") as more:
        more.write(b"")
    assert recipe_fingerprint(recipe, folder) != fingerprint


def test_a_resumed_stream_starts_from_a_seed_of_its_own():
    assert stream_seed(1337, 0) == 1337
    assert len({stream_seed(1337, epoch) for epoch in range(50)}) == 50


@pytest.mark.slow
def test_a_stopped_run_goes_on_from_its_last_epoch(tmp_path, monkeypatch):
    import sparkface.train.fit as fit
    from sparkface.core.config import parse_age_groups

    folder = shards(tmp_path / "shards")
    recipe = tiny_recipe(average_epochs=3, average_learning_rate=0.005)
    groups = parse_age_groups(GROUPS)
    out = tmp_path / "out"
    saver = fit.saver

    def stopping_saver(*args):
        callback = saver(*args)
        save = callback.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            save(epoch, logs)
            if epoch == 1:
                raise Stopped

        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(fit, "saver", stopping_saver)
    with pytest.raises(Stopped):
        fit.train(folder, recipe, groups, out, 0)
    state = json.loads((out / "resume" / "state.json").read_text())["state"]
    assert state["epoch"] == 2 and state["averaged_epochs"] == [2]
    assert len(state["history"]["val_loss"]) == 2
    monkeypatch.setattr(fit, "saver", saver)

    model, run = fit.train(folder, recipe, groups, out, 0)
    assert run["epochs_run"] == 4 and run["resumed_after_epochs"] == [2]
    assert len(run["history"]["loss"]) == 4
    assert run["history"]["val_loss"][:2] == [round(v, 5) for v in state["history"]["val_loss"]]
    assert run["training_seconds"] >= state["seconds"]
    # The optimiser went on counting (the learning rate's schedule with it), and the average
    # holds the epoch before the stop.
    assert int(model.optimizer.iterations.numpy()) == 4 * 3
    assert run["averaging"]["epochs"] == [2, 3, 4]
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 4
    assert not (out / "resume").exists()
