"""Golden decoder-only graphs in ``graphs/``.

Regenerate with ``onnxpose golden`` (writes ``graphs/*.onnx``); the test
suite rebuilds each one and fails if the builder's graph no longer matches the
committed file, so graph changes are always deliberate and reviewed.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import MultiPoseSettings, SinglePoseSettings

#: file stem -> (grid, output_stride, settings)
GOLDEN_GRAPHS = {
    "single_pose_stride": ((23, 31), 16, SinglePoseSettings("stride", "onnxpose")),
    "single_pose_grid": ((9, 9), 32, SinglePoseSettings("grid", "onnxpose")),
    "single_pose_movenet": ((9, 9), 32, SinglePoseSettings("stride", "movenet")),
    "multi_pose_coral": ((23, 31), 16, MultiPoseSettings.for_preset("coral")),
    "multi_pose_tfjs": ((23, 31), 16, MultiPoseSettings.for_preset("tfjs")),
    "multi_pose_coral_heap": ((23, 31), 16, MultiPoseSettings.for_preset("coral",
                                                                         tie_order="heap")),
    # what a model with Coral's PosenetDecoderOp gets: the shipped decoder's walk
    "multi_pose_coral_frogfish_heap": ((23, 31), 16, MultiPoseSettings.for_preset(
        "coral", tie_order="heap", coral_release="frogfish")),
    # no Loop or If (TensorRT, CoreML, NNAPI): a static number of candidates
    "multi_pose_coral_no_control_flow": ((23, 31), 16, MultiPoseSettings.for_preset(
        "coral", candidates=64, control_flow="none")),
    "multi_pose_tfjs_no_control_flow": ((23, 31), 16, MultiPoseSettings.for_preset(
        "tfjs", candidates=64, control_flow="none")),
}


def golden_model(stem: str) -> onnx.ModelProto:
    grid, stride, settings = GOLDEN_GRAPHS[stem]
    model = decoder_only_model(grid, stride, settings)
    model.producer_name, model.producer_version = "onnxpose", ""
    return model


def canonical_bytes(model: onnx.ModelProto) -> bytes:
    """Bytes of the graph that decide whether two goldens are the same."""
    return model.graph.SerializeToString(deterministic=True)


def write_goldens(directory: str | Path, stems=None) -> list[Path]:
    from onnxpose.io import write_bytes_atomic
    directory = Path(directory)
    written = []
    for stem in stems or GOLDEN_GRAPHS:
        path = directory / f"{stem}.onnx"
        write_bytes_atomic(path, golden_model(stem).SerializeToString(deterministic=True))
        written.append(path)
    return written
