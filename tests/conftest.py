"""Fixtures shared by the test files: the small Pixel Transformers and training runs that keep
the suite cheap, and a mesh of virtual devices.

A test asks for one by name (``def test_x(small_run): train(TrainConfig(**small_run))``); each
call gets a fresh copy, so a test may change what it gets.
"""

import pytest

import gt
from gt.sharding import get_mesh, use_mesh
from lpm.model import PixelTransformer

# A training run of a few milliseconds: 32 training sequences of 3 8x8 frames, 4 steps per epoch.
SMALL_RUN = dict(img_size=8, samples=40, seq_len=3, embed_dim=8, num_heads=2, ff_dim=16, batch_size=8,
                 progress=False)
# The model those runs build (3 classes), for tests of checkpoints and state dicts.
SMALL_MODEL = dict(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
# Two blocks, 12x12 frames and an odd class count: small, but every shape distinct, for comparisons
# across devices and with torch.
SMALL_MODEL_CONFIG = dict(img_size=12, embed_dim=32, num_heads=4, num_layers=2, ff_dim=64, num_classes=5,
                          max_seq_len=8)


@pytest.fixture
def small_run():
    """``TrainConfig`` arguments of a tiny run (``epochs`` left to the data set's default)."""
    return dict(SMALL_RUN)


@pytest.fixture
def small_model():
    """A factory: ``small_model(seed=None, **overrides)`` builds the ``SMALL_MODEL`` Pixel
    Transformer, after ``gt.manual_seed(seed)`` when a seed is given."""
    def make(seed=None, **overrides):
        if seed is not None:
            gt.manual_seed(seed)
        return PixelTransformer(**{**SMALL_MODEL, **overrides})
    return make


@pytest.fixture
def small_model_config():
    """``PixelTransformer`` arguments of the two-block model compared across devices and with torch."""
    return dict(SMALL_MODEL_CONFIG)


@pytest.fixture
def mesh4():
    """Four virtual devices for the test's duration (``use_mesh(4)``); yields the mesh."""
    with use_mesh(4):
        yield get_mesh()
