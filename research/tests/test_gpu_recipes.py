"""The recipes a GPU session trains side by side (docs/gpu.md, "Within a session's 15 minutes")
read one bundle of shards, prepared with the shipped round's recipe: `jobs/fit.py` stops a
recipe whose data settings differ from the shards' (exit 2), which there would cost a call."""

from __future__ import annotations

import pytest

from sparkface.core.config import load_labels, load_train
from sparkface.train.packaging import reusable_preparation, write_config

PREPARED_WITH = "conf/models/sparkface-cnn-world-64c.yaml"
CANDIDATES = ("world-64-scratch", "world-mid-wide", "world-early-wide")


@pytest.mark.parametrize("name", CANDIDATES)
def test_each_gpu_candidate_reuses_the_shipped_round_s_shards(name, tmp_path):
    write_config(tmp_path, load_train(PREPARED_WITH), load_labels())
    (tmp_path / "preparation.json").write_text('{"rows": {"train": 1}}')
    recipe = load_train(f"research/conf/models/{name}.yaml")
    assert reusable_preparation(tmp_path, recipe) == {"rows": {"train": 1}}
    # The same recipe preparing its faces at another size would be stopped.
    assert reusable_preparation(tmp_path, recipe.model_copy(update={"image_size": 48})) is None
