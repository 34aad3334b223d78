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
