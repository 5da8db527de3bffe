"""Find the scale and zero point of a quantized (uint8/int8) head.

tf2onnx turns a quantized TFLite output into ``QuantizeLinear`` followed by
layout ops (Transpose, Reshape, Concat, ...). Walking back through those ops to
the ``QuantizeLinear`` nodes gives the output's quantization parameters, so the
head can be dequantized inside the graph with exactly TFLite's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxpose.heads.tensors import Producers

# Ops that move or copy quantized values without changing them.
_LAYOUT_OPS = {"Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Concat", "Flatten"}


@dataclass(frozen=True)
class Quantization:
    scale: float
    zero_point: int
    dtype: str  # "uint8" or "int8"


def find_quantization(producers: Producers, tensor: str, _depth: int = 0) -> Quantization | None:
    """(scale, zero_point) of a per-tensor-quantized tensor, or None if not found."""
    node = producers.node_of.get(tensor)
    if node is None or _depth > 32:
        return None
    if node.op_type == "QuantizeLinear":
        scale = producers.constant(node.input[1])
        zero_point = producers.constant(node.input[2]) if len(node.input) > 2 else np.uint8(0)
        if scale is None or zero_point is None or scale.size != 1 or zero_point.size != 1:
            return None  # per-channel output quantization is not a PoseNet head
        return Quantization(float(scale.reshape(())), int(zero_point.reshape(())),
                            str(zero_point.dtype))
    if node.op_type not in _LAYOUT_OPS:
        return None
    inputs = node.input if node.op_type == "Concat" else node.input[:1]
    found = {find_quantization(producers, i, _depth + 1) for i in inputs}
    return found.pop() if len(found) == 1 else None  # Concat parts must agree
