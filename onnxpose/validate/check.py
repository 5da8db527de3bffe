"""onnx.checker, strict shape inference, and an onnxruntime CPU run whose decoded
outputs must equal the numpy reference decoder applied to the model's own raw
heads (exposed as extra outputs for the check)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import NORMALIZATIONS, parse_metadata
from onnxpose.validate.compare import ReferenceMismatch, compare_with_reference

HEAD_TENSORS = ("heatmaps", "short_offsets", "displacements")
_PREFIXED = {name: f"heads/{name}" for name in HEAD_TENSORS}


@dataclass
class ValidationReport:
    batch: int
    max_position_error_px: float
    max_score_error: float
    poses_compared: int


def random_input(info, batch: int, seed: int = 0) -> np.ndarray:
    """Random image batch in the model's input layout, dtype and value range."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(batch, info.input_height, info.input_width, 3))
    if info.input_layout == "NCHW":
        pixels = pixels.transpose(0, 3, 1, 2)
    if info.input_dtype == "uint8":
        return pixels.astype(np.uint8)
    scale, offset = NORMALIZATIONS[info.normalization]
    return (pixels * scale + offset).astype(np.float32)


def with_head_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` that also outputs its float NHWC heads."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    produced = {o for n in probe.graph.node for o in n.output}
    existing = {o.name for o in probe.graph.output}
    names = []
    for head in HEAD_TENSORS:
        for candidate in (_PREFIXED[head], head):
            if candidate in produced:
                names.append(candidate)
                if candidate not in existing:
                    probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(candidate))
                break
    return probe, names


def check_structure(model: onnx.ModelProto, source) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxPoseError(source, f"built model fails ONNX validation: {reason}") from exc


def validate_model(model: onnx.ModelProto, source, batch: int = 2, seed: int = 0) -> ValidationReport:
    """Raise OnnxPoseError unless ``model`` is valid and decodes like the reference."""
    import onnxruntime as ort

    check_structure(model, source)
    info = parse_metadata({p.key: p.value for p in model.metadata_props})
    probe, head_names = with_head_outputs(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        image = random_input(info, batch, seed)
        values = session.run(None, {info.input_name: image})
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0]
        raise OnnxPoseError(source, f"built model does not run in onnxruntime: {reason}") from exc
    outputs = dict(zip([o.name for o in session.get_outputs()], values))
    heads = {name.split("/")[-1]: outputs[name] for name in head_names}
    for name, value in heads.items():
        if not np.all(np.isfinite(value)):
            raise OnnxPoseError(source, f"validation failed: head {name} has NaN/Inf on a random input")
    try:
        error_px, error_score, poses = compare_with_reference(outputs, heads, info)
    except ReferenceMismatch as exc:
        raise OnnxPoseError(source, f"validation failed: {exc}") from exc
    return ValidationReport(batch, error_px, error_score, poses)
