"""The tree walk (``decode_pose_coral`` / ``decode_pose_tfjs``), for all K roots at once.

A pose is grown from each of the K candidates at once (the walk of a root does
not depend on the other roots). The walk is a fixed schedule of 8 steps of 3
edges each (``skeleton.walk_schedule``: per root keypoint, highest subtree
first, parents before children), run as one ``Loop`` whose body is one step
(so the graph holds a step's nodes once); the per-step tables (source slot,
target keypoint, displacement channels) are constants gathered by root keypoint,
so each step is one batch of [N * K * 3] points. How one edge is followed is
the preset's (``follow_edges``), built into the Loop body's own builder. With
``control_flow`` none the D steps are unrolled instead (D copies of the step's nodes,
each reading its step's tables at a constant index).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from onnxpose.decoder.multi_pose.context import Context, batch_shape, upper_bounds
from onnxpose.decoder.multi_pose.head_tables import SHORT_X
from onnxpose.decoder.multi_pose.skeleton import walk_tables
from onnxpose.decoder.ops import GraphBuilder, LoopBody

#: ``follow_edges(gb, ctx, start [R,2], displacement base [R,k], short base [R,k],
#: upper [R,2], name) -> points [R,2]``: one preset's move along the edges.
FollowEdges = Callable


def step_tables(gb: GraphBuilder, ctx: Context, keypoint):
    """The walk's per-step tables for every candidate, step axis first (a step's table is
    then one contiguous block): source positions in the slot buffer [D,N,K,W,2],
    short-offset and displacement lookup offsets [D,R,k] (R = N*K*W rows, k = 2 *
    corners); the (root, keypoint) -> slot table [17,17]; and the number of steps D."""
    width = ctx.grid.width
    tables = walk_tables(width, ctx.edge_channels)
    depth = len(tables["source"])
    # before step d the buffer holds (D - d) * W idle slots, then slots 0 .. d * W
    source = tables["source"] + ((depth - np.arange(depth)) * width)[:, None, None]
    source = np.repeat(source[..., None], 2, -1)                                # [D,17,W,2]
    source = gb.gather(gb.const(source, "walk/source_table"), keypoint, 1, "walk/source")
    k = 2 * len(ctx.corners)
    target = tables["target"]
    short_channels = np.stack([target, target + SHORT_X], -1)
    mid_channels = np.stack([tables["channel_y"], tables["channel_x"]], -1)
    bases = []
    for name, table, channels in (("short", ctx.short, short_channels),
                                  ("displacement", ctx.mid, mid_channels)):
        per_step = table.offsets_at(channels, ctx.corners)                     # [D,17,W,k]
        picked = gb.gather(gb.const(per_step, f"walk/{name}_base__table"), keypoint, 1,
                           f"walk/{name}_base__nk")                           # [D,N,K,W,k]
        bases.append(gb.reshape(picked, [depth, -1, k], f"walk/{name}_base"))
    return source, bases[0], bases[1], tables["order"], depth


def walk(gb: GraphBuilder, ctx: Context, root_points, keypoint, follow_edges: FollowEdges):
    """All 17 keypoints of every candidate pose: [N,K,17,2].

    The walk's steps run as one ``Loop``, so the graph holds one copy of a step's
    nodes. A step's points are grown from points of earlier steps, kept in a slot
    buffer of fixed size [N,K,1+D*W,2] that each step shifts by W slots (drops W idle
    ones at the front, appends its own), so that after the last step it holds the
    root and the D steps' slots in schedule order.
    """
    width = ctx.grid.width
    source, short_base, mid_base, order, depth = step_tables(gb, ctx, keypoint)
    upper = upper_bounds(gb, ctx.grid, gb.gather(short_base, gb.scalar(0, np.int64), 0,
                                                 "walk/rows"),
                         2 * len(ctx.corners), "walk/upper")
    moved_shape = batch_shape(gb, ctx.batch, width, 2)
    slots = gb.pad(gb.unsqueeze(root_points, [2], "walk/root_slot"),
                   [0, 0, depth * width, 0, 0, 0, 0, 0], "walk/slots0")         # [N,K,S,2]

    def walk_step(b: GraphBuilder, step, slots_in):
        start = b.gather_elements(slots_in, b.gather(source, step, 0, "source"), 2,
                                  "start_")                                     # [N,K,W,2]
        moved = follow_edges(b, ctx, b.reshape(start, [-1, 2], "start"),
                             b.gather(mid_base, step, 0, "displacement_base"),
                             b.gather(short_base, step, 0, "short_base"), upper, "")
        moved = b.reshape(moved, moved_shape, "moved")
        kept = b.slice(slots_in, [width], [1 + depth * width], [2], "kept")
        return b.concat([kept, moved], 2, "slots_out")

    if ctx.settings.control_flow == "none":  # unrolled: one copy of the step per step
        for d in range(depth):
            slots = walk_step(GraphBuilder(gb.graph, gb.name(f"walk/step{d}/"), gb.opset),
                              gb.scalar(d, np.int64, f"walk/step{d}_index"), slots)
    else:
        body = LoopBody(gb, "walk/step", [("slots", np.float32)])
        slots_out = walk_step(body.b, body.step, body.carried[0])
        body_graph = body.finish([slots_out], [np.float32])
        (slots,) = gb.loop(body_graph, gb.scalar(depth, np.int64, "walk/steps"),
                           gb.scalar(True, np.bool_, "walk/always"), [slots], "walk/loop")
    order = np.repeat(order[..., None], 2, -1)
    order = gb.gather(gb.const(order, "walk/order_table"), keypoint, 0, "walk/order")
    return gb.gather_elements(slots, order, 2, "walk/points")
