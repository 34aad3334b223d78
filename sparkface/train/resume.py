"""A training run that was stopped goes on from its last finished epoch.

After every epoch the run writes its state to `OUT/training/resume/`: the network's weights with
the optimiser's (its step count, so the learning-rate schedule goes on where it was), the epochs'
history and time, early stopping's count and best loss, and the running mean of the averaged
epochs. The same command run again on the same OUT reads it and trains the epochs left, and the
finished run removes it. A machine that is taken back (a lent GPU's time, a spot node, a
session's end) loses at most the epoch it was in.

The state is only ever used by the recipe and shards that wrote it: anything else stops the run
with an error that names the folder. A resumed run does not replay the batches the unbroken run
would have seen: its train stream is shuffled and augmented from a seed of its own, which depends
on the epoch it starts at (`stream_seed`), so it does not repeat the first epochs' batches either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sparkface.core.config import TrainConfig
from sparkface.core.errors import InputError
from sparkface.train.shards import shard_files

RESUME_FOLDER = "resume"  # in the run's training folder
STATE_FILE = "state.json"
# Resumed streams' seeds lie this far apart per starting epoch.
_SEED_STRIDE = 7919


@dataclass
class RunState:
    """What a run had done when its last epoch ended."""

    epoch: int = 0  # epochs finished
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0  # training time of the epochs finished, over every resumption
    wait: int = 0  # early stopping's epochs without a better validation loss
    best_loss: float | None = None
    best_epoch: int = 0  # counted from 0, as Keras's early stopping counts
    averaged_epochs: list[int] = field(default_factory=list)
    resumed_after: list[int] = field(default_factory=list)  # the epochs runs were stopped after


def recipe_fingerprint(config: TrainConfig, shards_dir: str | Path) -> str:
    """A hash of the recipe and of the train and validation shard files' names and sizes: what a
    saved state must have been trained with to be resumed."""
    shards_dir = Path(shards_dir)
    files = [
        (path.relative_to(shards_dir).as_posix(), path.stat().st_size)
        for split in ("train", "validation")
        for path in shard_files(shards_dir, split)
    ]
    text = json.dumps({"config": config.to_dict(), "shards": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stream_seed(seed: int, epoch: int) -> int:
    """The train stream's seed for a run that starts at `epoch` (0: the recipe's own seed)."""
    return seed + _SEED_STRIDE * epoch


class Resumption:
    """The saved state of one run's folder (`OUT/training/resume`)."""

    def __init__(self, directory: str | Path, fingerprint: str) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint

    def load(self) -> RunState:
        """The state a stopped run left (a fresh one when there is none); an error if it is
        another recipe's or other shards'."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return RunState()
        saved = json.loads(path.read_text())
        if saved.get("fingerprint") != self.fingerprint:
            raise InputError(
                f"{self.directory} holds a stopped run of another recipe or of other shards; "
                "train into another --output, or delete that folder to start this recipe afresh"
            )
        return RunState(**saved["state"])

    def _path(self, state: RunState, kind: str) -> Path:
        return self.directory / f"epoch-{state.epoch}.{kind}"

    def save(self, model, state: RunState, mean: list[np.ndarray] | None) -> None:
        """Write the network and optimiser (and the averaged epochs' mean), then the state that
        names their epoch: a run killed while writing leaves the epoch before whole."""
        self.directory.mkdir(parents=True, exist_ok=True)
        model.save_weights(self._path(state, "weights.h5"), overwrite=True)
        if mean is not None:
            np.savez(self._path(state, "mean.npz"), *mean)
        text = json.dumps({"fingerprint": self.fingerprint, "state": asdict(state)}, indent=1)
        temporary = self.directory / (STATE_FILE + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.directory / STATE_FILE)
        for old in self.directory.glob("epoch-*"):
            if not old.name.startswith(f"epoch-{state.epoch}."):
                old.unlink()

    def restore(self, model, state: RunState) -> list[np.ndarray] | None:
        """Put the saved network and optimiser into `model` (compiled); returns the running mean
        of the averaged epochs, if any."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self._path(state, "weights.h5"))
        if not state.averaged_epochs:
            return None
        with np.load(self._path(state, "mean.npz")) as arrays:
            return [arrays[f"arr_{index}"] for index in range(len(arrays.files))]

    def remove(self) -> None:
        """The finished run's state is no longer needed."""
        shutil.rmtree(self.directory, ignore_errors=True)


def saver(resumption: Resumption, state: RunState, early_stopping, best, averager, clock):
    """A Keras callback that records each epoch in `state` and saves it: the logs, the time
    (`clock()`: the seconds of every run so far), early stopping's and the best epoch's counts,
    the averaged epochs."""
    import keras

    class SaveState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                state.history.setdefault(key, []).append(float(value))
            state.epoch = epoch + 1
            state.seconds = clock()
            state.wait = int(early_stopping.wait)
            state.best_epoch = int(early_stopping.best_epoch)
            state.best_loss = None if best.best == float("inf") else float(best.best)
            mean = None
            if averager is not None and averager.mean is not None:
                state.averaged_epochs = list(averager.epochs)
                mean = averager.mean
            resumption.save(self.model, state, mean)

    return SaveState()


def resumed_early_stopping(patience: int, state: RunState, best_weights_path: Path):
    """Keras's early stopping on the validation loss, keeping the best epoch's weights, that
    starts from a stopped run's count and best epoch (its weights read from the file
    `best_weights` wrote) instead of from nothing."""
    import keras

    class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if not state.epoch or state.best_loss is None:
                return
            self.wait = state.wait
            self.best = state.best_loss
            self.best_epoch = state.best_epoch
            self.best_weights = best_epoch_weights(self.model, best_weights_path)

    return ResumedEarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


def best_epoch_weights(model, path: Path) -> list[np.ndarray] | None:
    """The weights `sparkface.train.fit.best_weights` saved at `path`, as `model.get_weights()`
    lists them, read without changing `model`; None when there is no such file."""
    import keras

    if not path.is_file():
        return None
    current = model.get_weights()
    keras.Model(model.input, model.output).load_weights(path)
    saved = model.get_weights()
    model.set_weights(current)
    return saved
