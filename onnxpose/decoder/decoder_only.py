"""Decoder-only ONNX models: the heads are the graph inputs.

Used for golden graphs (``graphs/``), property tests and benchmarks of the
decoding alone. Inputs: ``heatmaps`` [N,h,w,17], ``short_offsets``
[N,h,w,34] and, for multi-pose, ``displacements`` [N,h,w,64]; float32, NHWC.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxpose.decoder.attach import finish
from onnxpose.decoder.single_pose import append_single_pose_decoder
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import (BATCH, MAX_OPSET, OPSET, MultiPoseSettings, SinglePoseSettings,
                           decoder_outputs)


def _head(name: str, grid, channels: int) -> gs.Variable:
    return gs.Variable(name, dtype=np.float32, shape=[BATCH, grid[0], grid[1], channels])


def decoder_only_model(grid: tuple[int, int], output_stride: int,
                       settings: SinglePoseSettings | MultiPoseSettings,
                       input_hw: tuple[int, int] | None = None,
                       opset: int = OPSET) -> onnx.ModelProto:
    """A model whose inputs are the heads and whose outputs are the decoded poses.

    ``input_hw`` defaults to ``(h - 1) * output_stride + 1`` (PoseNet's sizes);
    ``opset``: ``onnxpose.spec.OPSET`` .. ``MAX_OPSET``.
    """
    if not OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be {OPSET}..{MAX_OPSET}, not {opset}")
    if input_hw is None:
        input_hw = ((grid[0] - 1) * output_stride + 1, (grid[1] - 1) * output_stride + 1)
    graph = gs.Graph(opset=opset, name="onnxpose_decoder")
    heatmaps = _head("heatmaps", grid, NUM_KEYPOINTS)
    short_offsets = _head("short_offsets", grid, 2 * NUM_KEYPOINTS)
    graph.inputs = [heatmaps, short_offsets]
    if isinstance(settings, SinglePoseSettings):
        outputs = append_single_pose_decoder(graph, heatmaps, short_offsets, input_hw, grid,
                                             output_stride, settings)
    else:
        from onnxpose.decoder.multi_pose import append_multi_pose_decoder
        displacements = _head("displacements", grid, 64)
        graph.inputs.append(displacements)
        outputs = append_multi_pose_decoder(graph, heatmaps, short_offsets, displacements,
                                            grid, output_stride, settings)
    graph.outputs = []
    for spec in decoder_outputs(settings):
        tensor = outputs[spec.name]
        tensor.name, tensor.dtype = spec.name, np.dtype(spec.dtype)
        graph.outputs.append(tensor)
    model = finish(graph, opset)
    onnx.checker.check_model(model, full_check=True)
    return model
