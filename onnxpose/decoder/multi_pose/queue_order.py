"""The heap's tie order, applied after the walk (``tie_order="heap"``, every candidate tried).

Coral and TF.js pop their roots from a binary heap, so candidates with equal scores
come out in an order set by the heap's history (``heap_order``, ``tfjs_heap_order``
replay it, a push and a pop per candidate). But a root's pose does not depend on when
it is tried: only which roots the greedy NMS accepts and the order of the accepted
poses do. So the candidates are walked in scan tie order, the NMS is run once in that
order, and each image asks the heap only for as many pops in its order as can change
its poses (``pops_asked``):

* all of them (through its lowest tie) when two *free* candidates of equal score are
  close: the root of one within the NMS radius of the same keypoint of the other's pose
  (``close_to_poses``). Free: a valid root (``base``) that no accepted candidate of a
  higher score suppresses (those are rejected in every order);
* else, through the lowest group of equal scores with two accepted candidates whose
  order shows: always for TF.js (poses come out, and are scored against the poses
  before them, in decoding order); for Coral (poses re-scored and sorted by instance
  score) when their instance scores are equal or the cap on poses falls between them;
* else none: one push and one pop for the whole batch.

Why that is exact: the heap pops a maximum of what it holds, so its order is the scan
tie order with each group of equal scores permuted, and its first pops of a group end
are the same candidates best first. Group by group, best first: if the groups above
are accepted alike in every order, a candidate a higher accepted one suppresses is
rejected in every order, and the free ones of the group are accepted when valid unless
one suppresses another, which none can if no two are close; so the group is accepted
alike too, and every accepted pose keeps its order except within a group, where it
shows only as said. (The numpy references decode in the heap's order directly.)

The candidates are then permuted into the heap's order (``order``), together with
everything already computed per candidate and the closeness of every pair, and the NMS
runs again, from the scan order's answer permuted alike: that is its answer unless
acceptance depends on the order, so one pass confirms it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from onnxpose.decoder.multi_pose.context import Context, earlier
from onnxpose.decoder.multi_pose.root_nms import close_to_poses, greedy_accept, within_nms_radius
from onnxpose.decoder.ops import GraphBuilder


class QueueOrder(NamedTuple):
    """What ``in_queue_order`` gives, all in the heap's pop order."""

    rows: list          # the rows asked for, permuted
    close: object       # close_to_poses [N,K,K] bool, rows and columns permuted
    accepted: object    # the scan-order NMS's accepted candidates [N,K,1] float, permuted


def in_queue_order(gb: GraphBuilder, ctx: Context, roots, points, root_points, base,
                   squared_radius, rows: list, instance=None) -> QueueOrder:
    """``rows`` (tensors [N,K,...] in scan tie order) in the heap's pop order, with what the
    NMS in that order can start from (``QueueOrder``).

    ``roots``: the ``setup.Roots`` (with its ``queue``); ``points`` [N,K,17,2] and
    ``root_points`` [N,K,2]: the walked poses and roots; ``base`` [N,K,1] float: the
    candidates that may be accepted; ``instance`` [N,K]: Coral's instance scores (None:
    TF.js)."""
    qb = GraphBuilder(gb.graph, gb.name("queue/"), gb.opset)
    close = close_to_poses(qb, points, root_points, roots.keypoint, squared_radius)
    suppression = within_nms_radius(qb, ctx, points, root_points, roots.keypoint,
                                    squared_radius, close)
    accepted = greedy_accept(qb, ctx, suppression, base)                     # [N,K,1]
    asked = pops_asked(qb, ctx, roots, close, base, accepted, instance)      # [N]
    queue = roots.queue
    popped, taken = queue.replay(gb, queue.scores, queue.is_candidate, queue.count, ctx.k,
                                 queue.size, "candidates/heap", asked,
                                 (queue.best, roots.index))                # [N,K] flat
    at = order(qb, ctx, roots.index, popped, taken)                          # [N,K]
    permuted = [permute_rows(qb, row, at, f"row{i}") for i, row in enumerate(rows)]
    return QueueOrder(permuted, permute_pairs(qb, close, at, "close"),
                      permute_rows(qb, accepted, at, "accepted"))


def permute_rows(gb: GraphBuilder, row, at, name):
    """``row`` [N,K,...] with row i taken from row ``at`` [N,K] int64 i, per image."""
    return gb.op("GatherND", [row, gb.unsqueeze(at, [-1], f"{name}_at")], name,
                 {"batch_dims": 1})


def permute_pairs(gb: GraphBuilder, pairs, at, name):
    """``pairs`` [N,K,K] with rows and columns both permuted by ``at`` [N,K] int64."""
    rows = permute_rows(gb, pairs, at, f"{name}_rows")
    columns = gb.op("Expand", [gb.unsqueeze(at, [1], f"{name}_at_j"),
                               gb.op("Shape", [pairs], f"{name}_shape")], f"{name}_columns")
    return gb.gather_elements(rows, columns, 2, name)


def pops_asked(gb: GraphBuilder, ctx: Context, roots, close, base, accepted, instance):
    """[N] int64: how many of each image's first pops must be in the heap's order (see the
    module docstring). ``close`` [N,K,K] (``close_to_poses``), ``base`` and ``accepted``
    (greedy NMS in scan tie order) [N,K,1] float, ``instance`` [N,K] or None."""
    score = roots.queue.best                                                   # [N,K]
    score_i, score_j = gb.unsqueeze(score, [2], "score_i"), gb.unsqueeze(score, [1], "score_j")
    tied = gb.logical_and(gb.equal(score_i, score_j, "equal_score"),
                          earlier(gb, ctx.k, "before"), "tied")               # [N,i,j], j < i
    higher = gb.greater(score_j, score_i, "higher")
    is_accepted = gb.greater(accepted, np.float32(0.5), "is_accepted")         # [N,K,1]
    accepted_j = gb.transpose(is_accepted, [0, 2, 1], "accepted_j")            # [N,1,K]
    depends = acceptance_depends(gb, ctx, tied, higher, close, base, accepted_j)
    shows = order_shows(gb, ctx, tied, accepted, is_accepted, accepted_j, instance)
    # a group's end: the candidates at least as good as it (scan tie order is best first)
    group_end = gb.reduce_sum(gb.cast(gb.greater_or_equal(score_j, score_i, "at_least"),
                                      np.float32, "at_least_f"), [2], "group_end",
                              keepdims=True)                                  # [N,K,1]
    through = gb.reduce_max(gb.where(shows, group_end, np.float32(0), "shown_end"), [1, 2],
                            "order_through")                                  # [N]
    any_depends = gb.reduce_max(gb.cast(depends, np.float32, "depends_f"), [1, 2], "depends")
    asked = gb.where(gb.greater(any_depends, np.float32(0.5), "any_depends"),
                     gb.cast(ctx.k, np.float32, "k_f"), through, "asked_f")
    return gb.cast(asked, np.int64, "asked")


def acceptance_depends(gb: GraphBuilder, ctx: Context, tied, higher, close, base,
                       accepted_j):
    """[N,K,K] bool: tied candidates i, j (``tied``) whose acceptance can depend on their
    order: both free (valid roots that no accepted candidate of a higher score, ``higher``
    [N,K,K], suppresses) and close either way, before the cap is full. ``accepted_j``
    [N,1,K] bool: the candidates accepted in scan tie order."""
    higher = gb.logical_and(higher, accepted_j, "higher_accepted")
    blocked = gb.reduce_max(gb.cast(gb.logical_and(close, higher, "blocks"), np.float32,
                                    "blocks_f"), [2], "blocked", keepdims=True)  # [N,K,1]
    free = gb.logical_and(gb.greater(base, np.float32(0.5), "is_base"),
                          gb.less(blocked, np.float32(0.5), "unblocked"), "free")   # [N,K,1]
    both_free = gb.logical_and(free, gb.transpose(free, [0, 2, 1], "free_j"), "both_free")
    near = gb.op("Or", [close, gb.transpose(close, [0, 2, 1], "close_t")], "near")
    # a group after the cap is full (the accepted ones of higher scores) changes nothing
    above = gb.reduce_sum(gb.cast(higher, np.float32, "higher_f"), [2], "accepted_above",
                          keepdims=True)                                       # [N,K,1]
    open_ = gb.less(above, np.float32(ctx.settings.max_poses), "cap_open")
    return gb.logical_and(gb.logical_and(tied, open_, "tied_open"),
                          gb.logical_and(both_free, near, "free_near"), "acceptance_depends")


def order_shows(gb: GraphBuilder, ctx: Context, tied, accepted, is_accepted, accepted_j,
                instance):
    """[N,K,K] bool: tied candidates i, j both accepted whose order shows in the output: the
    earlier one j among the first max_poses accepted and, for Coral (``instance`` [N,K]
    not None: poses sorted by instance score), equal instance scores or i past the cap.
    ``accepted`` [N,K,1] float, ``is_accepted`` [N,K,1] and ``accepted_j`` [N,1,K] bool:
    the candidates accepted in scan tie order."""
    cap = np.float32(ctx.settings.max_poses)
    rank = gb.cumsum(gb.squeeze(accepted, [2], "accepted_2d"), 1, "accepted_rank")   # [N,K]
    j_shown = gb.less_or_equal(gb.unsqueeze(rank, [1], "rank_j"), cap, "j_shown")
    both = gb.logical_and(is_accepted, accepted_j, "both_accepted_")
    shows = gb.logical_and(gb.logical_and(tied, j_shown, "tied_shown"), both, "both_accepted")
    if instance is None:            # TF.js: poses in decoding order, scored against earlier
        return shows
    i_hidden = gb.greater(gb.unsqueeze(rank, [2], "rank_i"), cap, "i_hidden")
    same = gb.equal(gb.unsqueeze(instance, [2], "instance_i"),
                    gb.unsqueeze(instance, [1], "instance_j"), "same_instance")
    return gb.logical_and(shows, gb.op("Or", [same, i_hidden], "shows_"), "order_shows")


def order(gb: GraphBuilder, ctx: Context, index, popped, taken):
    """[N,K] int64: for each pop, the position of the popped candidate in the scan tie
    order ``index`` [N,K] (flat); the positions themselves where the heap is empty
    (``taken`` [N,K] false)."""
    same = gb.equal(gb.unsqueeze(popped, [2], "popped"), gb.unsqueeze(index, [1], "scanned"),
                    "same_candidate")                                          # [N,K,K]
    position = gb.argmax(gb.cast(same, np.float32, "same_f"), 2, "position", keepdims=False)
    rank = gb.range_(gb.scalar(0, np.int64), gb.squeeze(ctx.k, [0], "k"),
                     gb.scalar(1, np.int64), "rank")
    return gb.where(taken, position, rank, "order")
