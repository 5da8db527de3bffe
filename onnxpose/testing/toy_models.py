"""Small synthetic models for tests: PoseNet-like ONNX graphs and a Keras classifier.

``toy_posenet_onnx`` makes a tiny fully convolutional "PoseNet" directly with
onnx.helper: each head is a 1x1 convolution of the input with its own stride,
so heads can be given any channel count, grid, layout or dtype, including the
broken variants that head discovery must refuse.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _conv_head(name: str, channels: int, stride: int, layout: str, rng, nodes, inits,
               source: str, dtype: str):
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (channels, 3, 1, 1)).astype(np.float32),
                                     f"{name}_w")
    inits.append(weight)
    conv_out = f"{name}_nchw" if layout == "NHWC" or dtype != "float32" else name
    nodes.append(helper.make_node("Conv", [source, weight.name], [conv_out],
                                  strides=[stride, stride], kernel_shape=[1, 1]))
    out = conv_out
    if layout == "NHWC":
        out = f"{name}_nhwc" if dtype != "float32" else name
        nodes.append(helper.make_node("Transpose", [conv_out], [out], perm=[0, 2, 3, 1]))
    if dtype != "float32":
        scale = numpy_helper.from_array(np.array(0.05, np.float32), f"{name}_scale")
        zero = numpy_helper.from_array(np.array(128 if dtype == "uint8" else 0,
                                                dtype=np.dtype(dtype)), f"{name}_zero_point")
        inits += [scale, zero]
        nodes.append(helper.make_node("QuantizeLinear", [out, scale.name, zero.name], [name]))


def toy_posenet_onnx(input_hw=(65, 65), heads=None, layout="NHWC", head_dtype="float32",
                     input_dtype="float32", seed=0, batch=1) -> onnx.ModelProto:
    """A tiny PoseNet-like model.

    ``heads``: list of (output name, channels, stride); default heatmaps (17),
    short offsets (34) and displacements (64), all at stride 16.
    ``head_dtype``: float32, uint8 or int8 (quantized heads via QuantizeLinear).
    """
    rng = np.random.default_rng(seed)
    heads = heads or [("heatmaps", 17, 16), ("offsets", 34, 16), ("displacements", 64, 16)]
    h, w = input_hw
    in_shape = [batch, h, w, 3] if layout == "NHWC" else [batch, 3, h, w]
    elem = TensorProto.UINT8 if input_dtype == "uint8" else TensorProto.FLOAT
    nodes, inits = [], []
    source = "image"
    if input_dtype == "uint8":
        nodes.append(helper.make_node("Cast", [source], ["image_float"], to=TensorProto.FLOAT))
        source = "image_float"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [source], ["image_nchw"], perm=[0, 3, 1, 2]))
        source = "image_nchw"
    outputs = []
    for name, channels, stride in heads:
        _conv_head(name, channels, stride, layout, rng, nodes, inits, source, head_dtype)
        grid = (math.ceil(h / stride), math.ceil(w / stride))
        shape = [batch, *grid, channels] if layout == "NHWC" else [batch, channels, *grid]
        out_type = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8,
                    "int8": TensorProto.INT8}[head_dtype]
        outputs.append(helper.make_tensor_value_info(name, out_type, shape))
    graph = helper.make_graph(nodes, "toy_posenet",
                              [helper.make_tensor_value_info("image", elem, in_shape)],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def keras_classifier_savedmodel(directory) -> None:
    """A small Keras image classifier (not a pose model) saved as a TF SavedModel."""
    import tensorflow as tf
    inputs = tf.keras.Input((64, 64, 3))
    x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax")(x)
    tf.keras.Model(inputs, outputs).export(str(directory), verbose=False)
