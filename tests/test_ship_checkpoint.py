"""`tools/ship_checkpoint.py`: the shipped network drops the auxiliary head and keeps the outputs."""

import importlib.util
import os

import numpy as np

from nasnet_app.finetune import scratch_model

TOOL = os.path.join(os.path.dirname(__file__), os.pardir, "tools", "ship_checkpoint.py")


def _tool():
    spec = importlib.util.spec_from_file_location("ship_checkpoint", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_model_drops_the_aux_head_and_predicts_as_trained():
    classes = [f"c{i}" for i in range(4)]
    config = {"num_blocks": 1, "penultimate_filters": 48, "stem": "cifar", "stem_filters": 12}
    trained = scratch_model("nasnet_a", classes, (32, 32), config, 0.8)
    assert trained.aux_head
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    shipped = _tool().shipped_model(trained, "tiny", ["w", "x", "y", "z"])
    assert not shipped.aux_head and shipped.class_names == ["w", "x", "y", "z"]
    assert shipped.count_params() < trained.count_params()
    expected = trained(images, training=False).numpy()
    np.testing.assert_allclose(shipped(images, training=False).numpy(), expected, atol=1e-5)
