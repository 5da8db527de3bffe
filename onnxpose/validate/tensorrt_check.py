"""A static TensorRT-compatibility check of a built graph (no TensorRT needed).

Checks every node (subgraphs included) against TensorRT 10's ONNX parser support list,
onnx-tensorrt ``docs/operators.md`` (https://github.com/onnx/onnx-tensorrt/blob/release/10.0/docs/operators.md:
"TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20"; the
op matrix and restrictions below were read from that file's stored versions, the
8.5/10.x rows for the ops onnxpose uses, and the TensorRT 10 notes "UINT8 is only
supported as network input or output tensor types"), plus the layer limits of
TensorRT 10's developer guide that the parser enforces:

* ``TopK``: ``K`` must be an initializer (a constant), K <= 3840;
* ``MaxPool``/``AveragePool``: 2-D or 3-D only, no ``Indices`` output;
* ``Loop``: scan outputs must have a static length (trip count a constant);
* ``If``: branch outputs broadcastable, names distinct (checked: names);
* ``CumSum``: ``axis`` an initializer; ``Slice``/``Squeeze``/``Unsqueeze``: ``axes``
  initializers; ``DequantizeLinear``: zero point 0 (INT8 quantization);
* ``IsInf`` is not supported; UINT8 only at network inputs and outputs;
* INT64: operators.md's data-type note, "TensorRT will attempt to cast down INT64 to
  INT32 ... where possible. If not possible, TensorRT will throw an error" (the parser
  clamps INT64 weights outside the INT32 range, with a warning). So onnxpose's index
  arithmetic may stay int64 (ONNX's TopK, Shape, NonZero and ArgMax give int64 anyway), but
  every int64 constant must fit in INT32, except ``Slice`` starts/ends/steps, where
  clamping is what a bound past the end means.

``check(model)`` returns a list of one-line problems (empty: passes). The list is data
(``SUPPORTED_OPS``, ``RULES``), so a newer parser is one edit away.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper

#: TensorRT 10.0 parser version this list was checked against, and its opset range.
TENSORRT_VERSION = "10.0"
MAX_OPSET = 20
SOURCE = "https://github.com/onnx/onnx-tensorrt/blob/release/10.0/docs/operators.md"
TOPK_MAX_K = 3840

#: Ops supported by the TensorRT 10 ONNX parser (a subset of the matrix: the ops any
#: onnxpose graph or PoseNet backbone can contain, and the few that it lists as N).
SUPPORTED_OPS = frozenset("""
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat Constant
ConstantOfShape Conv ConvTranspose CumSum DepthToSpace DequantizeLinear Div Equal Erf Exp
Expand Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool GlobalMaxPool
Greater GreaterOrEqual HardSigmoid HardSwish Identity If IsNaN LeakyRelu Less LessOrEqual
Log Loop MatMul Max MaxPool Mean Min Mod Mul Neg NonZero Not OneHot Or Pad Pow PRelu
QuantizeLinear Range Reciprocal ReduceL1 ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare Relu Reshape Resize Round ScatterElements ScatterND Shape Sigmoid
Sign Size Slice Softmax Softplus SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile TopK
Transpose Trilu Unsqueeze Where Xor
""".split())
#: Listed as not supported (N) in the matrix.
UNSUPPORTED_OPS = frozenset("IsInf Hardmax Unique Compress ConcatFromSequence SequenceAt "
                            "SequenceConstruct SplitToSequence MaxUnpool".split())
#: input index that must be an initializer (constant), per op
#: int64 constants that may lie outside INT32 (clamping keeps their meaning)
CLAMPED_INPUTS = {"Slice": (1, 2, 4)}
INT32_RANGE = (-(2 ** 31), 2 ** 31 - 1)
CONSTANT_INPUTS = {"TopK": (1, "K"), "CumSum": (1, "axis"), "Slice": (3, "axes"),
                   "Squeeze": (1, "axes"), "Unsqueeze": (1, "axes"),
                   "Loop": (0, "trip count (static scan output length)")}


def _constants(graph, outer: dict) -> dict:
    values = dict(outer)
    for init in graph.initializer:
        values[init.name] = numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _check_graph(graph, outer: dict, problems: list, top: bool):
    constants = _constants(graph, outer)
    io = {v.name for v in graph.input} | {v.name for v in graph.output} if top else set()
    for value in list(graph.value_info) + ([] if top else list(graph.input)):
        if value.type.tensor_type.elem_type == onnx.TensorProto.UINT8 and value.name not in io:
            problems.append(f"{value.name}: UINT8 tensor inside the network")
    for node in graph.node:
        where = f"{node.op_type} {node.name}"
        if node.op_type in UNSUPPORTED_OPS or node.op_type not in SUPPORTED_OPS:
            problems.append(f"{where}: op not supported by TensorRT {TENSORRT_VERSION}'s parser")
        for index, name in enumerate(node.input):
            value = constants.get(name)
            if value is None or value.dtype.name != "int64" or not value.size or \
                    index in CLAMPED_INPUTS.get(node.op_type, ()):
                continue
            if value.min() < INT32_RANGE[0] or value.max() > INT32_RANGE[1]:
                problems.append(f"{where}: int64 constant {name} outside the INT32 range")
        if node.op_type in CONSTANT_INPUTS:
            index, what = CONSTANT_INPUTS[node.op_type]
            if len(node.input) > index and node.input[index] and \
                    node.input[index] not in constants:
                problems.append(f"{where}: {what} must be an initializer")
        if node.op_type == "TopK" and len(node.input) > 1 and node.input[1] in constants:
            k = int(constants[node.input[1]].reshape(-1)[0])
            if k > TOPK_MAX_K:
                problems.append(f"{where}: K = {k} > {TOPK_MAX_K}")
        if node.op_type in ("MaxPool", "AveragePool"):
            kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [])
            if len(kernel) not in (2, 3):
                problems.append(f"{where}: {len(kernel)}-D pooling (2-D or 3-D only)")
            if len(node.output) > 1 and node.output[1]:
                problems.append(f"{where}: Indices output")
        if node.op_type == "DequantizeLinear" and len(node.input) > 2 and \
                node.input[2] in constants and constants[node.input[2]].any() and \
                constants[node.input[2]].dtype.name != "uint8":
            problems.append(f"{where}: nonzero zero point")
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _check_graph(attr.g, constants, problems, False)


def check(model: onnx.ModelProto) -> list[str]:
    """One-line problems that TensorRT 10's ONNX parser would refuse (empty: passes)."""
    problems: list[str] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset > MAX_OPSET:
        problems.append(f"opset {opset} > {MAX_OPSET} (TensorRT {TENSORRT_VERSION})")
    _check_graph(model.graph, {}, problems, True)
    return problems
