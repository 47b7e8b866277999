"""Shared test set-up: quiet TensorFlow, tiny model configurations."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

# The smallest honest NASNet: 1 cell per stack, 32 px, few filters.
TINY = dict(
    num_blocks=1,
    penultimate_filters=48,
    stem="cifar",
    stem_filters=12,
    input_shape=(32, 32, 3),
    classes=10,
)


@pytest.fixture
def tiny_config():
    return dict(TINY)
