"""Parameter and Mult-Add counts of Keras models, read from the traced TensorFlow graph.

`count_mult_adds` traces `model(x, training=False)` for one image as a
`tf.function` and walks the ops of the graph (nested function calls too), so it
works for functional, sequential and subclassed models (`nasnet_app.NASNet`)
alike. What counts as one multiply-add:

* `Conv2D`: output positions x kernel height x kernel width x input channels
  (per group) x output channels;
* `DepthwiseConv2dNative`: output positions x kernel area x output channels
  (separable convs are a depthwise conv plus a 1x1 `Conv2D`);
* `MatMul` / `BatchMatMul*` (dense layers): M x N x K.

Dilated convs that TensorFlow runs on a `SpaceToBatchND` grid are counted at
the true (cropped) output size. Bias additions, batch norm (folded into the
convolution at inference), activations and element-wise adds are not counted,
as in the NASNet paper's Mult-Add figures. Pooling (`AvgPool`, `MaxPool`,
global `Mean` / `Max`) is not counted either unless `include_pooling=True`,
which adds one operation per input element of every pooling window.

Example:

>>> import keras
>>> from nasnet_app.evaluate.flops import count_mult_adds, count_params
>>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
>>> count_params(model), count_mult_adds(model, (8, 8, 3))
(112, 3888)
"""

import math
import numbers

import keras
import tensorflow as tf

CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
POOL_OPS = ("AvgPool", "MaxPool")
GLOBAL_POOL_OPS = ("Mean", "Max")
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
CONTROL_FLOW_OPS = ("If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase")


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")


def count_params(model, trainable_only=False, input_shape=None):
    """Number of weight values of a Keras model.

    Args:
        model: a `keras.Model`.
        trainable_only: count only trainable weights (BatchNorm moving mean
            and variance are left out).
        input_shape: shape of one example without the batch dimension; needed
            only for a model that is not built yet, which is then called once
            on zeros of that shape.

    Returns:
        An `int`. With `trainable_only=False` it equals `model.count_params()`,
        the figure keras.applications publishes (5,326,716 for NASNetMobile).

    Example:

    >>> import keras
    >>> count_params(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    8
    """
    _check_model(model)
    if not model.built:
        if input_shape is None:
            raise ValueError(
                "`input_shape` must be given for a model that is not built yet (or build "
                f"the model first). Received: input_shape=None for model {model.name!r}"
            )
        _build(model, _check_input_shape(input_shape))
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(w.shape) for w in weights))


def _build(model, shape):
    model(tf.zeros((1,) + shape), training=False)


def _check_input_shape(input_shape):
    sizes = input_shape if isinstance(input_shape, (tuple, list)) else None
    if not sizes or not all(_is_positive_int(size) for size in sizes):
        raise ValueError(
            "`input_shape` must be the shape of one example without the batch dimension, "
            f"with known positive sizes, e.g. (224, 224, 3). Received: input_shape={input_shape!r}"
        )
    return tuple(int(size) for size in sizes)


def _is_positive_int(size):
    return isinstance(size, numbers.Integral) and not isinstance(size, bool) and size > 0


def _traced_graph(model, shape):
    @tf.autograph.experimental.do_not_convert
    def forward(images):
        return model(images, training=False)

    if not model.built:
        _build(model, shape)  # a traced function may not create the variables
    return tf.function(forward).get_concrete_function(tf.TensorSpec((1,) + shape)).graph


def _static_dims(tensor, op):
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise ValueError(
            f"Cannot count Mult-Adds of op {op.name!r} ({op.type}): its shape {tensor.shape} "
            "is not fully known. Give `input_shape` concrete sizes."
        )
    return dims


def _output_positions(op):
    """Batch x height x width of a conv output, cropped when it feeds BatchToSpaceND."""
    for consumer in op.outputs[0].consumers():
        if consumer.type == "BatchToSpaceND":
            return math.prod(_static_dims(consumer.outputs[0], consumer)[:3])
    return math.prod(_static_dims(op.outputs[0], op)[:3])


def _conv_mult_adds(op):
    # Conv2D kernels are (h, w, input channels per group, output channels) and
    # depthwise kernels (h, w, channels, multiplier): in both, the product of
    # the last two is what each output position multiplies per kernel tap.
    kernel_h, kernel_w, channels, per_channel = _static_dims(op.inputs[1], op)
    return _output_positions(op) * kernel_h * kernel_w * channels * per_channel


def _matmul_mult_adds(op):
    out = _static_dims(op.outputs[0], op)
    left = _static_dims(op.inputs[0], op)
    transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
    inner = left[-2] if transposed else left[-1]
    return math.prod(out) * inner


def _pool_ops(op):
    if op.type in POOL_OPS:
        window = math.prod(op.get_attr("ksize"))
        return math.prod(_static_dims(op.outputs[0], op)) * window
    return math.prod(_static_dims(op.inputs[0], op))


def _nested_graph(graph, op):
    name = op.get_attr("f").name
    function = graph._get_function(name)  # noqa: SLF001 - the one way to reach call bodies
    if function is None or not hasattr(function, "graph"):
        raise ValueError(f"Cannot open the function {name!r} called by op {op.name!r}.")
    return function.graph


def _mult_adds_by_op(graph, include_pooling, totals):
    for op in graph.get_operations():
        if op.type in CONV_OPS:
            totals[op.type] = totals.get(op.type, 0) + _conv_mult_adds(op)
        elif op.type in MATMUL_OPS:
            totals[op.type] = totals.get(op.type, 0) + _matmul_mult_adds(op)
        elif include_pooling and op.type in POOL_OPS + GLOBAL_POOL_OPS:
            if op.type in GLOBAL_POOL_OPS and len(_static_dims(op.inputs[0], op)) != 4:
                continue
            totals[op.type] = totals.get(op.type, 0) + _pool_ops(op)
        elif op.type in CALL_OPS:
            _mult_adds_by_op(_nested_graph(graph, op), include_pooling, totals)
        elif op.type in CONTROL_FLOW_OPS:
            raise ValueError(
                f"Cannot count Mult-Adds through the control-flow op {op.name!r} ({op.type}): "
                "the work it does depends on run-time values."
            )
    return totals


def mult_adds_by_op(model, input_shape, include_pooling=False):
    """Mult-Adds of one example, split by TensorFlow op type.

    Args:
        model: a `keras.Model` taking one image-like input.
        input_shape: shape of one example without the batch dimension, e.g.
            `(224, 224, 3)`; every size must be known.
        include_pooling: also count pooling windows (see the module docstring).

    Returns:
        A dict `{op type: count}`, e.g. `{"Conv2D": ..., "MatMul": ...}`.
    """
    _check_model(model)
    shape = _check_input_shape(input_shape)
    totals = _mult_adds_by_op(_traced_graph(model, shape), include_pooling, {})
    return {op_type: int(count) for op_type, count in sorted(totals.items())}


def count_mult_adds(model, input_shape, include_pooling=False):
    """Multiply-adds of one forward pass (inference, batch of one).

    Args:
        model: a `keras.Model` (functional, sequential or subclassed) taking
            one image-like input.
        input_shape: shape of one example without the batch dimension, e.g.
            `(224, 224, 3)`; every size must be known.
        include_pooling: also count pooling windows (see the module docstring).

    Returns:
        An `int`: convolution and dense-layer Mult-Adds, the figure the NASNet
        paper reports (564M for NASNet-A Mobile at 224 px).

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    >>> count_mult_adds(model, (5,))
    15
    """
    return sum(mult_adds_by_op(model, input_shape, include_pooling).values())
