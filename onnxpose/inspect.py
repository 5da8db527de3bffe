"""``onnxpose inspect``: what a model is, before or after ``build``."""

from __future__ import annotations

import os
from collections import Counter

from onnxpose.errors import OnnxPoseError, require_extra

# without the build extra: one line saying what to install, not an ImportError traceback
require_extra("build", ("tf2onnx", "tensorflow"), "onnxpose inspect")

from onnxpose.convert import convert_to_onnx  # noqa: E402
from onnxpose.heads import HeadOverrides, locate_heads, strip_coral_decoder_op
from onnxpose.heads.locate import set_input_size
from onnxpose.heads.tensors import TensorInfo, graph_inputs, graph_outputs
from onnxpose.metadata import parse_metadata


def tensor_dict(info: TensorInfo) -> dict:
    """{"name", "shape": [ints, null for a dynamic dimension], "dtype": "uint8" or null}."""
    return {"name": info.name,
            "shape": [d if isinstance(d, int) and d > 0 else None for d in info.shape],
            "dtype": str(info.dtype) if info.dtype is not None else None}


def _describe(tensor: dict) -> str:
    dims = "x".join("?" if d is None else str(d) for d in tensor["shape"])
    return f"{tensor['name']} {tensor['dtype'] or '?'} [{dims}]"


def inspect_model(path: str | os.PathLike, overrides: HeadOverrides = HeadOverrides(),
                  input_size: tuple[int, int] | None = None) -> dict:
    """A JSON-ready description (plain data: names, lists, numbers): inputs, outputs, heads,
    stride, quantization, op counts. ``input_size`` (H, W) fixes a dynamic input size first."""
    path = os.fspath(path)
    model, source_format = convert_to_onnx(path)
    metadata = parse_metadata({p.key: p.value for p in model.metadata_props})
    coral_op = None
    if input_size is not None and metadata is None:
        coral_op = strip_coral_decoder_op(model, path)
        set_input_size(model, input_size, path)
    report = {
        "file": path,
        "format": source_format,
        "inputs": [tensor_dict(i) for i in graph_inputs(model)],
        "outputs": [tensor_dict(o) for o in graph_outputs(model)],
        "op_counts": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        "nodes": len(model.graph.node),
    }
    if metadata is not None:
        report["onnxpose"] = {"version": metadata.version, "decoder": metadata.decoder,
                              "output_stride": metadata.output_stride,
                              "input": {"name": metadata.input_name,
                                        "size": [metadata.input_height, metadata.input_width],
                                        "layout": metadata.input_layout,
                                        "dtype": metadata.input_dtype,
                                        "normalization": metadata.normalization}}
        return report
    coral_op = coral_op or strip_coral_decoder_op(model, path)
    if coral_op is not None:
        report["coral_decoder_op"] = coral_op
    try:
        heads = locate_heads(model, path, overrides)
    except OnnxPoseError as exc:
        report["heads_error"] = exc.reason
        return report
    report["heads"] = {"heatmaps": heads.heatmaps, "short_offsets": heads.short_offsets,
                       "displacements": list(heads.displacements), "layout": heads.layout,
                       "grid": list(heads.grid)}
    report["output_stride"] = heads.output_stride
    report["input"] = {"name": heads.input.name, "size": [heads.input.height, heads.input.width],
                       "layout": heads.input.layout, "dtype": heads.input.dtype}
    report["quantization"] = {name: {"scale": q.scale, "zero_point": q.zero_point, "dtype": q.dtype}
                              for name, q in heads.quantization.items()}
    return report


def format_report(report: dict) -> str:
    lines = [f"{report['file']} ({report['format']})"]
    lines += [f"  input   {_describe(i)}" for i in report["inputs"]]
    lines += [f"  output  {_describe(o)}" for o in report["outputs"]]
    if "onnxpose" in report:
        meta = report["onnxpose"]
        lines.append(f"  onnxpose {meta['version']} model: decoder {meta['decoder']}")
        lines.append(f"  input  {meta['input']}; output stride {meta['output_stride']}")
    if "coral_decoder_op" in report:
        lines.append(f"  Coral PosenetDecoderOp: {report['coral_decoder_op']}")
    if "heads" in report:
        heads = report["heads"]
        lines.append(f"  heads ({heads['layout']}, grid {heads['grid'][0]}x{heads['grid'][1]}):")
        lines.append(f"    heatmaps       {heads['heatmaps']}")
        lines.append(f"    short offsets  {heads['short_offsets']}")
        lines.append(f"    displacements  {', '.join(heads['displacements']) or '(none)'}")
        lines.append(f"  output stride {report['output_stride']}")
        for name, q in report["quantization"].items():
            lines.append(f"  quantized {name}: {q['dtype']} scale {q['scale']:.6g} "
                         f"zero point {q['zero_point']}")
    if "heads_error" in report:
        lines.append(f"  heads: {report['heads_error']}")
    ops = ", ".join(f"{k} {v}" for k, v in report["op_counts"].items())
    lines.append(f"  {report['nodes']} nodes: {ops}")
    return "\n".join(lines)
