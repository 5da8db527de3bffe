"""Locate the model input and the PoseNet heads by shape and name.

PoseNet heads: ``heatmaps`` with 17 channels (logits), ``short_offsets`` with
34 (17 y then 17 x) and, for multi-person decoding, displacements: one
64-channel head (forward y, forward x, backward y, backward x; 16 each) or a
32-channel forward and a 32-channel backward head. All share one grid
(h, w); the output stride is the s with ceil(H / s) == h for the input size H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from onnxpose.errors import OnnxPoseError
from onnxpose.heads.quantization import Quantization, find_quantization
from onnxpose.heads.tensors import Producers, TensorInfo, graph_inputs, graph_outputs
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.limits import MAX_INPUT_PIXELS, MAX_INPUT_SIDE

HEATMAP_CHANNELS = NUM_KEYPOINTS
SHORT_OFFSET_CHANNELS = 2 * NUM_KEYPOINTS
DISPLACEMENT_CHANNELS = 64
HALF_DISPLACEMENT_CHANNELS = 32
OUTPUT_STRIDES = (2, 4, 8, 16, 32, 64)
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
_QUANT_DTYPES = (np.dtype(np.uint8), np.dtype(np.int8))


@dataclass(frozen=True)
class HeadOverrides:
    """Output names chosen by the user (``--heatmaps/--offsets/--displacements``)."""

    heatmaps: str | None = None
    short_offsets: str | None = None
    displacements: tuple[str, ...] = ()
    output_stride: int | None = None


@dataclass(frozen=True)
class ModelInput:
    name: str
    layout: str  # "NHWC" or "NCHW"
    height: int
    width: int
    dtype: str  # "uint8" or "float32"


@dataclass(frozen=True)
class Heads:
    heatmaps: str
    short_offsets: str
    displacements: tuple[str, ...]  # (), (mid_offsets_64,) or (fwd_32, bwd_32)
    layout: str  # "NHWC" or "NCHW"
    grid: tuple[int, int]
    output_stride: int
    input: ModelInput
    quantization: dict = field(default_factory=dict)  # head name -> Quantization
    dtypes: dict = field(default_factory=dict)  # head name -> numpy dtype name

    @property
    def names(self) -> tuple[str, ...]:
        return (self.heatmaps, self.short_offsets) + self.displacements


def _channels(info: TensorInfo, layout: str):
    return info.shape[3] if layout == "NHWC" else info.shape[1]


def _spatial(info: TensorInfo, layout: str):
    return tuple(info.shape[1:3]) if layout == "NHWC" else tuple(info.shape[2:4])


def locate_input(model: onnx.ModelProto, source: str) -> ModelInput:
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise OnnxPoseError(source, f"expected one image input, found {len(inputs)}: "
                                    + ", ".join(i.describe() for i in inputs))
    info = inputs[0]
    if info.rank != 4:
        raise OnnxPoseError(source, f"input {info.describe()} is not a 4-D image tensor")
    if info.shape[3] == 3 and info.shape[1] == 3:
        raise OnnxPoseError(source, f"input {info.describe()} could be NHWC or NCHW (3 on both "
                                    "axes); cannot tell where the RGB channels are")
    if info.shape[3] == 3:
        layout, (height, width) = "NHWC", info.shape[1:3]
    elif info.shape[1] == 3:
        layout, (height, width) = "NCHW", info.shape[2:4]
    else:
        raise OnnxPoseError(source, f"input {info.describe()} has no 3-channel (RGB) axis")
    if not isinstance(height, int) or not isinstance(width, int) or height < 1 or width < 1:
        raise OnnxPoseError(source, f"input {info.describe()} has a dynamic spatial size; "
                                    "pass --input-size HxW")
    if height > MAX_INPUT_SIDE or width > MAX_INPUT_SIDE or height * width > MAX_INPUT_PIXELS:
        raise OnnxPoseError(source, f"input {info.describe()} is too large: at most "
                                    f"{MAX_INPUT_SIDE} pixels a side and {MAX_INPUT_PIXELS} "
                                    "pixels in all")
    if info.dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise OnnxPoseError(source, f"input {info.describe()} has unsupported type {info.dtype}")
    return ModelInput(info.name, layout, height, width, str(info.dtype))


def _pick(candidates: list[TensorInfo], what: str, channels: int, hint,
          source: str) -> TensorInfo | None:
    """The one candidate, or the one whose name ``hint`` accepts; None if there is none."""
    if len(candidates) > 1:
        hinted = [c for c in candidates if hint(c.name.lower())]
        if len(hinted) == 1:
            return hinted[0]
        raise OnnxPoseError(source, f"several candidate {what} heads ({channels} channels): "
                                    + ", ".join(c.describe() for c in candidates)
                                    + f"; choose one with --{what.split()[-1]}")
    return candidates[0] if candidates else None


def _by_name(outputs: dict, name: str, source: str) -> TensorInfo:
    if name not in outputs:
        raise OnnxPoseError(source, f"no output named {name!r} (outputs: {', '.join(outputs)})")
    return outputs[name]


def _is_short_offset_name(name: str) -> bool:
    return "offset" in name and "mid" not in name and "disp" not in name


def _choose_heads(outputs: list[TensorInfo], layout: str, overrides: HeadOverrides, source: str,
                  need_displacements: bool = True):
    by_name = {o.name: o for o in outputs}
    rank4 = [o for o in outputs if o.rank == 4]

    def with_channels(c):
        return [o for o in rank4 if _channels(o, layout) == c]

    listing = ", ".join(o.describe() for o in outputs)
    if overrides.heatmaps:
        heatmaps = _by_name(by_name, overrides.heatmaps, source)
    else:
        heatmaps = _pick(with_channels(HEATMAP_CHANNELS), "heatmaps", HEATMAP_CHANNELS,
                         lambda n: "heatmap" in n, source)
        if heatmaps is None:
            raise OnnxPoseError(source, "not a PoseNet model: no output has 17 heatmap channels "
                                        f"(outputs: {listing})")
    if overrides.short_offsets:
        short = _by_name(by_name, overrides.short_offsets, source)
    else:
        short = _pick(with_channels(SHORT_OFFSET_CHANNELS), "short offsets", SHORT_OFFSET_CHANNELS,
                      _is_short_offset_name, source)
        if short is None:
            raise OnnxPoseError(source, "not a PoseNet model: no short-offset output with 34 "
                                        f"channels (outputs: {listing})")
    if overrides.displacements:
        displacements = tuple(_by_name(by_name, n, source) for n in overrides.displacements)
    else:
        try:
            displacements = _choose_displacements(with_channels(DISPLACEMENT_CHANNELS),
                                                  with_channels(HALF_DISPLACEMENT_CHANNELS), source)
        except OnnxPoseError:
            if need_displacements:
                raise
            displacements = ()  # single-pose decoding never reads them
    return heatmaps, short, displacements


def _choose_displacements(full: list[TensorInfo], halves: list[TensorInfo], source: str):
    if len(full) == 1:
        return (full[0],)
    if len(full) > 1:
        raise OnnxPoseError(source, "several candidate displacement heads (64 channels): "
                                    + ", ".join(c.describe() for c in full)
                                    + "; choose with --displacements")
    if len(halves) == 2:
        fwd = [h for h in halves if "fwd" in h.name.lower() or "forward" in h.name.lower()]
        bwd = [h for h in halves if "bwd" in h.name.lower() or "backward" in h.name.lower()]
        if len(fwd) == 1 and len(bwd) == 1 and fwd[0] is not bwd[0]:
            return (fwd[0], bwd[0])
        return tuple(halves)  # model order: forward first, as PoseNet exports them
    return ()


def _check_head(info: TensorInfo, what: str, channels: int, layout: str, source: str):
    if info.rank != 4:
        raise OnnxPoseError(source, f"{what} head {info.describe()} is not 4-D")
    if _channels(info, layout) != channels:
        raise OnnxPoseError(source, f"{what} head {info.describe()} has "
                                    f"{_channels(info, layout)} channels, expected {channels} "
                                    f"({layout})")
    if info.dtype not in _FLOAT_DTYPES + _QUANT_DTYPES:
        raise OnnxPoseError(source, f"{what} head {info.describe()} has unsupported type {info.dtype}")


def _ranges(values: list[int]) -> str:
    """``[15, 16, 17, 20]`` -> ``"15-17, 20"``."""
    parts, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(v) if v == start else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def infer_output_stride(model_input: ModelInput, grid: tuple[int, int], source: str,
                        override: int | None = None) -> int:
    def fits_grid(stride: int) -> bool:
        return (math.ceil(model_input.height / stride), math.ceil(model_input.width / stride)) == grid

    if override is not None:
        if override < 1:
            raise OnnxPoseError(source, f"output stride must be positive, not {override}")
        if not fits_grid(override):
            fitting = [s for s in range(1, max(model_input.height, model_input.width) + 1)
                       if fits_grid(s)]
            raise OnnxPoseError(source, f"--output-stride {override} does not fit input "
                                        f"{model_input.height}x{model_input.width} and heatmap "
                                        f"grid {grid[0]}x{grid[1]} (ceil(size / stride) must be "
                                        f"the grid size; "
                                        + (f"strides that fit: {_ranges(fitting)})" if fitting
                                           else "no stride fits)"))
        return override
    fits = [stride for stride in OUTPUT_STRIDES if fits_grid(stride)]
    if len(fits) == 1:
        return fits[0]
    if len(fits) > 1:
        raise OnnxPoseError(source, f"ambiguous output stride: input {model_input.height}x"
                                    f"{model_input.width} and heatmap grid {grid[0]}x{grid[1]} fit "
                                    f"strides {', '.join(map(str, fits))}; pass --output-stride")
    raise OnnxPoseError(source, f"cannot infer the output stride: input "
                                f"{model_input.height}x{model_input.width} and heatmap grid "
                                f"{grid[0]}x{grid[1]} fit none of {OUTPUT_STRIDES}; "
                                "pass --output-stride")


def locate_heads(model: onnx.ModelProto, source: str,
                 overrides: HeadOverrides = HeadOverrides(),
                 need_displacements: bool = True) -> Heads:
    """Find input and heads of ``model``; ``source`` names the file in errors.

    ``need_displacements`` False (single-pose): displacement heads that discovery cannot
    pin down (several candidates, odd channel counts) are left out instead of refused.
    """
    model_input = locate_input(model, source)
    layout = model_input.layout
    outputs = graph_outputs(model)
    heatmaps, short, displacements = _choose_heads(outputs, layout, overrides, source,
                                                   need_displacements)
    _check_head(heatmaps, "heatmaps", HEATMAP_CHANNELS, layout, source)
    _check_head(short, "short-offset", SHORT_OFFSET_CHANNELS, layout, source)
    expected = DISPLACEMENT_CHANNELS if len(displacements) == 1 else HALF_DISPLACEMENT_CHANNELS
    if len(displacements) > 2:
        raise OnnxPoseError(source, "give one 64-channel or two 32-channel displacement heads")
    for d in displacements:
        _check_head(d, "displacement", expected, layout, source)
    if not need_displacements and not overrides.displacements and displacements and any(
            _spatial(d, layout) != _spatial(heatmaps, layout) for d in displacements):
        displacements = ()

    heads = (heatmaps, short) + tuple(displacements)
    grid = _spatial(heatmaps, layout)
    if not all(isinstance(d, int) for d in grid):
        raise OnnxPoseError(source, f"heatmaps {heatmaps.describe()} have a dynamic grid size; "
                                    "pass --input-size HxW")
    for head in heads[1:]:
        if _spatial(head, layout) != grid:
            raise OnnxPoseError(source, f"inconsistent head shapes: {heatmaps.describe()} vs "
                                        f"{head.describe()} ({layout})")
    if len({h.name for h in heads}) != len(heads):
        raise OnnxPoseError(source, "the same output was chosen for two heads")
    stride = infer_output_stride(model_input, grid, source, overrides.output_stride)

    producers = Producers(model)
    quantization: dict[str, Quantization] = {}
    for head in heads:
        if head.dtype in _QUANT_DTYPES:
            q = find_quantization(producers, head.name)
            if q is None:
                raise OnnxPoseError(source, f"head {head.describe()} is {head.dtype} but no "
                                            "per-tensor scale and zero point can be found for it "
                                            "(per-channel quantized heads are not supported)")
            quantization[head.name] = q
    return Heads(heatmaps=heatmaps.name, short_offsets=short.name,
                 displacements=tuple(d.name for d in displacements), layout=layout,
                 grid=grid, output_stride=stride, input=model_input,
                 quantization=quantization, dtypes={h.name: str(h.dtype) for h in heads})


def set_input_size(model: onnx.ModelProto, size: tuple[int, int], source: str) -> None:
    """Fix a dynamic (or change a static) input height/width, then re-infer shapes."""
    model_inputs = graph_inputs(model)
    if len(model_inputs) != 1 or model_inputs[0].rank != 4:
        raise OnnxPoseError(source, "--input-size needs one 4-D image input")
    info = model_inputs[0]
    axes = (1, 2) if info.shape[3] == 3 else (2, 3)
    value_info = next(v for v in model.graph.input if v.name == info.name)
    for axis, value in zip(axes, size):
        dim = value_info.type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_value = int(value)
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # InferenceError: the graph does not work at this size
        reason = " ".join(str(exc).split())[:300]
        raise OnnxPoseError(source, f"cannot set the input size to {size[0]}x{size[1]} "
                                    f"({reason})") from exc
    model.graph.ClearField("output")
    model.graph.output.extend(inferred.graph.output)
