"""Scoring and packing shared by both presets: pick rows by a key, score each pose
against the poses before it (``instance_score``, the core of Coral's
``soft_keypoint_nms``), and pack the poses into the fixed outputs (``pack_poses``)."""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.multi_pose.context import Context, earlier
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.ordered_sum import summed
from onnxpose.keypoints import NUM_KEYPOINTS

K17 = NUM_KEYPOINTS


def select(gb: GraphBuilder, ctx: Context, key, mask, tensors, batch_rows, name):
    """The ``m`` best rows by ``key`` among ``mask`` [N,rows]: (mask [N,m], gathered tensors).

    ``tensors``: (tensor [N,rows,*rest], rest); equal keys keep their order.
    """
    _, order = gb.topk(gb.where(mask, key, np.float32(-np.inf), f"{name}/key"), ctx.m, 1,
                       f"{name}/topk")
    rows = gb.add(order, batch_rows, f"{name}/rows")
    picked = [gb.gather(gb.reshape(t, [-1, *rest], f"{name}/flat{i}"), rows, 0,
                        f"{name}/gathered{i}")
              for i, (t, rest) in enumerate(tensors)]
    return gb.gather_elements(mask, order, 1, f"{name}/mask"), picked


def instance_score(gb: GraphBuilder, ctx: Context, poses, valid, squared_radius, decreasing,
                   name):
    """Sum of keypoint scores not within the radius of an earlier valid pose, / 17: [N,m];
    added in decreasing order (Coral) or keypoint order (TF.js), see ``ordered_sum``."""
    points, scores = gb.split(poses, [2, 1], -1, f"{name}/split")
    delta = gb.sub(gb.unsqueeze(points, [2], f"{name}/points_i"),
                   gb.unsqueeze(points, [1], f"{name}/points_j"), f"{name}/delta")
    squared = gb.reduce_sum(gb.mul(delta, delta, f"{name}/delta_sq"), [-1],
                            f"{name}/squared_distance")                      # [N, i, j, 17]
    close = gb.less_or_equal(squared, np.float32(squared_radius), f"{name}/close")
    before = gb.unsqueeze(earlier(gb, ctx.m, f"{name}/earlier_"), [2], f"{name}/earlier")
    earlier_valid = gb.logical_and(before, gb.unsqueeze(valid, [1, 3], f"{name}/valid_j"),
                                   f"{name}/earlier_valid")
    hidden = gb.cast(gb.logical_and(close, earlier_valid, f"{name}/hidden_by_j"), np.float32,
                     f"{name}/hidden_by_j_f")
    hidden = gb.reduce_max(hidden, [2], f"{name}/hidden")                    # [N, i, 17]
    counted = gb.mul(gb.squeeze(scores, [3], f"{name}/scores"),
                     gb.sub(np.float32(1), hidden, f"{name}/visible"), f"{name}/counted")
    return gb.div(summed(gb, counted, K17, decreasing, f"{name}/sum"), np.float32(K17),
                  f"{name}/score")


def poses_tensor(gb: GraphBuilder, points, keypoint_scores):
    """[N,K,17,3]: (y, x, score) of every candidate pose."""
    return gb.concat([points, gb.unsqueeze(keypoint_scores, [-1], "poses/scores_")], -1,
                     "poses/all")


def pack_poses(gb: GraphBuilder, ctx: Context, poses, scores, valid, scale):
    """Zero the invalid rows, pad to max_poses, count."""
    keypoints = gb.mul(poses, np.array([scale, scale, 1], np.float32), "out/scaled")
    keypoints = gb.where(gb.unsqueeze(valid, [2, 3], "out/valid_4d"), keypoints,
                         np.float32(0), "out/keypoints_m")
    scores = gb.where(valid, scores, np.float32(0), "out/pose_scores_m")
    pad = gb.sub(np.array([ctx.settings.max_poses], np.int64), ctx.m, "out/pad")
    zeros = np.zeros(5, np.int64)
    keypoints = gb.pad(keypoints, gb.concat([zeros, pad, zeros[:2]], 0, "out/keypoints_pads"),
                       "out/keypoints_padded", value=None)
    scores = gb.pad(scores, gb.concat([zeros[:3], pad], 0, "out/pose_scores_pads"),
                    "out/pose_scores_padded", value=None)
    count = gb.reduce_sum(gb.cast(valid, np.int32, "out/valid_i32"), [1], "out/count")
    return {"keypoints": gb.identity(keypoints, "keypoints"),
            "pose_scores": gb.identity(scores, "pose_scores"),
            "pose_count": gb.identity(count, "pose_count")}
