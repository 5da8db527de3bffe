"""The tfjs preset (``decode_multiple_poses_tfjs``): nearest-cell sampling in pixels, part
scores are sigmoids of the logits, each pose scored against the poses before it, in
decoding order."""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.multi_pose.candidates import is_root_keypoint, logit
from onnxpose.decoder.multi_pose.context import (Context, Grid, batch_shape, row_offsets,
                                                 upper_bounds)
from onnxpose.decoder.multi_pose.head_tables import by_root_keypoint, lookup, per_keypoint
from onnxpose.decoder.multi_pose.queue_order import in_queue_order
from onnxpose.decoder.multi_pose.root_nms import accepted_roots
from onnxpose.decoder.multi_pose.scoring import instance_score, pack_poses, poses_tensor, select
from onnxpose.decoder.multi_pose.setup import setup
from onnxpose.decoder.multi_pose.walk import walk
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import MultiPoseSettings

K17 = NUM_KEYPOINTS
CORNERS = ((0, 0),)


def heat_values(gb: GraphBuilder, heatmaps):
    """What keypoint scores are sampled from: the logits (TF.js samples the part scores,
    their sigmoids; the sigmoid of a sampled logit is the same value, and taking it after
    the lookup saves a pass over the whole heatmaps)."""
    return heatmaps


def strided_index_near_point(gb: GraphBuilder, ctx: Context, points, upper, name):
    """``getStridedIndexNearPoint`` as float (row, col): [R,2]."""
    scaled = gb.div(points, np.float32(ctx.grid.stride), f"{name}/scaled")
    rounded = gb.floor(gb.add(scaled, np.float32(0.5), f"{name}/half_up"), f"{name}/rounded")
    low = gb.maximum(rounded, np.float32(0), f"{name}/clamp_lo")
    return gb.minimum(low, upper, f"{name}/cell")


def traverse_to_target_keypoint(gb: GraphBuilder, ctx: Context, start, mid_base, short_base,
                                upper, name):
    """Points [R,2] (pixels) moved along their edges, then refined by the short offsets."""
    stride = np.float32(ctx.grid.stride)
    cell = strided_index_near_point(gb, ctx, start, upper, f"{name}mid")
    displacement = lookup(gb, ctx.mid, cell, mid_base, 2, f"{name}mid")
    points = gb.add(start, displacement, f"{name}displaced")
    for s in range(ctx.settings.refine_steps):
        cell = strided_index_near_point(gb, ctx, points, upper, f"{name}refine{s}")
        offsets = lookup(gb, ctx.short, cell, short_base, 2, f"{name}refine{s}")
        # cell * stride + offsets (a Mul and an Add: cheaper than a Gemm on many rows)
        points = gb.add(gb.mul(cell, stride, f"{name}refine{s}/cell_px"), offsets,
                        f"{name}refine{s}/points")
    return points


def decode_multiple_poses_tfjs(gb: GraphBuilder, grid: Grid, settings: MultiPoseSettings,
                               heads: dict, finite: bool = False):
    """The tfjs preset's outputs (see ``scoring.pack_poses``)."""
    squared_radius = np.float32(np.float32(settings.nms_radius) ** 2)
    ctx, roots = setup(gb, grid, settings, heads, logit(settings.score_threshold), heat_values,
                       CORNERS, finite)
    keypoint = roots.keypoint
    root_points = gb.add(gb.mul(roots.cell_yx, np.float32(grid.stride), "roots/cell_px"),
                         roots.offsets, "roots/points")
    cells = gb.reshape(roots.cell_yx, [-1, 2], "roots/score_cells")
    score_base = by_root_keypoint(gb, np.arange(K17)[:, None], keypoint, "roots/score_base")
    root_scores = lookup(gb, ctx.heat, cells, score_base, 1, "roots/score")
    root_scores = gb.reshape(root_scores, batch_shape(gb, ctx.batch, 1), "roots/scores")

    points = walk(gb, ctx, root_points, keypoint, traverse_to_target_keypoint)
    flat = gb.reshape(points, [-1, 2], "score/points")
    cell = strided_index_near_point(gb, ctx, flat, upper_bounds(gb, grid, flat, 2, "score/upper"),
                                    "score")
    part_base = per_keypoint(gb, np.zeros(1, np.float32), keypoint, "score/part_base")
    sampled = lookup(gb, ctx.heat, cell, part_base, 1, "score")
    sampled = gb.reshape(sampled, batch_shape(gb, ctx.batch, K17), "score/sampled")
    is_root = is_root_keypoint(gb, keypoint)
    keypoint_scores = gb.sigmoid(gb.where(is_root, root_scores, sampled, "score/keypoint_logits"),
                                 "score/keypoint_scores")

    base = gb.cast(gb.unsqueeze(roots.valid, [-1], "nms/base_3d"), np.float32, "nms/base")
    close = start = None
    if roots.queue is not None:          # the heap's tie order, where it changes the poses
        ordered = in_queue_order(gb, ctx, roots, points, root_points, base, squared_radius,
                                 [points, root_points, keypoint, keypoint_scores, base])
        (points, root_points, keypoint, keypoint_scores, base), close, start = ordered
    keep = accepted_roots(gb, ctx, points, root_points, keypoint, base, squared_radius, close,
                          start)
    rank = gb.range_(gb.scalar(0, np.int64), gb.squeeze(ctx.k, [0], "poses/k"),
                     gb.scalar(1, np.int64), "poses/rank")
    decode_order = gb.neg(gb.cast(rank, np.float32, "poses/rank_f"), "poses/decode_order")
    kept, (poses,) = select(gb, ctx, decode_order, keep,
                            [(poses_tensor(gb, points, keypoint_scores), [K17, 3])],
                            row_offsets(gb, ctx.batch, ctx.k, "batch/candidate_rows"), "kept")
    pose_scores = instance_score(gb, ctx, poses, kept, squared_radius, False, "instance")
    return pack_poses(gb, ctx, poses, pose_scores, kept, np.float32(1))
