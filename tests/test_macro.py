import numpy as np
import pytest

from nasnet_app.search.macro import build_macro_model
from nasnet_app.search.spaces import MacroArchitecture


def layer(size, filters, stride=1, inputs=()):
    return {
        "filter_height": size[0],
        "filter_width": size[1],
        "filters": filters,
        "stride": stride,
        "inputs": list(inputs),
    }


def test_skip_inputs_are_concatenated_before_the_conv():
    architecture = MacroArchitecture(
        [layer((3, 3), 4), layer((1, 5), 6, inputs=[0]), layer((7, 1), 5, inputs=[0, 1])]
    )
    model = build_macro_model(architecture, input_shape=(8, 8, 3), classes=3)
    assert model.get_layer("layer_2_conv").input.shape[-1] == 4 + 6
    assert model.get_layer("layer_1_conv").kernel.shape == (1, 5, 4, 6)
    # Only layer 2 is unconsumed: the classifier sees its 5 channels.
    assert model.get_layer("predictions").kernel.shape == (5, 3)
    out = model(np.zeros((2, 8, 8, 3), "float32"))
    np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


def test_layers_without_inputs_read_the_image_and_unused_outputs_feed_the_classifier():
    architecture = MacroArchitecture([layer((3, 3), 4), layer((3, 3), 6)])
    model = build_macro_model(architecture, input_shape=(8, 8, 3), classes=2)
    assert model.get_layer("layer_1_conv").input.shape[-1] == 3
    assert model.get_layer("predictions").kernel.shape == (10, 2)


@pytest.mark.parametrize("resize, size", [("pad", 8), ("pool", 4)])
def test_strided_inputs_are_padded_or_pooled_to_one_size(resize, size):
    architecture = MacroArchitecture(
        [layer((3, 3), 4), layer((3, 3), 4, stride=2, inputs=[0]), layer((1, 1), 4, inputs=[0, 1])]
    )
    model = build_macro_model(architecture, input_shape=(8, 8, 3), resize=resize)
    assert model.get_layer("layer_2_conv").input.shape[1:3] == (size, size)
    assert model(np.ones((1, 8, 8, 3), "float32")).shape == (1, 10)


def test_bad_arguments_name_the_field():
    architecture = MacroArchitecture([layer((3, 3), 4)])
    with pytest.raises(ValueError, match="`resize`"):
        build_macro_model(architecture, resize="crop")
    with pytest.raises(ValueError, match="`input_shape`"):
        build_macro_model(architecture, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"layers\[0\].filters"):
        build_macro_model({"layers": [layer((3, 3), 0)]})
