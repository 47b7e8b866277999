"""The operations of a NASNet cell, one Keras layer per (block, side).

Every operation maps its input to `filters` channels (projecting with a 1x1
convolution where needed, as TF-Slim does), so any genotype composes. Each
operation layer exposes its weighted sub-layers under stable keys
(`sep1`, `bn1`, `proj_conv`, ...) for weight conversion.

What an operation is (its kind, kernel size, dilation, pool kind) comes from
`nasnet_app.op_registry`; this module holds one builder per kind.
"""

import keras
import tensorflow as tf
from keras import layers

from nasnet_app.op_registry import get_op

STRIDED_POOL_PADDINGS = ("same", "zeros")


def batch_norm(name, momentum, epsilon):
    return BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)


@keras.saving.register_keras_serializable(package="nasnet_app")
class BatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel.

    Same weights, same moving-average rule, same function (within float
    rounding). Keras' own layer spells the normalization out in elementwise
    ops; the fused op is one kernel in training and, at inference, lets
    TensorFlow's graph optimizer fold it into the convolution before it. Inputs
    other than 4-D channels-last float32 ones fall back to Keras' layer. The class keeps
    Keras' name: `.keras` files locate a sub-layer's weights by its class name.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels], tf.float32)
        offset = self.beta if self.center else tf.zeros([channels], tf.float32)
        mean = tf.convert_to_tensor(self.moving_mean)
        variance = tf.convert_to_tensor(self.moving_variance)
        if training and self.trainable:
            y, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=tf.zeros_like(mean),
                variance=tf.ones_like(variance), epsilon=self.epsilon, is_training=True,
            )  # fmt: skip
            # The kernel returns the unbiased variance; Keras averages the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            batch_variance = batch_variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(mean * self.momentum + batch_mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                variance * self.momentum + batch_variance * (1.0 - self.momentum)
            )
        else:
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=mean, variance=variance,
                epsilon=self.epsilon, is_training=False,
            )  # fmt: skip
        return tf.cast(y, self.compute_dtype)

    def _fusable(self, inputs, mask):
        # Under bf16/fp16 policies TensorFlow's CPU graph optimizer does not fold
        # the fused op into the convolution and the kernel alone is slower than
        # Keras' float32 arithmetic (measured: README, Benchmarks).
        return (
            mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.compute_dtype == "float32"
        )


def conv(filters, kernel_size, name, strides=1, dilation_rate=1):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _same_padding(size, kernel, stride):
    """TF's SAME padding amounts (before, after) for one spatial dimension."""
    out = (size + stride - 1) // stride
    total = (out - 1) * stride + kernel - size
    total = max(total, 0) if isinstance(total, int) else tf.maximum(total, 0)
    return total // 2, total - total // 2


def zero_pad_same(x, kernel, stride):
    """Pads with zeros exactly where a SAME convolution would pad."""
    # Static sizes give a constant padding that graph optimizers can fuse.
    height, width = (
        size if size is not None else tf.shape(x)[axis]
        for axis, size in ((1, x.shape[1]), (2, x.shape[2]))
    )
    top, bottom = _same_padding(height, kernel, stride)
    left, right = _same_padding(width, kernel, stride)
    return tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])


def _reduced(size, strides):
    """Spatial size after a SAME-padded stride (None stays None)."""
    return None if size is None else -(-size // strides)


def _pad_to(x, reference):
    """Pads `x` with zeros at the bottom and right to `reference`'s height and width."""
    if None not in x.shape[1:3] and x.shape[1:3] == reference.shape[1:3]:
        return x
    size, target = tf.shape(x), tf.shape(reference)
    return tf.pad(x, [[0, 0], [0, target[1] - size[1]], [0, target[2] - size[2]], [0, 0]])


def build_sequence(parts, input_shape):
    """Builds layers applied one after another from the input shape (no tracing)."""
    shape = tuple(input_shape)
    for layer in parts:
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


@keras.saving.register_keras_serializable(package="nasnet_app")
class Pool(layers.Layer):
    """A 3x3 (5x5, 7x7) max or average pooling with a choice of border rule.

    Args:
        kind: `"max"` or `"avg"`.
        pool_size: window size.
        strides: 1 or 2.
        padding: `"same"` (TF SAME: padded cells are ignored, as in TF-Slim) or
            `"zeros"` (pad with zeros that enter the window, as
            keras.applications does for its stride-2 reduction pools).
    """

    def __init__(self, kind, pool_size, strides=1, padding="same", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("max", "avg"):
            raise ValueError(f"`kind` must be 'max' or 'avg'. Received: kind={kind!r}")
        if padding not in STRIDED_POOL_PADDINGS:
            raise ValueError(f"`padding` must be 'same' or 'zeros'. Received: padding={padding!r}")
        self.kind, self.pool_size, self.strides, self.padding = kind, pool_size, strides, padding

    def call(self, x):
        pool = tf.nn.max_pool2d if self.kind == "max" else tf.nn.avg_pool2d
        if self.padding == "zeros":
            x = zero_pad_same(x, self.pool_size, self.strides)
            return pool(x, self.pool_size, self.strides, "VALID")
        return pool(x, self.pool_size, self.strides, "SAME")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        out = [None if s is None else -(-s // self.strides) for s in (height, width)]
        return (batch, out[0], out[1], channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind, pool_size=self.pool_size, strides=self.strides, padding=self.padding
        )
        return config


@keras.saving.register_keras_serializable(package="nasnet_app")
class Operation(layers.Layer):
    """One operation of a block, mapping `in_channels` to `filters` channels.

    Args:
        op: a name from `nasnet_app.op_registry.OPS`.
        filters: output channels.
        in_channels: channels of the input state.
        strides: 2 for ops on a reduction cell's inputs, else 1.
        strided_pool_padding: border rule of stride-2 pools (see `Pool`).
        bn_momentum, bn_epsilon: BatchNormalization settings.
    """

    def __init__(
        self,
        op,
        filters,
        in_channels,
        strides=1,
        strided_pool_padding="same",
        bn_momentum=0.9997,
        bn_epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.op_spec = get_op(op)
        self.op, self.filters, self.in_channels, self.strides = op, filters, in_channels, strides
        self.strided_pool_padding = strided_pool_padding
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.relu_first = True
        self.parts = self._make_parts()

    def _bn(self, name):
        return batch_norm(name, self.bn_momentum, self.bn_epsilon)

    def _make_parts(self):
        return getattr(self, f"_make_{self.op_spec.kind}")()

    def _projection(self, strides=1):
        return {
            "proj_conv": conv(self.filters, 1, "proj_conv", strides),
            "proj_bn": self._bn("proj_bn"),
        }

    def _make_sep_conv(self):
        kernel = self.op_spec.kernel_size
        return {
            "sep1": self._separable(kernel, self.strides, "sep1"),
            "bn1": self._bn("bn1"),
            "sep2": self._separable(kernel, 1, "sep2"),
            "bn2": self._bn("bn2"),
        }

    def _make_pool(self):
        padding = self.strided_pool_padding if self.strides > 1 else "same"
        pool = Pool(self.op_spec.pool, self.op_spec.kernel_size, self.strides, padding, name="pool")
        parts = {"pool": pool}
        if self.in_channels != self.filters:
            parts.update(self._projection())
        self.relu_first = False
        return parts

    def _make_identity(self):
        if self.strides > 1 or self.in_channels != self.filters:
            return self._projection(self.strides)
        return {}

    def _make_none(self):
        return {}

    def _make_dil_conv(self):
        # TF cannot combine stride and dilation; subsample after a stride-1 conv.
        dil = self._separable(
            self.op_spec.kernel_size, 1, "dil", dilation_rate=self.op_spec.dilation
        )
        return {"dil": dil, "bn": self._bn("bn")}

    def _make_factorized_conv(self):
        k, strides = self.op_spec.kernel_size, self.strides
        return {
            "conv1": conv(self.filters, (1, k), "conv1", (1, strides)),
            "conv2": conv(self.filters, (k, 1), "conv2", (strides, 1)),
            "bn": self._bn("bn"),
        }

    def _make_conv(self):
        k = self.op_spec.kernel_size
        return {"conv": conv(self.filters, k, "conv", self.strides), "bn": self._bn("bn")}

    def _separable(self, kernel, strides, name, dilation_rate=1):
        return layers.SeparableConv2D(
            self.filters,
            kernel,
            strides=strides,
            padding="same",
            dilation_rate=dilation_rate,
            use_bias=False,
            name=name,
        )

    def call(self, x, training=None):
        kind = self.op_spec.kind
        if kind == "none":
            return self._zeros(x)
        if kind == "sep_conv":
            for index in ("1", "2"):
                x = tf.nn.relu(x)
                x = self.parts["sep" + index](x)
                x = self.parts["bn" + index](x, training=training)
            return x
        if not self.parts:
            return x
        if self.relu_first:
            x = tf.nn.relu(x)
        for layer in self.parts.values():
            if isinstance(layer, layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        if kind == "dil_conv" and self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        return x

    def build(self, input_shape):
        # Shapes follow from the op's parameters, so the parts are built here
        # instead of by tracing `call` (the slow path of Keras' symbolic call).
        build_sequence(self.parts.values(), input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        s = self.strides
        return (batch, _reduced(height, s), _reduced(width, s), self.filters)

    def _zeros(self, x):
        x = x[:, :: self.strides, :: self.strides, :1]
        return tf.tile(tf.zeros_like(x), [1, 1, 1, self.filters])

    def get_config(self):
        config = super().get_config()
        config.update(
            op=self.op,
            filters=self.filters,
            in_channels=self.in_channels,
            strides=self.strides,
            strided_pool_padding=self.strided_pool_padding,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config


@keras.saving.register_keras_serializable(package="nasnet_app")
class FactorizedReduction(layers.Layer):
    """Halves the spatial size with two shifted 1x1 paths (TF-Slim / keras.applications).

    With `strides=1` it is a plain 1x1 convolution and BN (TF-Slim's
    `factorized_reduction` at stride 1). `relu` applies ReLU first.
    """

    def __init__(
        self, filters, strides=2, relu=True, bn_momentum=0.9997, bn_epsilon=1e-3, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters, self.strides, self.relu = filters, strides, relu
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        bn = batch_norm("bn", bn_momentum, bn_epsilon)
        if strides == 1:
            self.parts = {"conv": conv(filters, 1, "conv"), "bn": bn}
        else:
            # The 1x1 convolutions subsample themselves (a strided 1x1 conv reads
            # exactly the pixels `x[:, ::s, ::s]` would keep): a strided slice
            # before them was the slowest op of NASNetMobile's inference on CPU.
            half = filters // 2
            self.parts = {
                "path1_conv": conv(half, 1, "path1_conv", strides),
                "path2_conv": conv(filters - half, 1, "path2_conv", strides),
                "bn": bn,
            }

    def call(self, x, training=None):
        if self.relu:
            x = tf.nn.relu(x)
        if self.strides == 1:
            return self.parts["bn"](self.parts["conv"](x), training=training)
        path1 = self.parts["path1_conv"](x)
        # Path 2 reads the pixels one step down and right; where that runs past an
        # odd border, TF-Slim pads with zeros, and a bias-free 1x1 conv of zeros is
        # zero, so padding its output is the same and cheaper.
        path2 = self.parts["path2_conv"](x[:, 1:, 1:, :])
        path2 = _pad_to(path2, path1)
        return self.parts["bn"](tf.concat([path1, path2], axis=-1), training=training)

    def build(self, input_shape):
        if self.strides == 1:
            build_sequence(self.parts.values(), input_shape)
        else:
            for name in ("path1_conv", "path2_conv"):
                self.parts[name].build(input_shape)
            self.parts["bn"].build(self.compute_output_shape(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        s = self.strides
        return (batch, _reduced(height, s), _reduced(width, s), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            relu=self.relu,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config
