"""Shapes, dtypes and producers of tensors in an onnx.ModelProto."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: np.dtype | None
    shape: tuple  # ints for static dims, str/None for dynamic ones

    @property
    def rank(self) -> int:
        return len(self.shape)

    def describe(self) -> str:
        dims = "x".join(str(d) if isinstance(d, int) else "?" for d in self.shape)
        return f"{self.name} [{dims}]"


def _np_dtype(elem_type: int) -> np.dtype | None:
    """numpy dtype of an ONNX element type; None for unknown or unrepresentable ones."""
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def tensor_info(value_info: onnx.ValueInfoProto) -> TensorInfo:
    ttype = value_info.type.tensor_type
    dtype = None
    if ttype.elem_type:
        dtype = _np_dtype(ttype.elem_type)
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                  for d in ttype.shape.dim) if ttype.HasField("shape") else ()
    return TensorInfo(value_info.name, dtype, shape)


def graph_inputs(model: onnx.ModelProto) -> list[TensorInfo]:
    initializers = {i.name for i in model.graph.initializer}
    return [tensor_info(v) for v in model.graph.input if v.name not in initializers]


def graph_outputs(model: onnx.ModelProto) -> list[TensorInfo]:
    """Graph outputs, with shapes completed by ONNX shape inference where missing."""
    outputs = [tensor_info(v) for v in model.graph.output]
    if all(o.shape and o.dtype is not None for o in outputs):
        return outputs
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return outputs
    known = {v.name: tensor_info(v) for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    return [known.get(o.name, o) if not o.shape or o.dtype is None else o for o in outputs]


class Producers:
    """Which node produces each tensor, and constant values of initializers."""

    def __init__(self, model: onnx.ModelProto):
        self.node_of = {out: node for node in model.graph.node for out in node.output}
        self.initializers = {i.name: i for i in model.graph.initializer}
        for node in model.graph.node:  # Constant nodes count as initializers
            if node.op_type == "Constant" and node.attribute:
                attr = node.attribute[0]
                if attr.name == "value":
                    self.initializers[node.output[0]] = attr.t

    def constant(self, name: str):
        """The value of a constant tensor; None if ``name`` is not one or cannot be read."""
        tensor = self.initializers.get(name)
        if tensor is None:
            return None
        try:
            return numpy_helper.to_array(tensor)
        except Exception:  # unknown data type, wrong data size, external data
            return None
