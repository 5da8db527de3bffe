"""The coral preset (``decode_multiple_poses_coral``): bilinear sampling in block units,
logits rank the candidates, soft keypoint NMS re-scores in decreasing instance score."""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.multi_pose.candidates import coral_logodds
from onnxpose.decoder.multi_pose.context import Context, Grid, batch_shape, row_offsets
from onnxpose.decoder.multi_pose.head_tables import HeadTable, lookup, per_keypoint
from onnxpose.decoder.multi_pose.queue_order import in_queue_order
from onnxpose.decoder.multi_pose.root_nms import accepted_roots
from onnxpose.decoder.multi_pose.scoring import instance_score, pack_poses, poses_tensor, select
from onnxpose.decoder.multi_pose.setup import setup
from onnxpose.decoder.multi_pose.walk import walk
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.ordered_sum import summed
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import MultiPoseSettings

K17 = NUM_KEYPOINTS
# Bilinear corners, in table column order: top-left, top-right, bottom-left, bottom-right,
# as (down, right) steps from the cell. Weights: (1 - ly, ly)[down] * (1 - lx, lx)[right].
CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def heat_values(gb: GraphBuilder, heatmaps):
    """What keypoint scores are sampled from: the logits (sigmoid after sampling)."""
    return heatmaps


def sample_bilinear(gb: GraphBuilder, points, table: HeadTable, base, coordinates: int, scale,
                    name, plus=None):
    """Bilinear samples (``coordinates`` values each, times ``scale``) of ``table`` at
    points [R,2] (inside the grid), at flat offsets ``base`` [R, 4 * coordinates], plus
    ``plus`` [R, coordinates] if given: [R, coordinates]."""
    cell = gb.floor(points, f"{name}/floor")
    frac = gb.sub(points, cell, f"{name}/frac")
    k = 4 * coordinates
    values = lookup(gb, table, cell, base, k, name)                                # [R, k]
    # corner weights (1 - ly, ly)[down] * (1 - lx, lx)[right], one column per value
    down = np.repeat([dy for dy, _ in CORNERS], coordinates)
    right = np.repeat([dx for _, dx in CORNERS], coordinates)
    weight_y = gb.gemm(frac, np.stack([2 * down - 1, 0 * down]).astype(np.float32),
                       (1 - down).astype(np.float32), f"{name}/weight_y")
    weight_x = gb.gemm(frac, np.stack([0 * right, 2 * right - 1]).astype(np.float32),
                       (1 - right).astype(np.float32), f"{name}/weight_x")
    weights = gb.mul(weight_y, weight_x, f"{name}/weights")
    weighted = gb.mul(values, weights, f"{name}/weighted")
    corner_sum = np.float32(scale) * np.tile(np.eye(coordinates, dtype=np.float32), (4, 1))
    if plus is None:
        return gb.matmul(weighted, corner_sum, f"{name}/value")
    return gb.gemm(weighted, corner_sum, plus, f"{name}/value_plus")


def displaced_position(gb: GraphBuilder, ctx: Context, points, table, base, upper, name):
    """Points [R,2] (blocks) moved by the bilinear sample of ``table``, clamped to the grid."""
    moved = sample_bilinear(gb, points, table, base, 2, 1 / np.float32(ctx.grid.stride), name,
                            plus=points)
    low = gb.relu(moved, f"{name}/clamped_lo")   # max(., 0)
    return gb.minimum(low, upper, f"{name}/clamped")


def follow_edges(gb: GraphBuilder, ctx: Context, start, mid_base, short_base, upper, name):
    """Points [R,2] (blocks) moved along their edges, then refined by the short offsets."""
    points = displaced_position(gb, ctx, start, ctx.mid, mid_base, upper, f"{name}mid")
    for s in range(ctx.settings.refine_steps):
        points = displaced_position(gb, ctx, points, ctx.short, short_base, upper,
                                    f"{name}refine{s}")
    return points


def decode_multiple_poses_coral(gb: GraphBuilder, grid: Grid, settings: MultiPoseSettings,
                                heads: dict, finite: bool = False):
    """The coral preset's outputs (see ``scoring.pack_poses``)."""
    radius = np.float32(np.float32(settings.nms_radius) / np.float32(grid.stride))
    squared_radius = np.float32(radius * radius)
    ctx, roots = setup(gb, grid, settings, heads, coral_logodds(settings.score_threshold),
                       heat_values, CORNERS, finite)
    keypoint = roots.keypoint
    refined = gb.add(roots.cell_yx, gb.div(roots.offsets, np.float32(grid.stride),
                                           "roots/short_blocks"), "roots/refined")
    hi = np.array([grid.h - 1, grid.w - 1], np.float32)
    root_points = gb.minimum(gb.maximum(refined, np.float32(0), "roots/points_lo"), hi,
                             "roots/points")

    points = walk(gb, ctx, root_points, keypoint, follow_edges)
    flat = gb.reshape(points, [-1, 2], "score/points")
    heat_base = per_keypoint(gb, ctx.heat.offsets([0], CORNERS), keypoint, "score/heat_base")
    logits = sample_bilinear(gb, flat, ctx.heat, heat_base, 1, 1, "score/sample")
    logits = gb.reshape(logits, batch_shape(gb, ctx.batch, K17), "score/logits")
    keypoint_scores = gb.sigmoid(logits, "score/keypoint_scores")
    instance = gb.div(summed(gb, keypoint_scores, K17, True, "score/sum"), np.float32(K17),
                      "score/instance")

    good = gb.greater_or_equal(instance, np.float32(settings.score_threshold), "nms/score_ok")
    base = gb.cast(gb.unsqueeze(gb.logical_and(roots.valid, good, "nms/base_mask"), [-1],
                                "nms/base_3d"), np.float32, "nms/base")
    close = start = None
    if roots.queue is not None:          # the heap's tie order, where it changes the poses
        ordered = in_queue_order(
            gb, ctx, roots, points, root_points, base, squared_radius,
            [points, root_points, keypoint, keypoint_scores, instance, base], instance)
        (points, root_points, keypoint, keypoint_scores, instance, base), close, start = ordered
    keep = accepted_roots(gb, ctx, points, root_points, keypoint, base, squared_radius, close,
                          start)
    return soft_keypoint_nms(gb, ctx, poses_tensor(gb, points, keypoint_scores), instance, keep,
                             squared_radius)


def soft_keypoint_nms(gb: GraphBuilder, ctx: Context, poses, instance, keep, squared_radius):
    """Re-score the kept poses in decreasing instance score order, sort again and drop
    those below the threshold."""
    by_instance, (poses, instance) = select(
        gb, ctx, instance, keep, [(poses, [K17, 3]), (instance, [])],
        row_offsets(gb, ctx.batch, ctx.k, "batch/candidate_rows"), "by_instance")
    rescored = instance_score(gb, ctx, poses, by_instance, squared_radius, True, "rescore")
    still_good = gb.greater_or_equal(rescored, np.float32(ctx.settings.score_threshold),
                                     "final/score_ok")
    mask = gb.logical_and(by_instance, still_good, "final/mask")
    final, (poses, rescored) = select(
        gb, ctx, rescored, mask, [(poses, [K17, 3]), (rescored, [])],
        row_offsets(gb, ctx.batch, ctx.m, "batch/pose_rows"), "by_rescored")
    return pack_poses(gb, ctx, poses, rescored, final, np.float32(ctx.grid.stride))
