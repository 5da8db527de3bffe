"""A cheap look at a source model before converting it: Coral's op, input type and size.

Reads the TFLite flatbuffer (or the ONNX protobuf) directly, without TensorFlow or tf2onnx,
so that option conflicts are refused in milliseconds instead of after a conversion. Any
surprise gives "unknown" (None) fields: the conversion then reports the real problem.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

from onnxpose.convert.detect import detect_format

CORAL_OP_NAME = b"PosenetDecoderOp"
# TFLite TensorType enum values onnxpose cares about
_TFLITE_TYPES = {0: "float32", 1: "float16", 3: "uint8", 9: "int8"}


@dataclass(frozen=True)
class Peek:
    format: str
    coral_op: bool | None = None  # None: cannot tell without converting
    input_dtype: str | None = None
    input_shape: tuple | None = None  # ints; None for a dynamic dimension


def _u32(data, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 4], "little")


def _field(data, table: int, index: int) -> int | None:
    vtable = table - int.from_bytes(data[table:table + 4], "little", signed=True)
    size = int.from_bytes(data[vtable:vtable + 2], "little")
    slot = 4 + 2 * index
    if slot + 2 > size:
        return None
    offset = int.from_bytes(data[vtable + slot:vtable + slot + 2], "little")
    return table + offset if offset else None


def _vector(data, field: int) -> tuple[int, int]:
    start = field + _u32(data, field)
    count = _u32(data, start)
    if start + 4 + 4 * count > len(data):
        raise ValueError("vector past the end of the file")
    return start + 4, count


def _ints(data, table: int, index: int) -> list[int] | None:
    field = _field(data, table, index)
    if field is None:
        return None
    start, count = _vector(data, field)
    return [int.from_bytes(data[start + 4 * i:start + 4 * i + 4], "little", signed=True)
            for i in range(count)]


def _tflite_input(data) -> tuple[str | None, tuple | None]:
    subgraphs_start, count = _vector(data, _field(data, _u32(data, 0), 2))  # Model.subgraphs
    if count < 1:
        return None, None
    subgraph = subgraphs_start + _u32(data, subgraphs_start)
    inputs = _ints(data, subgraph, 1)  # SubGraph.inputs
    if not inputs or len(inputs) != 1:
        return None, None
    tensors_start, tensor_count = _vector(data, _field(data, subgraph, 0))  # SubGraph.tensors
    if not 0 <= inputs[0] < tensor_count:
        return None, None
    element = tensors_start + 4 * inputs[0]
    tensor = element + _u32(data, element)
    type_field = _field(data, tensor, 1)  # Tensor.type (absent: FLOAT32)
    dtype = _TFLITE_TYPES.get(data[type_field] if type_field is not None else 0)
    shape = _ints(data, tensor, 7) or _ints(data, tensor, 0)  # shape_signature, else shape
    return dtype, tuple(d if d > 0 else None for d in shape) if shape else None


def _peek_tflite(path: Path) -> Peek:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        coral = data.find(CORAL_OP_NAME) >= 0
        try:
            dtype, shape = _tflite_input(data)
        except Exception:
            dtype, shape = None, None
    return Peek("tflite", coral, dtype, shape)


def _peek_onnx(path: Path) -> Peek:
    import onnx

    from onnxpose.heads.tensors import graph_inputs
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return Peek("onnx")
    coral = any(n.op_type.endswith(CORAL_OP_NAME.decode()) for n in model.graph.node)
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        return Peek("onnx", coral)
    info = inputs[0]
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in info.shape)
    return Peek("onnx", coral, str(info.dtype) if info.dtype is not None else None, shape)


def peek_source(path) -> Peek:
    """What can be known about ``path`` without converting it (raises for a missing file)."""
    fmt = detect_format(path)
    try:
        if fmt == "tflite":
            return _peek_tflite(Path(path))
        if fmt == "onnx":
            return _peek_onnx(Path(path))
    except Exception:  # best effort: the conversion reports what is wrong with the file
        return Peek(fmt)
    return Peek(fmt)
