"""``build_model``: the whole flow convert → locate heads → append decoder → validate → save."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import onnx
from onnx.checker import ValidationError
from onnx.shape_inference import InferenceError

from onnxpose.errors import BUILD_EXTRA_MODULES, OnnxPoseError, first_line, require_extra

# without the build extra: one line saying what to install, not an ImportError traceback
require_extra("build", BUILD_EXTRA_MODULES, "onnxpose build")

import onnx_graphsurgeon as gs  # noqa: E402 (after the one-line check above)

from onnxpose.convert import convert_to_onnx
from onnxpose.convert.convert import DEFAULT_OPSET
from onnxpose.convert.peek import peek_source
from onnxpose.decoder.attach import append_decoder, finish, make_batch_dynamic
from onnxpose.spec import (IMAGE_INPUT_NAME, MOVENET_MAX_POSES, ModelIOSettings, MultiPoseSettings,
                           SinglePoseSettings)
from onnxpose.heads import HeadOverrides, Heads, locate_heads, strip_coral_decoder_op
from onnxpose.heads.locate import set_input_size
from onnxpose.heads.tensors import graph_inputs
from onnxpose.io import check_output_path, write_bytes_atomic
from onnxpose.metadata import NORMALIZATIONS, PREFIX, metadata_dict, write_metadata
from onnxpose.options import (check_decoder_name, check_decoder_options, check_normalization,
                              multi_options_given, multi_settings_preview)
from onnxpose.validate import ValidationReport, validate_model
from onnxpose.version import __version__

STEPS = ("convert", "locate heads", "append decoder", "validate", "save")


@dataclass
class BuildResult:
    output: Path | None
    source_format: str
    heads: Heads
    decoder: dict
    outputs: list[str]
    validation: ValidationReport | None
    coral_decoder_op: dict | None
    model: onnx.ModelProto
    #: ((H, W) of the source, (H, W) built) when --input-size changed a fixed input size
    input_size_changed: tuple | None = None


def default_normalization(input_dtype: str) -> str:
    """uint8 models take raw 0..255 pixels; float PoseNet MobileNets take [-1, 1]."""
    return "none" if input_dtype == "uint8" else "minus_one_to_one"


def decoder_description(decoder, single, multi) -> dict:
    if decoder == "single":
        return {"type": "single", **dataclasses.asdict(single)}
    return {"type": "multi", "settings": multi.to_dict()}


def _multi_settings(multi: MultiPoseSettings | None, coral_op: dict | None, heads: Heads,
                    source: str, preset: str | None, overrides: dict | None) -> MultiPoseSettings:
    """``multi`` if given; else the base settings (Coral's op options with Coral's tie order
    and the walk of Coral's shipped decoder, ``coral_release="frogfish"``, for a model that
    had the op and no other preset asked for, else the preset's defaults) with the non-None
    ``overrides`` applied."""
    if multi is not None:
        return multi
    if coral_op is not None and preset in (None, "coral"):
        if coral_op["stride"] != heads.output_stride:
            raise OnnxPoseError(source, f"PosenetDecoderOp stride {coral_op['stride']} differs "
                                        f"from the output stride {heads.output_stride} of its heads")
        base = MultiPoseSettings.for_preset("coral", max_poses=coral_op["max_detections"],
                                            score_threshold=coral_op["score_threshold"],
                                            nms_radius=coral_op["nms_radius"], tie_order="heap",
                                            coral_release="frogfish")
    else:
        base = MultiPoseSettings.for_preset(preset or "coral")
    try:
        return dataclasses.replace(base, **{k: v for k, v in (overrides or {}).items()
                                            if v is not None})
    except ValueError as exc:
        raise OnnxPoseError(source, str(exc)) from exc


def _fixed_input_size(model: onnx.ModelProto) -> tuple[int, int] | None:
    """(H, W) of a model's one static 4-D image input, else None."""
    inputs = graph_inputs(model)
    if len(inputs) != 1 or inputs[0].rank != 4:
        return None
    shape = inputs[0].shape
    hw = shape[1:3] if shape[3] == 3 else shape[2:4]
    return tuple(hw) if all(isinstance(d, int) and d > 0 for d in hw) else None


def _free_input_name(model: onnx.ModelProto, name: str) -> None:
    """Rename a source graph input called ``name`` (the image input about to be added) to
    ``{name}_raw`` (``_raw2``, ... if taken), with every node that reads it."""
    if name not in {i.name for i in model.graph.input}:
        return
    taken = {v for n in model.graph.node for v in (*n.input, *n.output)}
    taken |= {t.name for t in (*model.graph.input, *model.graph.output, *model.graph.initializer)}
    new, i = f"{name}_raw", 1
    while new in taken:
        i += 1
        new = f"{name}_raw{i}"
    for tensor in model.graph.input:
        if tensor.name == name:
            tensor.name = new
    for node in model.graph.node:
        node.input[:] = [new if v == name else v for v in node.input]


def _check_not_source(source: str, output) -> None:
    """Refuse to write the built model over its own source."""
    try:
        same = os.path.exists(output) and os.path.samefile(source, output)
    except OSError:
        same = False
    if same:
        raise OnnxPoseError(output, "output path is the source model itself; choose another -o")


def build_model(source: str | os.PathLike, output: str | os.PathLike | None, *,
                decoder: str | None = None,
                single: SinglePoseSettings = SinglePoseSettings(),
                multi: MultiPoseSettings | None = None,
                multi_preset: str | None = None,
                multi_overrides: dict | None = None,
                keep_heads: bool = False,
                overrides: HeadOverrides = HeadOverrides(),
                normalization: str | None = None,
                input_size: tuple[int, int] | None = None,
                input_mode: str = "tensor",
                resize: str = "stretch",
                box_threshold: float = 0.2,
                opset: int = DEFAULT_OPSET,
                validate: bool = True,
                progress: Callable[[int, str], None] | None = None) -> BuildResult:
    """Build an ONNX model that outputs keypoints from a PoseNet ``source``.

    ``decoder``: "single" or "multi"; None means "multi" for a model with Coral's
    PosenetDecoderOp (using its options) and "single" otherwise. ``multi``:
    MultiPoseSettings; without it, ``multi_preset``'s defaults (or, for a model with
    Coral's op and no other preset, the op's options and Coral's heap tie order) with the
    non-None ``multi_overrides`` (MultiPoseSettings fields) applied.
    ``input_mode`` "image": the model takes uint8 [N,H,W,3] photos of any size and resizes
    them in the graph (``resize`` "stretch" or "letterbox"); keypoints and ``boxes`` (a
    keypoint counts when it scores at least ``box_threshold``) are in the input's pixels.
    ``single.layout`` "movenet" with the multi-pose decoder gives MoveNet MultiPose's
    ``output_0`` [N,P,56] (P = 6 unless max_poses is given).
    ``output`` None: build and validate only. The file is written atomically:
    on any error nothing is left at ``output``.
    """
    source = os.fspath(source)
    report = progress or (lambda step, message: None)
    if output is not None:
        check_output_path(output)
        _check_not_source(source, output)
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise OnnxPoseError(None, f"unknown normalization {normalization!r} "
                                  f"(choose from {', '.join(NORMALIZATIONS)})")
    check_decoder_name(decoder)
    multi_given = multi_options_given(multi, multi_preset, multi_overrides)
    peek = peek_source(source)  # cheap: refuse conflicting options before converting
    if check_decoder_options(source, decoder, peek.coral_op, single, multi_given) == "multi":
        multi_settings_preview(source, multi, multi_preset, multi_overrides)
    check_normalization(source, normalization, peek.input_dtype)
    try:
        io = ModelIOSettings(input=input_mode, resize=resize, layout=single.layout,
                             box_threshold=box_threshold)
    except ValueError as exc:
        raise OnnxPoseError(source, str(exc)) from exc
    if resize != "stretch" and input_mode != "image":
        raise OnnxPoseError(source, f"--resize {resize} needs --input image (a tensor-input model "
                                    "is resized by its caller)")
    if single.layout == "movenet" and multi is None and (multi_overrides or {}).get("max_poses") is None:
        multi_overrides = {**(multi_overrides or {}), "max_poses": MOVENET_MAX_POSES}

    report(0, f"converting {source}")
    model, source_format = convert_to_onnx(source, opset)
    if any(p.key.startswith(PREFIX) for p in model.metadata_props):
        raise OnnxPoseError(source, "already built by onnxpose (it outputs keypoints, not PoseNet "
                                    "heads); build its source model instead")
    coral_op = strip_coral_decoder_op(model, source)
    decoder = check_decoder_options(source, decoder, coral_op is not None, single, multi_given)
    resized = None
    if input_size is not None:
        before = _fixed_input_size(model)
        set_input_size(model, input_size, source)
        if before is not None and tuple(before) != tuple(input_size):
            resized = (before, tuple(input_size))

    report(1, "locating heads")
    if input_mode == "image":
        _free_input_name(model, IMAGE_INPUT_NAME)
    heads = locate_heads(model, source, overrides, need_displacements=decoder == "multi")
    check_normalization(source, normalization, heads.input.dtype)
    if resized is not None:
        report(1, f"backbone input changed from {resized[0][0]}x{resized[0][1]} to "
                  f"{resized[1][0]}x{resized[1][1]} (fully convolutional; output stride "
                  f"{heads.output_stride}, grid {heads.grid[0]}x{heads.grid[1]})")
    if decoder == "multi" and not heads.displacements:
        raise OnnxPoseError(source, "multi-pose decoding needs displacement heads (64 channels, "
                                    "or 32 forward + 32 backward); none found")
    multi = (_multi_settings(multi, coral_op, heads, source, multi_preset, multi_overrides)
             if decoder == "multi" else None)
    if decoder == "single" and single.coordinates == "grid" and min(heads.grid) < 2:
        raise OnnxPoseError(source, f"--coordinates grid divides by the grid size minus one: "
                                    f"the {heads.grid[0]}x{heads.grid[1]} grid is too small "
                                    "(use --coordinates stride)")

    report(2, f"appending the {decoder}-pose decoder")
    try:
        graph = gs.import_onnx(model)
        make_batch_dynamic(graph)
        norm = normalization or default_normalization(heads.input.dtype)
        outputs = append_decoder(graph, heads, decoder, single, multi, keep_heads, io,
                                 NORMALIZATIONS[norm])
        built = finish(graph, opset)
    except (InferenceError, ValidationError) as exc:  # the source graph contradicts itself
        raise OnnxPoseError(source, f"the model's graph is inconsistent ({first_line(exc)})") from exc
    description = decoder_description(decoder, single, multi)
    write_metadata(built, metadata_dict(
        version=__version__, model_input=heads.input,
        normalization=normalization or default_normalization(heads.input.dtype),
        output_stride=heads.output_stride, decoder=description,
        source={"file": os.path.basename(source.rstrip("/")), "format": source_format,
                "coral_decoder_op": coral_op}, io=io.to_dict()))

    validation = None
    if validate:
        report(3, "validating (checker, shape inference, onnxruntime vs numpy reference)")
        try:
            validation = validate_model(built, source)
        except OnnxPoseError:
            raise
        except Exception as exc:  # e.g. heads whose runtime shapes differ from the declared ones
            raise OnnxPoseError(source, f"validation failed: the model does not behave as its "
                                        f"graph declares ({first_line(exc)})") from exc
    if output is not None:
        report(4, f"saving {output}")
        write_bytes_atomic(output, built.SerializeToString())
    return BuildResult(Path(output) if output is not None else None, source_format, heads,
                       description, list(outputs), validation, coral_op, built, resized)
