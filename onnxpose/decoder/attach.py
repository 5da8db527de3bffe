"""Append a decoder to a converted model: float NHWC heads in, keypoints out."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.single_pose import append_single_pose_decoder
from onnxpose.heads import Heads
from onnxpose.spec import (BATCH, HEAD_NAMES, HEATMAP_LIMIT, ModelIOSettings,
                           MultiPoseSettings, SinglePoseSettings, decoder_outputs, output_dtype)

NHWC_FROM_NCHW = (0, 2, 3, 1)


def float_nhwc_head(b: GraphBuilder, tensor: gs.Variable, heads: Heads, name: str) -> gs.Variable:
    """Dequantize / cast a head to float32 and bring it to NHWC."""
    q = heads.quantization.get(tensor.name)
    if q is not None:
        tensor = b.dequantize(tensor, np.float32(q.scale), np.array(q.zero_point, dtype=q.dtype),
                              f"{name}_dequantized")
    elif heads.dtypes.get(tensor.name) == "float16":
        tensor = b.cast(tensor, np.float32, f"{name}_float")
    if heads.layout == "NCHW":
        tensor = b.transpose(tensor, NHWC_FROM_NCHW, f"{name}_nhwc")
    return b.identity(tensor, name)


def float_heads(b: GraphBuilder, graph: gs.Graph, heads: Heads) -> dict[str, gs.Variable]:
    tensors = graph.tensors()
    out = {"heatmaps": float_nhwc_head(b, tensors[heads.heatmaps], heads, "heatmaps"),
           "short_offsets": float_nhwc_head(b, tensors[heads.short_offsets], heads, "short_offsets")}
    parts = [float_nhwc_head(b, tensors[name], heads, f"displacements_{i}")
             for i, name in enumerate(heads.displacements)]
    if len(parts) == 2:  # forward [y16, x16] + backward [y16, x16] → 64 channels
        out["displacements"] = b.concat(parts, axis=3, name="displacements")
    elif len(parts) == 1:
        out["displacements"] = b.identity(parts[0], "displacements")
    return out


def heads_are_finite(heads: Heads) -> bool:
    """Whether every head is dequantized from 8-bit integers with a finite scale and the
    heatmaps stay within +-HEATMAP_LIMIT: then the multi-pose decoder's clipping and
    finite-value passes would change nothing, and are left out."""
    names = [heads.heatmaps, heads.short_offsets, *heads.displacements]
    quantized = [heads.quantization.get(name) for name in names]
    if any(q is None or not np.isfinite(q.scale) for q in quantized):
        return False
    q = quantized[0]
    low, high = (0, 255) if q.dtype == "uint8" else (-128, 127)
    reach = max(abs(high - q.zero_point), abs(low - q.zero_point)) * abs(q.scale)
    return bool(reach <= HEATMAP_LIMIT)


def make_batch_dynamic(graph: gs.Graph) -> None:
    """Symbolic batch on the input; intermediate shapes are dropped and re-inferred."""
    for tensor in graph.inputs:
        tensor.shape = [BATCH] + list(tensor.shape[1:])
    inputs = {id(t) for t in graph.inputs}
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in inputs:
            tensor.shape = None


def reserve_names(graph: gs.Graph, names, keep=()) -> None:
    """Rename the graph's tensors named like one of ``names`` (the outputs about to be
    added) to ``{name}_raw`` (``_raw2``, ... if taken), except those in ``keep``: decoder
    outputs never collide with source tensor names (e.g. a Keras 3 export's ``output_0``)."""
    tensors = graph.tensors()
    taken = set(tensors)
    kept = {id(t) for t in keep}
    for name in names:
        tensor = tensors.get(name)
        if tensor is None or id(tensor) in kept:
            continue
        new, i = f"{name}_raw", 1
        while new in taken:
            i += 1
            new = f"{name}_raw{i}"
        tensor.name = new
        taken.add(new)


def append_decoder(graph: gs.Graph, heads: Heads, decoder: str,
                   single: SinglePoseSettings | None = None,
                   multi: MultiPoseSettings | None = None,
                   keep_heads: bool = False, io: ModelIOSettings | None = None,
                   normalization: tuple[float, float] = (1.0, 0.0)) -> dict[str, gs.Variable]:
    """Append heads post-processing and the chosen decoder; sets graph.outputs.

    Output names, dtypes and order come from ``onnxpose.spec``; source tensors with those
    names are renamed first (``reserve_names``). With ``io`` (``ModelIOSettings``) the
    decoder's own outputs are named ``decoder/NAME`` and the model's (mapped to the input
    image, boxes, layout: ``decoder.image_input``) follow; ``io.input == "image"`` replaces
    the input by ``image`` (``normalization``: the float backbone's (scale, offset))."""
    if io is not None:
        return _append_with_io(graph, heads, decoder, single, multi, keep_heads, io, normalization)
    b = GraphBuilder(graph, "heads/")
    floats = float_heads(b, graph, heads)
    if decoder == "single":
        settings = single or SinglePoseSettings()
    elif decoder == "multi":
        if "displacements" not in floats:
            raise ValueError("multi-pose decoding needs displacement heads")
        settings = multi or MultiPoseSettings()
    else:
        raise ValueError(f"unknown decoder {decoder!r}")
    specs = list(decoder_outputs(settings))
    kept_heads = [name for name in HEAD_NAMES if keep_heads and name in floats]
    reserve_names(graph, [spec.name for spec in specs] + kept_heads,
                  keep=[floats[name] for name in kept_heads])
    if decoder == "single":
        decoded = append_single_pose_decoder(graph, floats["heatmaps"], floats["short_offsets"],
                                             (heads.input.height, heads.input.width), heads.grid,
                                             heads.output_stride, settings)
    else:
        from onnxpose.decoder.multi_pose import append_multi_pose_decoder
        decoded = append_multi_pose_decoder(graph, floats["heatmaps"], floats["short_offsets"],
                                            floats["displacements"], heads.grid,
                                            heads.output_stride, settings,
                                            finite_heads=heads_are_finite(heads))
    outputs = {spec.name: decoded[spec.name] for spec in specs}
    outputs.update({name: floats[name] for name in kept_heads})
    for name, tensor in outputs.items():
        tensor.name = name
        tensor.dtype = np.dtype(output_dtype(name))
    graph.outputs = list(outputs.values())
    return outputs


def _append_with_io(graph, heads, decoder, single, multi, keep_heads, io, normalization):
    from onnxpose.decoder.image_input import append_image_input, append_model_outputs
    if decoder == "single":
        single = dataclasses.replace(single or SinglePoseSettings(), layout="onnxpose")
    backbone_hw = (heads.input.height, heads.input.width)
    backbone_input = graph.inputs[0]
    outputs = append_decoder(graph, heads, decoder, single, multi, keep_heads)
    settings = single if decoder == "single" else (multi or MultiPoseSettings())
    decoded = {spec.name: outputs[spec.name] for spec in decoder_outputs(settings)}
    for name, tensor in decoded.items():
        tensor.name = f"decoder/{name}"
    kept = {name: outputs[name] for name in outputs if name not in decoded}
    if io.input == "image":
        image_hw, geometry = append_image_input(graph, backbone_input, backbone_hw,
                                                heads.input.layout, heads.input.dtype,
                                                normalization, io.resize)
    else:
        b = GraphBuilder(graph, "tensor_input/")
        image_hw = tuple(b.const(np.array([v], np.int64), n) for v, n in
                         zip(backbone_hw, ("height", "width")))
        geometry = (*image_hw, b.const(np.array([0], np.int64), "top"),
                    b.const(np.array([0], np.int64), "left"))
    final = append_model_outputs(graph, decoded, settings, io, image_hw, geometry)
    specs = decoder_outputs(settings, io)
    reserve_names(graph, [spec.name for spec in specs], keep=list(kept.values()))
    result = {}
    for spec in specs:
        tensor = final[spec.name]
        tensor.name, tensor.dtype = spec.name, np.dtype(spec.dtype)
        result[spec.name] = tensor
    result.update(kept)
    graph.outputs = list(result.values())
    return result


def finish(graph: gs.Graph, opset: int) -> onnx.ModelProto:
    """cleanup, toposort, export, re-infer shapes."""
    graph.cleanup().toposort()
    model = gs.export_onnx(graph, do_type_check=True)
    _set_opset(model, opset)
    # The lowest IR version that carries these opsets: runtimes lag behind the onnx package.
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import))
    return onnx.shape_inference.infer_shapes(model)


def _set_opset(model: onnx.ModelProto, opset: int) -> None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version < opset:
            entry.version = opset
