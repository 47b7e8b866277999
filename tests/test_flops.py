"""Tests for nasnet_app.evaluate.flops: hand-computed counts, subclassed models, NASNet figures."""

import keras
import pytest
import tensorflow as tf

from nasnet_app.evaluate.flops import count_mult_adds, count_params, mult_adds_by_op


def sequential(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers])


def test_single_conv2d_by_hand():
    # 7x9x3 input, 3x2 kernel, stride 2, valid: output 3x4x5; 3*2*3 taps per output.
    model = sequential((7, 9, 3), keras.layers.Conv2D(5, (3, 2), strides=2))
    assert model.compute_output_shape((None, 7, 9, 3)) == (None, 3, 4, 5)
    assert count_mult_adds(model, (7, 9, 3)) == 3 * 4 * 5 * (3 * 2 * 3)
    assert count_params(model) == 3 * 2 * 3 * 5 + 5


def test_single_dense_by_hand():
    model = sequential((6,), keras.layers.Dense(4))
    assert count_mult_adds(model, (6,)) == 6 * 4
    assert count_params(model) == 6 * 4 + 4
    assert count_params(model, trainable_only=True) == 28


def test_conv_then_dense_split_by_op():
    model = sequential(
        (8, 8, 2),
        keras.layers.Conv2D(3, 3, padding="same", use_bias=False),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    )
    conv, dense = 8 * 8 * 3 * (3 * 3 * 2), (8 * 8 * 3) * 10
    assert mult_adds_by_op(model, (8, 8, 2)) == {"Conv2D": conv, "MatMul": dense}
    assert count_mult_adds(model, (8, 8, 2)) == conv + dense


def test_separable_conv_counts_depthwise_and_pointwise():
    model = sequential((6, 6, 4), keras.layers.SeparableConv2D(8, 3, padding="same"))
    assert mult_adds_by_op(model, (6, 6, 4)) == {
        "DepthwiseConv2dNative": 36 * 9 * 4,
        "Conv2D": 36 * 4 * 8,
    }


@pytest.mark.parametrize("size", [7, 8])
def test_dilated_conv_is_counted_at_its_true_output_size(size):
    # TensorFlow runs it on a padded SpaceToBatchND grid (8x8 for a 7x7 input).
    model = sequential((size, size, 1), keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same"))
    assert count_mult_adds(model, (size, size, 1)) == size * size * 9 * 2


def test_batch_norm_and_activations_are_free():
    model = sequential(
        (4, 4, 2),
        keras.layers.Conv2D(2, 1, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
    )
    assert count_mult_adds(model, (4, 4, 2)) == 16 * 2 * 2
    assert count_params(model) == 4 + 4 * 2
    assert count_params(model, trainable_only=True) == 4 + 2 * 2


def test_pooling_only_when_asked():
    model = sequential(
        (4, 4, 3), keras.layers.MaxPooling2D(2), keras.layers.GlobalAveragePooling2D()
    )
    assert count_mult_adds(model, (4, 4, 3)) == 0
    # 2x2x3 windows of 4 elements, then a mean over 2x2x3 values.
    assert mult_adds_by_op(model, (4, 4, 3), include_pooling=True) == {
        "MaxPool": 2 * 2 * 3 * 4,
        "Mean": 2 * 2 * 3,
    }


class TwoConvs(keras.Model):
    def __init__(self):
        super().__init__()
        self.first = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
        self.second = keras.layers.Conv2D(2, 1, use_bias=False)

    def call(self, x, training=None):
        return self.second(tf.nn.relu(self.first(x)))


def test_subclassed_model_is_built_on_demand():
    model = TwoConvs()
    expected = 5 * 5 * 4 * (3 * 3 * 3) + 5 * 5 * 2 * 4
    assert count_mult_adds(model, (5, 5, 3)) == expected
    assert count_params(TwoConvs(), input_shape=(5, 5, 3)) == 3 * 3 * 3 * 4 + 4 * 2


class NestedFunction(keras.Model):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 7))

    @tf.function(autograph=False)
    def project(self, x):
        return tf.matmul(x, self.kernel)

    def call(self, x, training=None):
        return self.project(x)


def test_ops_inside_nested_tf_functions_are_counted():
    assert count_mult_adds(NestedFunction(), (3,)) == 3 * 7


def test_invalid_arguments_are_named():
    model = sequential((6,), keras.layers.Dense(4))
    with pytest.raises(ValueError, match="`model` must be a keras.Model"):
        count_mult_adds(keras.layers.Dense(3), (6,))
    for bad in [(None, 6), (0,), (6.5,), "6", 6, ()]:
        with pytest.raises(ValueError, match="`input_shape` must be"):
            count_mult_adds(model, bad)
    with pytest.raises(ValueError, match="`input_shape` must be given"):
        count_params(TwoConvs())


@pytest.mark.slow
def test_keras_nasnet_mobile_matches_the_published_figures():
    model = keras.applications.NASNetMobile(weights=None)
    assert count_params(model) == 5_326_716
    # The NASNet paper: 564M Mult-Adds at 224 px.
    assert count_mult_adds(model, (224, 224, 3)) == pytest.approx(564e6, rel=2e-3)


def test_nasnet_app_subclassed_model():
    import nasnet_app

    model = nasnet_app.NASNet(
        num_blocks=1, penultimate_filters=96, stem="cifar", stem_filters=12, classes=10
    )
    by_op = mult_adds_by_op(model, (32, 32, 3))
    assert set(by_op) == {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
    assert by_op["MatMul"] == 96 * 10
    # The stem: a 3x3 conv, 'same', 3 -> 12 channels at 32x32.
    assert by_op["Conv2D"] > 32 * 32 * 12 * 27
    assert count_params(model) == model.count_params()


@pytest.mark.slow
def test_nasnet_app_mobile_matches_the_published_figures():
    import nasnet_app

    model = nasnet_app.NASNet(
        num_blocks=4, penultimate_filters=1056, stem_filters=32, input_shape=(224, 224, 3)
    )
    assert count_params(model, input_shape=(224, 224, 3)) == 5_326_716
    assert count_mult_adds(model, (224, 224, 3)) == pytest.approx(564e6, rel=2e-3)
