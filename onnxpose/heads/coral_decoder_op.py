"""Coral's ``PosenetDecoderOp``: detect it, read its options, cut the graph before it.

tf2onnx keeps the TFLite custom op as a node named ``TFL_PosenetDecoderOp``
with its flexbuffer options as attributes. Its three inputs are the float
heads (heatmaps, short offsets, 64-channel mid offsets); onnxpose makes those
the graph's outputs and removes the op, so a standard-op decoder can follow.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnxpose.errors import OnnxPoseError

OP_SUFFIX = "PosenetDecoderOp"
_OPTION_NAMES = ("max_detections", "score_threshold", "nms_radius", "stride")


def float32_as_written(value) -> float:
    """The shortest decimal that reads back as the same float32 (0.2, not 0.20000000298...)."""
    return float(str(np.float32(value)))


def strip_coral_decoder_op(model: onnx.ModelProto, source: str) -> dict | None:
    """Replace a PosenetDecoderOp by its inputs as outputs; returns its options (or None)."""
    nodes = [n for n in model.graph.node if n.op_type.endswith(OP_SUFFIX)]
    if not nodes:
        return None
    if len(nodes) > 1:
        raise OnnxPoseError(source, f"{len(nodes)} {OP_SUFFIX} nodes; expected one")
    node = nodes[0]
    if len(node.input) != 3:
        raise OnnxPoseError(source, f"{OP_SUFFIX} has {len(node.input)} inputs; expected 3")
    options = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    missing = [k for k in _OPTION_NAMES if k not in options]
    if missing:
        raise OnnxPoseError(source, f"{OP_SUFFIX} lacks options {', '.join(missing)}")

    consumed = {i for n in model.graph.node if n is not node for i in n.input}
    if any(o in consumed for o in node.output):
        raise OnnxPoseError(source, f"{OP_SUFFIX} outputs feed other nodes; cannot replace it")
    model.graph.node.remove(node)
    del model.graph.output[:]
    model.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in node.input)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # InferenceError: the converted graph contradicts itself
        reason = " ".join(str(exc).split())[:300]
        raise OnnxPoseError(source, f"the model's graph is inconsistent ({reason})") from exc
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    del model.graph.output[:]
    model.graph.output.extend(known.get(name, helper.make_empty_tensor_value_info(name))
                              for name in node.input)
    return {
        "max_detections": int(options["max_detections"]),
        "score_threshold": float32_as_written(options["score_threshold"]),
        "nms_radius": float32_as_written(options["nms_radius"]),
        "stride": int(options["stride"]),
        "heads": list(node.input),
    }
