"""jobs/calibrate.py and sparkface.evaluate.calibrate: the model's errors on labelled faces,
measured per source; a source may count as another (more faces of the same kind)."""

from __future__ import annotations

import numpy as np
import pytest

from sparkface.core.config import SourceConfig, load_ingest, load_labels
from sparkface.core.errors import UserError
from sparkface.core.package import load_bundle
from tests.conftest import load_job, tiny_model_package, utk_names, write_faces


def test_a_source_may_count_as_another_measured_as_itself():
    calibrate = load_job("calibrate")
    assert calibrate.counted_sources(["fairface", "fairface-more:fairface", "utkface"]) == {
        "fairface": "fairface",
        "fairface-more": "fairface",
        "utkface": "utkface",
    }
    with pytest.raises(UserError, match="fairface must be measured too"):
        calibrate.counted_sources(["fairface-more:fairface", "utkface"])
    with pytest.raises(UserError, match="fairface must be measured too, as itself"):
        calibrate.counted_sources(["fairface:utkface", "more:fairface", "utkface"])
    with pytest.raises(UserError, match="once each"):
        calibrate.counted_sources(["utkface", "utkface"])


@pytest.mark.slow
def test_faces_of_a_source_counted_as_another_join_its_correction(spark, tmp_path):
    from sparkface.evaluate.calibrate import measure_calibration

    sources = []
    for seed, name in enumerate(("a", "b", "c")):
        write_faces(tmp_path / name, utk_names(8, seed=seed), size=(32, 32))
        sources.append(SourceConfig(name=name, images=str(tmp_path / name)))
    bundle = load_bundle(tiny_model_package(tmp_path / "package"))
    heads, measured_on, likeness = measure_calibration(
        spark, sources, bundle, load_ingest(), load_labels(), None, "aligned", 16,
        counted_as={"a": "a", "b": "a", "c": "c"},
    )  # fmt: skip
    gender = heads["gender"]
    assert [entry["source"] for entry in measured_on] == ["a", "b", "c"]
    given = [entry["faces_by_head"]["gender"] for entry in measured_on]
    assert min(given) > 0 and len(gender.truth) == sum(given)  # faces under 7 left out
    assert sorted(gender.sources.tolist()) == ["a"] * (given[0] + given[1]) + ["c"] * given[2]
    assert measured_on[1]["counted_as"] == "a" and "counted_as" not in measured_on[0]
    assert list(likeness.sources) == ["a", "c"]
    # Each face's true classes of the other heads, in its head's order (every face here has all).
    np.testing.assert_array_equal(heads["age_group"].others["race"], heads["race"].truth)
    np.testing.assert_array_equal(heads["race"].others["gender"], gender.truth)


def test_a_source_s_fitted_heads_are_those_it_gave_faces_of_and_was_fitted_on():
    fitted_heads = load_job("calibrate").fitted_heads
    heads = {"age_group": None, "gender": None, "race": None}
    chosen = {"race": ["fairface"]}
    fairface = {"source": "fairface", "faces_by_head": {"age_group": 0, "gender": 9, "race": 9}}
    utkface = {"source": "utkface", "faces_by_head": {"age_group": 9, "gender": 9, "race": 9}}
    more = {**fairface, "source": "fairface-more", "counted_as": "fairface"}
    assert fitted_heads(fairface, heads, chosen) == ["gender", "race"]
    assert fitted_heads(utkface, heads, chosen) == ["age_group", "gender"]
    assert fitted_heads(more, heads, chosen) == ["gender", "race"]
