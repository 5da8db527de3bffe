"""onnx.checker, strict shape inference, and an onnxruntime CPU run whose decoded
outputs must equal the numpy reference decoder applied to the model's own raw
heads (exposed as extra outputs for the check)."""

from __future__ import annotations

import os
import threading
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


def validation_timeout() -> float:
    """Seconds one validation run may take (ONNXPOSE_VALIDATE_TIMEOUT, default 120)."""
    try:
        return max(0.001, float(os.environ.get("ONNXPOSE_VALIDATE_TIMEOUT", "120")))
    except ValueError:
        return 120.0


def run_with_deadline(session, output_names, feeds, seconds: float | None = None):
    """session.run, terminated after ``seconds``: a hostile model cannot hang a build."""
    import onnxruntime as ort
    seconds = validation_timeout() if seconds is None else seconds
    run_options = ort.RunOptions()
    timer = threading.Timer(seconds, lambda: setattr(run_options, "terminate", True))
    timer.daemon = True
    timer.start()
    try:
        return session.run(output_names, feeds, run_options)
    except Exception as exc:
        if run_options.terminate:
            raise TimeoutError(f"validation run exceeded {seconds:g} s "
                               "(ONNXPOSE_VALIDATE_TIMEOUT)") from exc
        raise
    finally:
        timer.cancel()


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
    if info.io is not None:
        return validate_io_model(model, info, source, batch, seed)
    probe, head_names = with_head_outputs(model)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are raised and reported in one line, not logged
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        image = random_input(info, batch, seed)
        values = run_with_deadline(session, None, {info.input_name: image})
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0]
        raise OnnxPoseError(source, f"built model does not run in onnxruntime: {reason}") from exc
    outputs = dict(zip([o.name for o in session.get_outputs()], values))
    heads = {name.split("/")[-1]: outputs[name] for name in head_names}
    for name, value in heads.items():
        if not np.all(np.isfinite(value)):
            raise OnnxPoseError(source, f"validation failed: head {name} has NaN/Inf on a random input")
    checks = [(outputs, heads)]
    if info.multi_pose:  # random images rarely hold people: also decode synthetic ones
        checks.append(run_decoder_on_synthetic_people(model, head_names, info, batch, seed, source))
    error_px = error_score = 0.0
    poses = 0
    for decoded, raw_heads in checks:
        try:
            px, score, count = compare_with_reference(decoded, raw_heads, info)
        except ReferenceMismatch as exc:
            raise OnnxPoseError(source, f"validation failed: {exc}") from exc
        error_px, error_score, poses = max(error_px, px), max(error_score, score), poses + count
    return ValidationReport(batch, error_px, error_score, poses)


def _session(model):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def validate_io_model(model, info, source, batch: int, seed: int) -> ValidationReport:
    """``validate_model`` for models with an io stage (``validate.io_check``)."""
    from onnxpose.validate.io_check import check_io_run, decoder_info, decoder_output_names, random_feeds
    probe, head_names = with_head_outputs(model)
    extra = decoder_output_names(info) + ([info.input_name] if info.image_input else [])
    existing = {o.name for o in probe.graph.output}
    produced = {o for node in probe.graph.node for o in node.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in extra
                              if n not in existing and n in produced)
    error_px = error_score = 0.0
    poses = 0
    try:
        session = _session(probe)
    except Exception as exc:
        raise OnnxPoseError(source, f"built model does not run in onnxruntime: "
                                    f"{str(exc).strip().splitlines()[0]}") from exc
    names = [o.name for o in session.get_outputs()]
    for feeds, image_hw in random_feeds(info, random_input, batch, seed):
        try:
            outputs = dict(zip(names, run_with_deadline(session, None, feeds)))
        except Exception as exc:
            raise OnnxPoseError(source, f"built model does not run in onnxruntime: "
                                        f"{str(exc).strip().splitlines()[0]}") from exc
        heads = {name.split("/")[-1]: outputs[name] for name in head_names}
        try:
            px, score, count = check_io_run(outputs, feeds, heads, info, image_hw, info.input_name)
        except ReferenceMismatch as exc:
            raise OnnxPoseError(source, f"validation failed: {exc}") from exc
        error_px, error_score, poses = max(error_px, px), max(error_score, score), poses + count
    if info.multi_pose:
        decoded, raw = run_decoder_on_synthetic_people(model, head_names, info, batch, seed, source,
                                                       [n for n in decoder_output_names(info)
                                                        if n in produced])
        try:
            compare_with_reference({n.split("/")[-1]: v for n, v in decoded.items()}, raw,
                                   decoder_info(info))
        except ReferenceMismatch as exc:
            raise OnnxPoseError(source, f"validation failed: {exc}") from exc
    return ValidationReport(batch, error_px, error_score, poses)


def run_decoder_on_synthetic_people(model, head_names, info, batch, seed, source,
                                    output_names=None):
    """Run the model's own decoder subgraph on synthetic heads with several people."""
    import onnxruntime as ort
    from onnxpose.reference.synthetic_heads import synthetic_heads

    output_names = output_names or [o.name for o in model.graph.output
                                    if o.name not in head_names and o.name not in HEAD_TENSORS]
    decoder = subgraph_between(model, head_names, output_names)
    grid = _grid_of(model, head_names[0])
    values = synthetic_heads(seed, batch, grid_hw=grid, stride=info.output_stride)
    feeds = dict(zip(head_names, values))
    try:
        session = ort.InferenceSession(decoder.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        decoded = dict(zip(output_names, run_with_deadline(session, output_names, feeds)))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0]
        raise OnnxPoseError(source, f"built decoder does not run in onnxruntime: {reason}") from exc
    return decoded, {name.split("/")[-1]: value for name, value in feeds.items()}


def subgraph_between(model: onnx.ModelProto, input_names, output_names) -> onnx.ModelProto:
    """The nodes of ``model`` that compute ``output_names`` from ``input_names``.

    Unlike ``onnx.utils.Extractor`` this keeps the producers of tensors that a
    ``Loop`` body reads from the outer graph.
    """
    import onnx_graphsurgeon as gs
    graph = gs.import_onnx(model)
    tensors = graph.tensors()
    graph.inputs = [tensors[name] for name in input_names]
    graph.outputs = [tensors[name] for name in output_names]
    for tensor in graph.inputs:
        tensor.inputs.clear()
    graph.cleanup().toposort()
    cut = gs.export_onnx(graph)
    cut.ir_version = model.ir_version
    return cut


def _grid_of(model: onnx.ModelProto, tensor: str) -> tuple[int, int]:
    infos = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    dims = infos[tensor].type.tensor_type.shape.dim
    return dims[1].dim_value, dims[2].dim_value
