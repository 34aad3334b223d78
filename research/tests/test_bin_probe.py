"""research/benchmarks/bin_probe.py: ages into FairFace's bins."""

from __future__ import annotations

import numpy as np

from research.benchmarks.bin_probe import bin_of


def test_ages_fall_into_fairfaces_bins_with_their_edges_inclusive():
    ages = [0, 2, 2.9, 3, 9, 10, 19.5, 20, 69, 70, 116]
    assert bin_of(ages).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 7, 8, 8]
    assert bin_of(np.array([45.0])).tolist() == [5]
