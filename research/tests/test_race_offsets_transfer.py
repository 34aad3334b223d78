import numpy as np

from research.benchmarks.race_offsets_transfer import accuracy, fit_offsets


def test_offsets_fitted_undo_a_bias_against_one_class():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, size=500)
    logs = rng.normal(0.0, 0.3, size=(500, 5))
    logs[np.arange(500), truth] += 1.0  # right, by a margin
    logs[:, 3] -= 0.8  # but class 3 pushed under the others
    assert accuracy(logs, truth, np.zeros(5)) < 0.9
    offsets = fit_offsets(logs, truth)
    assert offsets[0] == 0.0
    assert 0.5 <= offsets[3] - np.delete(offsets, 3).max() <= 1.1
    assert accuracy(logs, truth, offsets) > 0.95
