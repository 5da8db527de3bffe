"""Greedy root NMS (``within_nms_radius``, for all K roots at once).

Candidate i is accepted when it is valid (Coral: and its instance score reaches
the threshold) and its root is not within ``nms_radius`` of the same keypoint
of an accepted candidate j < i. This triangular recurrence is solved as the
fixed point of ``accepted = base & !(suppression @ accepted)`` over a K x K
suppression matrix: each pass settles at least one more leading candidate.
Two passes run as plain nodes; a ``Loop`` then runs further passes until
nothing changes: at least one (the third, which usually finds the fixed point;
a pass at the fixed point changes nothing), never more than K + 1. (The Loop
never runs zero times: OpenVINO 2025.4, the one inside onnxruntime's OpenVINO
EP, returns an empty tensor from a Loop whose condition starts false.) The
first ``max_poses`` accepted candidates are kept. The passes may start from any guess
(``start``) instead of ``base``: the argument below does not depend on the start, and from
the answer itself one pass finds nothing to change.

Without control flow (``control_flow`` none) exactly K passes run, K the static
number of candidates. That they reach the fixed point: the suppression matrix is
strictly lower triangular (j < i), so candidate i's value after a pass depends only
on candidates j < i before it. Candidate 0 is never suppressed, so it is final after
pass 1; if candidates 0..p-1 hold their final (greedy) values after pass p, then in
pass p + 1 candidate p is computed from final values only, so it is final too. By
induction all K are final after K passes, and further passes change nothing (the
value computed from final inputs is the greedy one, which is the fixed point).
"""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.multi_pose.context import Context, earlier
from onnxpose.decoder.ops import GraphBuilder, LoopBody
from onnxpose.keypoints import NUM_KEYPOINTS

K17 = NUM_KEYPOINTS


def close_to_poses(gb: GraphBuilder, points, root_points, keypoint, squared_radius):
    """[N,K,K] bool: root i lies within the radius of keypoint k_i of pose j (any j).
    ``keypoint`` [N,K] int64: candidate i's keypoint k_i."""
    by_keypoint = gb.reshape(gb.transpose(points, [0, 2, 3, 1], "nms/points_by_keypoint"),
                             [0, K17, -1], "nms/points_by_keypoint_flat")      # [N,17,(yx,j)]
    # row k_i of each image's table, for every i (a batched row gather: K x 2K values, not
    # the K x 17 x 2K products of a one-hot MatMul)
    rows = gb.op("GatherND", [by_keypoint, gb.unsqueeze(keypoint, [-1], "nms/root_keypoint")],
                 "nms/same_part_flat", {"batch_dims": 1})                       # [N,K,(yx,j)]
    same_part = gb.reshape(rows, [0, 0, 2, -1],
                           "nms/same_part_points")   # [n, i, :, j] = points[n, j, k_i]
    # [N,K,2,1]: a scalar broadcast along the contiguous j axis (fast in onnxruntime)
    delta = gb.sub(same_part, gb.unsqueeze(root_points, [3], "nms/root_"), "nms/delta")
    squared = gb.reduce_sum(gb.mul(delta, delta, "nms/delta_sq"), [2], "nms/squared_distance")
    return gb.less_or_equal(squared, np.float32(squared_radius), "nms/close")


def within_nms_radius(gb: GraphBuilder, ctx: Context, points, root_points, keypoint,
                      squared_radius, close=None):
    """[N,K,K] float: root i lies within the radius of keypoint k_i of pose j < i.
    ``keypoint`` [N,K] int64: candidate i's keypoint k_i; ``close``: ``close_to_poses``
    if already computed."""
    if close is None:
        close = close_to_poses(gb, points, root_points, keypoint, squared_radius)
    before = earlier(gb, ctx.k, "nms/earlier")
    return gb.cast(gb.logical_and(close, before, "nms/close_earlier"), np.float32,
                   "nms/suppression")


def greedy_pass(gb: GraphBuilder, suppression, base, accepted, name):
    """One pass: (new accepted [N,K,1], whether anything changed (bool scalar))."""
    hits = gb.matmul(suppression, accepted, f"{name}/suppressed_by")
    updated = gb.where(gb.greater(hits, np.float32(0.5), f"{name}/is_suppressed"),
                       np.float32(0), base, f"{name}/accepted")
    delta = gb.op("Abs", [gb.sub(updated, accepted, f"{name}/delta")], f"{name}/abs_delta")
    change = gb.reduce_max(delta, [0, 1, 2], f"{name}/max_change")
    return updated, gb.greater(change, gb.scalar(0.5, np.float32), f"{name}/changed")


def greedy_accept(gb: GraphBuilder, ctx: Context, suppression, base, unrolled: int = 2,
                  start=None):
    """Fixed point of ``accepted = base & !(suppression @ accepted)``: [N,K,1] float.

    The passes start from ``start`` ([N,K,1] float, a guess of the answer; default
    ``base``); ``unrolled`` passes run as plain nodes; a ``Loop`` (its body built by its own
    builder) runs the further passes, at least one, until one changes nothing.
    """
    accepted = base if start is None else start
    if ctx.settings.control_flow == "none":
        # K passes (static K): pass p settles candidate p (see the module docstring)
        for i in range(ctx.grid.k):
            accepted, _ = greedy_pass(gb, suppression, base, accepted, f"nms/pass{i}")
        return accepted
    for i in range(unrolled):
        accepted, _ = greedy_pass(gb, suppression, base, accepted, f"nms/pass{i}")
    body = LoopBody(gb, "nms/greedy", [("accepted", np.float32)])
    updated, cond_out = greedy_pass(body.b, suppression, base, body.carried[0], "pass")
    body_graph = body.finish([updated], [np.float32], cond=cond_out)
    (final,) = gb.loop(body_graph, gb.scalar(ctx.grid.k + 1, np.int64, "nms/max_passes"),
                       gb.scalar(True, np.bool_, "nms/at_least_once"), [accepted],
                       "nms/greedy")
    return final


def keep_first(gb: GraphBuilder, ctx: Context, accepted):
    """The first ``max_poses`` accepted candidates: [N,K] bool."""
    rank = gb.cumsum(accepted, 1, "nms/accepted_rank")
    under_cap = gb.less_or_equal(rank, np.float32(ctx.settings.max_poses), "nms/under_cap")
    is_accepted = gb.greater(accepted, np.float32(0.5), "nms/is_accepted")
    return gb.squeeze(gb.logical_and(is_accepted, under_cap, "nms/keep_"), [2], "nms/keep")


def accepted_roots(gb: GraphBuilder, ctx: Context, points, root_points, keypoint, base,
                   squared_radius, close=None, start=None):
    """The greedy NMS as a whole: the kept candidates [N,K] bool (``keypoint`` [N,K]: each
    candidate's keypoint). ``close``: ``close_to_poses`` if already computed; ``start``: a
    guess of the accepted candidates [N,K,1] float (its passes then start there, none
    unrolled)."""
    suppression = within_nms_radius(gb, ctx, points, root_points, keypoint, squared_radius,
                                    close)
    unrolled = 2 if start is None else 0
    return keep_first(gb, ctx, greedy_accept(gb, ctx, suppression, base, unrolled, start))
