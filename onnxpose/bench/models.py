"""The models a benchmark compares, prepared once per run, and its input batches.

* ``raw``: the source converted to ONNX (convert only), cut to the heads that
  single-pose decoding reads (heatmaps, short offsets) in their native type
  (uint8 for a quantized model), with a dynamic batch: the model a user would
  run before decoding by hand. ``raw_all`` also outputs the displacement heads
  (the baseline of the multi-pose decoder).
* ``single`` / ``multi``: onnxpose models with in-graph decoding
  (``build_model(..., output=None)``).
* ``tflite``: the source file itself, when it is a TFLite model.

For an already built onnxpose model, the raw model is the built graph cut just
before its ``heads/`` nodes, so it is the same backbone in both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import PoseModelInfo, parse_metadata

HEAD_PREFIX = "heads/"
SINGLE_ROLES = ("heatmaps", "short_offsets")


@dataclass
class RawModel:
    """A model whose outputs are PoseNet heads, and how to read them in Python."""

    path: Path
    outputs: list[str]  # output names in session order
    roles: dict[str, str]  # "heatmaps" / "short_offsets" → output name
    quantization: dict[str, tuple[float, int]]  # output name → (scale, zero point)
    layout: str  # "NHWC" or "NCHW"


@dataclass
class Prepared:
    source: Path
    source_format: str  # "tflite", "savedmodel", "tfjs", "onnx", or "onnxpose" (already built)
    info: PoseModelInfo  # input layout, size, dtype, normalization, stride of the built model
    heads: object  # onnxpose.heads.Heads of the raw model
    raw: dict[str, RawModel] = field(default_factory=dict)  # "raw", "raw_all"
    built: dict[str, Path] = field(default_factory=dict)  # "single", "multi"
    decoder_only: dict[str, Path] = field(default_factory=dict)  # "decoder_single", "decoder_multi"
    multi_settings: dict | None = None
    tflite: Path | None = None
    skipped: list[dict] = field(default_factory=list)  # {"case", "reason"}
    coordinates: str = "stride"
    layout: str = "onnxpose"  # single-pose output layout of the built model

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.info.input_height, self.info.input_width

    def describe(self) -> dict:
        heads = self.heads
        return {
            "source": str(self.source), "format": self.source_format,
            "input": {"name": self.info.input_name, "layout": self.info.input_layout,
                      "height": self.info.input_height, "width": self.info.input_width,
                      "dtype": self.info.input_dtype, "normalization": self.info.normalization},
            "output_stride": self.info.output_stride,
            "heads": {"heatmaps": heads.heatmaps, "short_offsets": heads.short_offsets,
                      "displacements": list(heads.displacements), "layout": heads.layout,
                      "grid": list(heads.grid),
                      "quantization": {k: [v.scale, v.zero_point, v.dtype]
                                       for k, v in heads.quantization.items()}},
            "raw_models": {k: {"outputs": v.outputs} for k, v in self.raw.items()},
            "built_models": sorted(self.built),
            "decoder_only_models": sorted(self.decoder_only),
            "multi_settings": self.multi_settings,
            "single_pose": {"coordinates": self.coordinates, "layout": self.layout},
            "tflite": str(self.tflite) if self.tflite else None,
        }


def is_built_model(path: Path) -> bool:
    if path.suffix.lower() != ".onnx" or not path.is_file():
        return False
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    return parse_metadata({p.key: p.value for p in model.metadata_props}) is not None


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def raw_model(model: onnx.ModelProto, heads, names: list[str], path: Path,
              opset: int) -> RawModel:
    """``model`` with outputs cut to ``names`` (heads), dynamic batch, written to ``path``."""
    from onnxpose.decoder.attach import finish, make_batch_dynamic
    graph = gs.import_onnx(model)
    tensors = graph.tensors()
    missing = [n for n in names if n not in tensors]
    if missing:
        raise OnnxPoseError(path, f"heads {missing} not found in the converted model")
    graph.outputs = [tensors[n] for n in names]
    for tensor in graph.outputs:
        tensor.dtype = np.dtype(heads.dtypes.get(tensor.name, "float32"))
    make_batch_dynamic(graph)
    cut = finish(graph, opset)
    roles = {"heatmaps": heads.heatmaps, "short_offsets": heads.short_offsets}
    roles.update({f"displacements_{i}": n for i, n in enumerate(heads.displacements) if n in names})
    quant = {n: (q.scale, q.zero_point) for n, q in heads.quantization.items() if n in names}
    return RawModel(_save(cut, path), list(names), roles, quant, heads.layout)


def cut_at_heads(model: onnx.ModelProto, source) -> onnx.ModelProto:
    """A built onnxpose model without its ``heads/`` post-processing and decoder."""
    graph = gs.import_onnx(model)
    head_nodes = [n for n in graph.nodes if n.name.startswith(HEAD_PREFIX)]
    if not head_nodes:
        raise OnnxPoseError(source, "built model has no heads/ nodes: cannot find its raw heads")
    inside = {id(n) for n in head_nodes}
    boundary = []
    for node in head_nodes:
        for tensor in node.inputs:
            if isinstance(tensor, gs.Constant):
                continue
            producer = tensor.inputs[0] if tensor.inputs else None
            if producer is not None and (id(producer) in inside or producer.op == "Constant"):
                continue
            if all(tensor is not b for b in boundary):
                boundary.append(tensor)
    graph.outputs = boundary
    graph.cleanup().toposort()
    return onnx.shape_inference.infer_shapes(gs.export_onnx(graph))


def _info_of(model: onnx.ModelProto) -> PoseModelInfo:
    return parse_metadata({p.key: p.value for p in model.metadata_props})


def prepare(source: str | os.PathLike, workdir: Path, *, multi: bool = True, tflite: bool = True,
            opset: int = 17, log=lambda message: None) -> Prepared:
    """Convert / build everything the benchmark runs; model files go to ``workdir``."""
    from onnxpose.convert import convert_to_onnx
    from onnxpose.heads import locate_heads, strip_coral_decoder_op
    source = Path(source)
    if not source.exists():
        raise OnnxPoseError(source, "no such model file or directory")
    workdir.mkdir(parents=True, exist_ok=True)

    if is_built_model(source):
        log(f"reading the built onnxpose model {source}")
        built = onnx.load(str(source))
        info = _info_of(built)
        backbone = cut_at_heads(built, source)
        heads = locate_heads(backbone, str(source))
        kind = "multi" if info.multi_pose else "single"
        prepared = Prepared(source, "onnxpose", info, heads, built={kind: source})
        prepared.coordinates = info.decoder.get("coordinates", "stride")
        prepared.layout = info.decoder.get("layout", "onnxpose")
        prepared.multi_settings = info.decoder.get("settings") if info.multi_pose else None
        _add_raw(prepared, backbone, heads, workdir, opset, with_all=info.multi_pose)
        _add_decoder_only(prepared, workdir)
        if not info.multi_pose:
            prepared.skipped.append({"case": "onnxpose-multi", "reason": "the given model is a "
                                     "built single-pose model (pass the source model to compare both)"})
        prepared.skipped.append({"case": "tflite+numpy", "reason": "the given model is a built "
                                 "ONNX model, not a TFLite source"})
        return prepared

    from onnxpose.build import build_model
    log(f"converting {source} (raw model: convert only, heads exposed)")
    converted, source_format = convert_to_onnx(source, opset)
    strip_coral_decoder_op(converted, str(source))
    heads = locate_heads(converted, str(source))

    log("building the onnxpose single-pose model")
    single = build_model(source, None, decoder="single", opset=opset).model
    single_path = _save(single, workdir / "onnxpose_single.onnx")
    prepared = Prepared(source, source_format, _info_of(single), heads,
                        built={"single": single_path})
    multi_model = None
    if not multi:
        prepared.skipped.append({"case": "onnxpose-multi", "reason": "not requested"})
    elif not heads.displacements:
        prepared.skipped.append({"case": "onnxpose-multi", "reason": "the model has no "
                                 "displacement heads, needed for multi-pose decoding"})
    else:
        log("building the onnxpose multi-pose model")
        try:
            multi_result = build_model(source, None, decoder="multi", opset=opset)
            multi_model = multi_result.model
            prepared.multi_settings = multi_result.decoder.get("settings")
        except ImportError as exc:
            prepared.skipped.append({"case": "onnxpose-multi", "reason": "multi-pose decoder not "
                                     f"available in this onnxpose ({exc})"})
        except OnnxPoseError as exc:  # e.g. a decoder that fails build validation
            prepared.skipped.append({"case": "onnxpose-multi", "reason": "the multi-pose model "
                                     f"could not be built ({exc.reason})"})
        if multi_model is not None:
            prepared.built["multi"] = _save(multi_model, workdir / "onnxpose_multi.onnx")
    _add_raw(prepared, converted, heads, workdir, opset, with_all=multi_model is not None)
    _add_decoder_only(prepared, workdir)

    if not tflite:
        prepared.skipped.append({"case": "tflite+numpy", "reason": "not requested"})
    elif source_format != "tflite":
        prepared.skipped.append({"case": "tflite+numpy", "reason": f"the source is "
                                 f"{source_format}, not TFLite"})
    else:
        reason = tflite_unavailable()
        if reason:
            prepared.skipped.append({"case": "tflite+numpy", "reason": reason})
        else:
            prepared.tflite = source
    return prepared


def _add_raw(prepared: Prepared, model: onnx.ModelProto, heads, workdir: Path, opset: int,
             with_all: bool) -> None:
    single_names = [heads.heatmaps, heads.short_offsets]
    prepared.raw["raw"] = raw_model(model, heads, single_names, workdir / "raw_heads.onnx", opset)
    if with_all and heads.displacements:
        prepared.raw["raw_all"] = raw_model(model, heads, single_names + list(heads.displacements),
                                            workdir / "raw_all_heads.onnx", opset)


def _add_decoder_only(prepared: Prepared, workdir: Path) -> None:
    """Decoder-only models (heads in, poses out) for timing the decoding alone."""
    from onnxpose.decoder.decoder_only import decoder_only_model
    from onnxpose.spec import MultiPoseSettings, SinglePoseSettings
    grid, stride = prepared.heads.grid, prepared.info.output_stride
    if "single" in prepared.built:
        settings = SinglePoseSettings(prepared.coordinates, prepared.layout)
        prepared.decoder_only["decoder_single"] = _save(
            decoder_only_model(grid, stride, settings, prepared.input_hw),
            workdir / "decoder_only_single.onnx")
    if "multi" in prepared.built and prepared.multi_settings and "raw_all" in prepared.raw:
        try:
            model = decoder_only_model(grid, stride, MultiPoseSettings(**prepared.multi_settings),
                                       prepared.input_hw)
        except Exception as exc:  # the multi-pose decoder is optional here
            prepared.skipped.append({"case": "decode:onnxpose-multi", "reason": "no multi-pose "
                                     f"decoder-only model ({type(exc).__name__}: {exc})"})
            return
        prepared.decoder_only["decoder_multi"] = _save(model, workdir / "decoder_only_multi.onnx")


def tflite_unavailable() -> str | None:
    """None if a TFLite interpreter can be imported, else why not."""
    try:
        from onnxpose.bench.cases import tflite_interpreter_class
        tflite_interpreter_class()
    except ImportError as exc:
        return f"no TFLite interpreter installed (tensorflow or ai_edge_litert): {exc}"
    return None


def make_inputs(info: PoseModelInfo, batches, image=None, seed: int = 0) -> dict[int, np.ndarray]:
    """One input tensor per batch size: the image repeated, or seeded random pixels."""
    largest = max(batches)
    if image is not None:
        from onnxpose.runtime.images import load_image, to_input_tensor
        picture = load_image(image)
        full = to_input_tensor([picture] * largest, info)
    else:
        from onnxpose.validate.check import random_input
        full = random_input(info, largest, seed)
    return {b: np.ascontiguousarray(full[:b]) for b in batches}
