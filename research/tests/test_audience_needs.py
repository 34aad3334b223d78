"""A better network made from the shipped one's answers (research/benchmarks/audience_needs.py)."""

from __future__ import annotations

import numpy as np

from research.benchmarks.audience_needs import boosted, merged_age_groups


def faces(seed: int = 0, count: int = 400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    result = {"source": np.array(["fairface", "utkface"] * (count // 2))}
    for head, classes in (("age_group", 8), ("gender", 2), ("race", 5)):
        result[head] = rng.dirichlet(np.ones(classes), count)
        result[f"true_{head}"] = rng.integers(0, classes, count)
    result["true_race"][:10] = -1  # unknown: left as they were
    return result


def right(probabilities: np.ndarray, truth: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == truth).mean())


def test_a_boost_makes_the_true_class_likelier_and_leaves_unknown_faces_alone():
    before = faces()
    after = boosted(before, 1.0)
    for head in ("age_group", "gender", "race"):
        np.testing.assert_allclose(after[head].sum(axis=1), 1.0)
        truth = before[f"true_{head}"]
        known = np.flatnonzero(truth >= 0)
        gained = after[head][known, truth[known]] - before[head][known, truth[known]]
        assert (gained > 0).all()
        assert right(after[head][known], truth[known]) > right(before[head][known], truth[known])
    np.testing.assert_allclose(after["race"][:10], before["race"][:10])
    np.testing.assert_allclose(boosted(before, 0.0)["race"], before["race"])
    # The same confusions, less often: the wrong classes keep their proportions.
    face, truth = 20, before["true_race"][20]
    wrong = [c for c in range(5) if c != truth]
    np.testing.assert_allclose(
        after["race"][face, wrong] / after["race"][face, wrong].sum(),
        before["race"][face, wrong] / before["race"][face, wrong].sum(),
    )


def test_age_groups_merged_into_bands_add_their_probabilities():
    before = faces()
    before["true_age_group"][:5] = -1
    bands = [[0, 1], [2, 3], [4, 5], [6, 7]]
    after = merged_age_groups(before, bands)
    assert after["age_group"].shape == (400, 4)
    np.testing.assert_allclose(after["age_group"][:, 1], before["age_group"][:, 2:4].sum(axis=1))
    np.testing.assert_allclose(after["age_group"].sum(axis=1), 1.0)
    expected = np.where(before["true_age_group"] >= 0, before["true_age_group"] // 2, -1)
    np.testing.assert_array_equal(after["true_age_group"], expected)
    np.testing.assert_array_equal(after["race"], before["race"])
