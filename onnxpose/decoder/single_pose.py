"""Single-pose decoding as ONNX ops: TF.js PoseNet's decodeSinglePose.

Per keypoint: ArgMax over the flattened heatmap grid (first index wins ties,
like numpy), GatherElements of the logit and of the y and x short offsets at
that cell, ``row = cell // w`` and ``col = cell % w`` (read from constant float
tables indexed by the cell), then coordinates by the chosen convention (see
SinglePoseSettings).

Every op runs on onnxruntime-web's WebGPU execution providers (checked by
tests/test_runtimes.py): the int64 cell index is only ever an index (ArgMax,
GatherElements, Gather), never computed with (WebGPU has no int64 Div, Mod, Cast
or Concat and places them on the CPU), and the non-finite tests are comparisons
(no IsNaN, IsInf, Or, which have no WebGPU kernel).

Non-finite heads give defined outputs, never NaN keypoints (the numpy reference
``onnxpose.reference.single_pose`` implements the same rules):

* a NaN heatmap logit counts as ``-inf``: it never wins the ArgMax over a number; if every
  cell of a keypoint is NaN or ``-inf``, the first cell (row 0, column 0) is chosen and, with
  ``coordinates="stride"``, its score is ``sigmoid(-inf) = 0``. ``+inf`` is a valid logit
  (score 1). With ``coordinates="grid"`` the score is the chosen heatmap value itself, so an
  all-NaN keypoint scores ``-inf`` (``pose_score``, the mean, is then ``-inf`` too; it is
  NaN only if one keypoint scores ``+inf`` and another ``-inf``);
* a NaN or infinite short offset at the chosen cell counts as 0: the keypoint lies on the
  cell itself, so y and x are always finite.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.ordered_sum import summed
from onnxpose.spec import SinglePoseSettings, single_pose_outputs
from onnxpose.keypoints import NUM_KEYPOINTS

NCHW_FROM_NHWC = (0, 3, 1, 2)


def flatten_grid(b: GraphBuilder, field, channels: int, name: str, cells: int = -1):
    """[N,h,w,C] → [N,C,h*w].

    ``cells`` (h*w) makes a head whose runtime grid differs from the declared one fail in
    onnxruntime, instead of being decoded with the wrong grid width.
    """
    channels_first = b.transpose(field, NCHW_FROM_NHWC, f"{name}_nchw")
    return b.reshape(channels_first, [0, channels, cells], f"{name}_flat")


def nan_as_minus_inf(b: GraphBuilder, heatmaps_flat):
    """NaN logits → -inf, so that a NaN cell never wins the ArgMax (``x == x`` is false
    only for NaN)."""
    is_number = b.equal(heatmaps_flat, heatmaps_flat, "heatmaps_is_number")
    return b.where(is_number, heatmaps_flat, b.const(np.float32(-np.inf), "minus_inf"),
                   "heatmaps_nan_as_minus_inf")


def non_finite_as_zero(b: GraphBuilder, offsets, name: str):
    """NaN or ±inf offsets → 0 (the keypoint stays on its cell): ``|x| < inf`` is false
    exactly for NaN and ±inf."""
    magnitude = b.absolute(offsets, f"{name}_abs")
    finite = b.less(magnitude, b.const(np.float32(np.inf), f"{name}_inf"), f"{name}_is_finite")
    return b.where(finite, offsets, b.const(np.float32(0.0), f"{name}_zero"), f"{name}_finite")


def gather_at_cells(b: GraphBuilder, heatmaps_flat, offsets_flat):
    """Best cell per keypoint, its logit and its (y, x) offsets; each [N,17,1].

    NaN logits count as -inf and non-finite offsets as 0 (see the module docstring).
    """
    heatmaps_flat = nan_as_minus_inf(b, heatmaps_flat)
    cells = b.argmax(heatmaps_flat, axis=2, name="best_cell")
    logits = b.gather_elements(heatmaps_flat, cells, axis=2, name="best_logit")
    offsets_y_flat, offsets_x_flat = b.split(offsets_flat, [NUM_KEYPOINTS, NUM_KEYPOINTS], axis=1,
                                             name="short_offsets_yx")
    offset_y = b.gather_elements(offsets_y_flat, cells, axis=2, name="best_offset_y_raw")
    offset_x = b.gather_elements(offsets_x_flat, cells, axis=2, name="best_offset_x_raw")
    return (cells, logits, non_finite_as_zero(b, offset_y, "best_offset_y"),
            non_finite_as_zero(b, offset_x, "best_offset_x"))


def cell_to_row_col(b: GraphBuilder, cells, grid: tuple[int, int]):
    """``cells // w`` and ``cells % w`` as float32 [N,17,1], gathered from constant tables
    of every cell's row and column (exact, and no int64 arithmetic)."""
    grid_h, grid_w = grid
    row_of_cell, col_of_cell = np.divmod(np.arange(grid_h * grid_w), grid_w)
    rows = b.gather(b.const(row_of_cell.astype(np.float32), "row_of_cell"), cells, 0, "best_row")
    cols = b.gather(b.const(col_of_cell.astype(np.float32), "col_of_cell"), cells, 0, "best_col")
    return rows, cols


def append_single_pose_decoder(graph: gs.Graph, heatmaps: gs.Variable, short_offsets: gs.Variable,
                               input_hw: tuple[int, int], grid: tuple[int, int],
                               output_stride: int, settings: SinglePoseSettings,
                               prefix: str = "single_pose/") -> dict[str, gs.Variable]:
    """Append the decoder; heads are float32 NHWC. Returns the output tensors, named as
    ``onnxpose.spec.single_pose_outputs`` names them (the caller keeps source tensors of
    those names out of the way: ``attach.reserve_names``)."""
    b = GraphBuilder(graph, prefix)
    grid_h, grid_w = grid
    input_h, input_w = input_hw
    heatmaps_flat = flatten_grid(b, heatmaps, NUM_KEYPOINTS, "heatmaps", grid_h * grid_w)
    offsets_flat = flatten_grid(b, short_offsets, 2 * NUM_KEYPOINTS, "short_offsets", grid_h * grid_w)
    cells, logits, offset_y, offset_x = gather_at_cells(b, heatmaps_flat, offsets_flat)
    rows, cols = cell_to_row_col(b, cells, grid)

    if settings.coordinates == "stride":
        row_px = b.mul(rows, np.float32(output_stride), "row_px")
        col_px = b.mul(cols, np.float32(output_stride), "col_px")
        scores = b.sigmoid(logits, "score")
    else:  # "grid": row / (h - 1) * input_h, raw heatmap value as score
        row_px = b.mul(b.div(rows, np.float32(grid_h - 1), "row_unit"), np.float32(input_h), "row_px")
        col_px = b.mul(b.div(cols, np.float32(grid_w - 1), "col_unit"), np.float32(input_w), "col_px")
        scores = logits
    y = b.add(row_px, offset_y, "y")
    x = b.add(col_px, offset_x, "x")

    names = [spec.name for spec in single_pose_outputs(settings.layout)]
    if settings.layout == "movenet":
        y = b.div(y, np.float32(input_h), "y_normalized")
        x = b.div(x, np.float32(input_w), "x_normalized")
        keypoints = b.concat([y, x, scores], axis=2, name="keypoints_yx_score")
        outputs = [b.unsqueeze(keypoints, [1], names[0])]
    else:
        keypoints = b.concat([y, x, scores], axis=2, name=names[0])
        total = summed(b, b.squeeze(scores, [2], "scores_2d"), NUM_KEYPOINTS, False,
                       "pose_score_sum")
        outputs = [keypoints, b.div(total, np.float32(NUM_KEYPOINTS), names[1])]
    for name, tensor in zip(names, outputs):
        tensor.name = name  # the spec's output names, without the prefix
    return dict(zip(names, outputs))
