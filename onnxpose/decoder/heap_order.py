"""Candidates in the order Coral's ``std::priority_queue`` pops them, as ONNX ops.

Coral pushes every candidate (scan order y, x, keypoint) into a libstdc++
``std::priority_queue`` ordered by score and pops roots from it. Equal scores,
common with uint8 heatmaps, come out in an order set by the heap's history.
This module replays that heap in the graph (``tie_order="heap"``), so that a
converted Coral decoder model takes exactly Coral's roots. It is the numpy
``onnxpose.reference.std_priority_queue`` written as batched tensor steps:

* push (one ``Loop`` iteration per candidate): the new element at slot t
  rises past the ancestors that are strictly smaller. Along a root path a
  heap is sorted, so those ancestors are the first c of the path: one
  comparison of the path with the value, a count, and one scatter of the
  shifted path.
* pop (one ``Loop`` iteration per root taken): libstdc++'s ``__adjust_heap``
  walks the hole from the root to the larger child (the right one on ties)
  while both children exist, moves it to a lone left child, then pushes the
  old last element up from there. The walk is a pointer chase through the
  "larger child" table (by pointer doubling: a few gathers), and the push-up
  again a count along the walked path.

The cost grows with the number of candidates (each push and pop is a few
dozen small nodes), so it is the default only for models that had Coral's
decoder op; ``tie_order="scan"`` (everywhere else) takes equal scores in
scan order with one ``TopK``.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder, LoopBody


def _levels(capacity: int) -> int:
    """Levels of a heap of ``capacity`` elements (a root path has levels + 1 nodes)."""
    return max(1, math.ceil(math.log2(capacity + 1)))


def _scatter(b: GraphBuilder, data, positions, values, name):
    return b.op("ScatterElements", [data, positions, values], name, {"axis": 1})


def heap_order(gb: GraphBuilder, scores, is_candidate, count, pops, size: int,
               name: str = "heap"):
    """Flat indices [N, K] of the first ``pops`` ([1] int64, K) candidates in Coral's pop order,
    and whether each is a candidate [N, K] (images with fewer candidates: False).

    ``scores`` [N, S] (scan order), ``is_candidate`` [N, S] bool, ``count`` [N] int64 (the
    number of candidates per image), S = ``size``.
    """
    return replay_heap(gb, scores, is_candidate, count, pops, size, name, _root_paths, _pops)


def replay_heap(gb: GraphBuilder, scores, is_candidate, count, pops, size: int, name: str,
                root_paths, pop_loop):
    """``heap_order`` for a binary heap given by ``root_paths(gb, capacity_s, levels, name)``
    (the ancestors of each slot, see ``_root_paths``) and ``pop_loop`` (``_pops``'s
    arguments and result): push every candidate in scan order, pop ``pops`` roots.

    Only when some image has two candidates of equal score: a heap pops a maximum of what
    it holds, so without equal scores its pop order is the score order, and an ``If``
    takes the sorted candidates of one ``TopK`` instead of replaying the heap."""
    zero, one = gb.scalar(0, np.int64), gb.scalar(1, np.int64)
    most = gb.reduce_max(count, [0], f"{name}/most", keepdims=True)
    capacity = gb.maximum(most, np.array([1], np.int64), f"{name}/capacity")         # [1], >= 1
    n = gb.unsqueeze(count, [1], f"{name}/count")                                      # [N, 1]
    # the candidates best first (K' = max(C, K) <= S): equal neighbours among the first
    # `count` of an image are its ties
    masked = gb.where(is_candidate, scores, np.float32(-np.inf), f"{name}/masked")
    sorted_k = gb.maximum(capacity, pops, f"{name}/sorted_k")                         # [1]
    sorted_scores, best = gb.topk(masked, sorted_k, 1, f"{name}/best_first")
    same = gb.equal(gb.slice(sorted_scores, [1], [size + 1], [1], f"{name}/next"),
                    gb.slice(sorted_scores, [0], [-1], [1], f"{name}/this"), f"{name}/same")
    within = gb.less(gb.range_(one, gb.squeeze(sorted_k, [0], f"{name}/sorted_n"), one,
                               f"{name}/next_rank"), n, f"{name}/next_within")
    # a candidate at -inf would tie with the non-candidates: replay then too
    lowest = gb.logical_and(gb.equal(sorted_scores, np.float32(-np.inf), f"{name}/at_minus_inf"),
                            gb.less(gb.range_(zero, gb.squeeze(sorted_k, [0], f"{name}/k_"), one,
                                              f"{name}/this_rank"), n, f"{name}/this_within"),
                            f"{name}/candidate_at_minus_inf")
    tie = gb.concat([gb.logical_and(same, within, f"{name}/tie_"), lowest], 1, f"{name}/tie")
    any_tie = gb.greater(gb.reduce_max(gb.cast(tie, np.int64, f"{name}/tie_int"), [0, 1],
                                       f"{name}/ties"), np.int64(0), f"{name}/any_tie")

    replay = gb.branch(f"{name}/replay")
    index = _replay(replay, scores, is_candidate, count, capacity, n, pops, size, name,
                    root_paths, pop_loop)
    index.dtype = np.int64
    replay.graph.outputs = [index]
    plain = gb.branch(f"{name}/plain")
    first = plain.op("Slice", [best, np.array([0], np.int64), pops, np.array([1], np.int64)],
                     "best")
    first.dtype = np.int64
    plain.graph.outputs = [first]
    index = gb.op("If", [any_tie], f"{name}/order",
                  {"then_branch": replay.graph, "else_branch": plain.graph}, dtype=np.int64)
    rank = gb.range_(zero, gb.squeeze(pops, [0], f"{name}/pops"), one, f"{name}/rank")
    taken = gb.less(rank, n, f"{name}/taken")                        # [N, K]: heap not empty
    return index, taken


def _replay(gb, scores, is_candidate, count, capacity, n, pops, size, name, root_paths,
            pop_loop):
    """The popped candidates' flat indices [N, K], by replaying the heap."""
    levels = _levels(size)
    zero, one = gb.scalar(0, np.int64), gb.scalar(1, np.int64)
    # the candidates of each image in scan order, padded to the largest count C
    capacity_s = gb.squeeze(capacity, [0], f"{name}/capacity_scalar")
    scan_key = gb.where(is_candidate, np.negative(np.arange(size, dtype=np.float32)),
                        np.float32(-np.inf), f"{name}/scan_key")
    _, position = gb.topk(scan_key, capacity, 1, f"{name}/in_scan_order")           # [N, C]
    value = gb.gather_elements(scores, position, 1, f"{name}/scores_")
    slot = gb.range_(zero, capacity_s, one, f"{name}/slots")                          # [C]
    value = gb.where(gb.less(slot, n, f"{name}/is_pushed"), value, np.float32(-np.inf),
                     f"{name}/scores")

    # heap arrays [N, C + 1]; slot C is a bin for the writes that must not land
    shape = gb.concat([gb.slice(gb.shape(value, f"{name}/value_shape"), [0], [1], [0],
                                f"{name}/batch"), gb.add(capacity, np.int64(1), f"{name}/c1")],
                      0, f"{name}/heap_shape")
    heap_scores = gb.op("ConstantOfShape", [shape], f"{name}/scores0",
                        {"value": gs.Constant("minus_inf", np.array([-np.inf], np.float32))})
    heap_ids = gb.op("ConstantOfShape", [shape], f"{name}/ids0",
                     {"value": gs.Constant("zero", np.array([0], np.int64))})
    heap_scores, heap_ids = _pushes(gb, value, capacity_s, heap_scores, heap_ids, levels,
                                    root_paths(gb, capacity_s, levels, f"{name}/push"),
                                    f"{name}/push")
    popped = pop_loop(gb, n, capacity_s, heap_scores, heap_ids, pops, levels, f"{name}/pop")
    return gb.gather_elements(position, popped, 1, f"{name}/index")


def _root_paths(gb, capacity_s, levels, name):
    """libstdc++'s heap (parent of k: (k - 1) // 2): the root path of every slot t [C, L+1]
    (t, its parent, ..., clamped at 0) and which of its entries are ancestors of t."""
    j = np.arange(levels + 1, dtype=np.int64)
    # the root path of slot t: ((t + 1) >> j) - 1, valid while >= 0; all t at once: [C, L+1]
    t1 = gb.unsqueeze(gb.range_(gb.scalar(1, np.int64),
                                gb.add(capacity_s, gb.scalar(1, np.int64), f"{name}/c1"),
                                gb.scalar(1, np.int64), f"{name}/t1_"), [1], f"{name}/t1")
    paths = gb.sub(gb.div(t1, 2 ** j, f"{name}/shifted"), np.int64(1), f"{name}/paths_raw")
    ancestor = gb.logical_and(gb.greater_or_equal(paths, np.int64(0), f"{name}/on_path"), j >= 1,
                              f"{name}/is_ancestor")
    return gb.maximum(paths, np.int64(0), f"{name}/paths"), ancestor


def _pushes(gb, value, capacity_s, heap_scores, heap_ids, levels, root_paths, name):
    """Push slot t (t = 0 .. C-1) of every image that has it, along ``root_paths``
    (``_root_paths``'s result: the path of slot t is row t, sorted along any heap).

    A lean body: the ancestors of t are read from a table whose non-ancestor entries point
    to a sentinel slot C + 1 holding +inf (never smaller, never written), so the count of
    smaller ancestors needs no mask; the pushed values are pre-arranged by slot [C, N, 1]."""
    paths, ancestor = root_paths
    c1 = gb.add(capacity_s, gb.scalar(1, np.int64), f"{name}/c1s")
    bin_slot = gb.unsqueeze(capacity_s, [0], f"{name}/bin")
    # ancestors j = 1 .. L of t (else the sentinel), and one more sentinel: [C, L+1]
    up_paths = gb.where(ancestor, paths, c1, f"{name}/ancestors_or_sentinel")
    up_paths = gb.concat([gb.slice(up_paths, [1], [levels + 1], [1], f"{name}/parents"),
                          gb.slice(gb.mul(up_paths, np.int64(0), f"{name}/zero_paths"),
                                   [0], [1], [1], f"{name}/zero_col")], 1,
                         f"{name}/parents_")
    up_paths = gb.add(up_paths, gb.mul(gb.unsqueeze(c1, [0], f"{name}/c1v"),
                                       np.array([0] * levels + [1], np.int64),
                                       f"{name}/last_col"), f"{name}/up_paths")
    # the sentinel column [N, 1] (+inf score) after the bin slot
    sentinel = gb.slice(heap_scores, [0], [1], [1], f"{name}/sentinel_")
    sentinel = gb.where(gb.less(sentinel, np.float32(0), f"{name}/sentinel_c"),
                        np.float32(np.inf), sentinel, f"{name}/sentinel")
    heap_scores = gb.concat([heap_scores, sentinel], 1, f"{name}/scores0")
    heap_ids = gb.concat([heap_ids, gb.slice(heap_ids, [0], [1], [1], f"{name}/ids_col")], 1,
                         f"{name}/ids0")
    by_slot = gb.unsqueeze(gb.transpose(value, [1, 0], f"{name}/values_t"), [2],
                           f"{name}/values_by_slot")                           # [C, N, 1]
    j = np.arange(levels + 1, dtype=np.int64)

    body = LoopBody(gb, name, [("scores", np.float32), ("ids", np.int64)])
    b, t = body.b, body.step
    scores_in, ids_in = body.carried
    path = b.gather(paths, t, 0, "path")                                       # [L+1]
    up = b.gather(up_paths, t, 0, "up")                                        # [L+1]
    parent_scores = b.gather(scores_in, up, 1, "parent_scores")                # [N, L+1]
    v = b.gather(by_slot, t, 0, "value")                                       # [N, 1]
    rise = b.reduce_sum(b.cast(b.less(parent_scores, v, "smaller"), np.int64, "smaller_int"),
                        [1], "rise", keepdims=True)
    # path slots 0 .. rise-1 take their parent's element, slot rise the new one; the rest
    # are not written (rise counts ancestors only, so every written slot is on the path).
    # An image without slot t pushes -inf to slot t, past its heap: never read.
    below = b.less(j, rise, "below")
    new_scores = b.where(below, parent_scores, v, "new_scores")
    new_ids = b.where(below, b.gather(ids_in, up, 1, "parent_ids"), t, "new_ids")
    where = b.where(b.less_or_equal(j, rise, "moved"), path, bin_slot, "where")
    graph = body.finish([_scatter(b, scores_in, where, new_scores, "scores_out"),
                         _scatter(b, ids_in, where, new_ids, "ids_out")],
                        [np.float32, np.int64])
    scores, ids = gb.loop(graph, capacity_s, gb.scalar(True, np.bool_, f"{name}/always"),
                          [heap_scores, heap_ids], f"{name}/loop")
    # drop the sentinel slot
    return (gb.slice(scores, [0], [-1], [1], f"{name}/scores"),
            gb.slice(ids, [0], [-1], [1], f"{name}/ids"))


def _pops(gb, n, capacity_s, heap_scores, heap_ids, pops, levels, name):
    """The scan slot of each popped root [N, K] (anything once an image's heap is empty)."""
    m = np.arange(levels + 2, dtype=np.int64)          # walk positions, + a lone left child
    doublings = max(1, math.ceil(math.log2(levels + 2)))
    # larger-child table over slots 0 .. C (children clamped to the bin slot C)
    slot = gb.range_(gb.scalar(0, np.int64), gb.add(capacity_s, gb.scalar(1, np.int64),
                                                   f"{name}/c1"),
                     gb.scalar(1, np.int64), f"{name}/slots")
    left = gb.minimum(gb.add(gb.mul(slot, np.int64(2), f"{name}/2i"), np.int64(1), f"{name}/l_"),
                      capacity_s, f"{name}/left")
    right = gb.minimum(gb.add(gb.mul(slot, np.int64(2), f"{name}/2i_"), np.int64(2),
                              f"{name}/r_"), capacity_s, f"{name}/right")
    bin_slot = gb.unsqueeze(capacity_s, [0], f"{name}/bin")
    count_1 = gb.sub(n, np.int64(1), f"{name}/count_1")                             # [N, 1]
    root = gb.mul(n, np.int64(0), f"{name}/root")                                   # [N, 1]

    body = LoopBody(gb, name, [("scores", np.float32), ("ids", np.int64)])
    b, p = body.b, body.step
    scores_in, ids_in = body.carried
    top = b.gather(ids_in, gb.scalar(0, np.int64), 1, "top")                  # [N]
    # after the pop `length` elements are left; the last one (slot `length`) is re-placed.
    # An image whose heap is empty writes only past it: never read again.
    length = b.sub(count_1, p, "length")
    last = b.maximum(length, np.int64(0), "last_slot")
    value = b.gather_elements(scores_in, last, 1, "value")
    value_id = b.gather_elements(ids_in, last, 1, "value_id")
    # the hole's walk follows the larger child, the right one unless it is strictly smaller;
    # with the last slot at -inf a lone left child is simply the larger one
    scores = b.where(b.equal(slot, last, "is_last"), np.float32(-np.inf), scores_in, "scores")
    take_left = b.less(b.gather(scores, right, 1, "right_scores"),
                       b.gather(scores, left, 1, "left_scores"), "take_left")
    step = b.where(take_left, left, right, "larger_child")                    # [N, C+1]
    path = root                                                               # [N, 1]
    for k in range(doublings):
        path = b.concat([path, b.gather_elements(step, path, 1, f"walk{k}")], 1, f"path{k}")
        if k + 1 < doublings:
            step = b.gather_elements(step, step, 1, f"jump{k}")
    path = b.slice(path, [0], [levels + 2], [1], "path")                       # [N, L+2]
    # libstdc++: walk while both children exist (slot < (length - 1) / 2), then one more step
    # to a lone left child (2 * hole + 1 == length - 1)
    length_1 = b.sub(length, np.int64(1), "length_1")
    walked = b.reduce_sum(b.cast(b.less(path, b.div(length_1, np.int64(2), "limit"), "inside"),
                                 np.int64, "inside_int"), [1], "walked", keepdims=True)
    hole = b.gather_elements(path, walked, 1, "hole")
    # a lone left child: 2 * hole + 1 == length - 1 (< C, so the clamp of `left` is harmless)
    lone = b.equal(b.gather(left, hole, 0, "left_child"), length_1, "lone")
    end = b.add(walked, b.cast(lone, np.int64, "lone_int"), "end")
    path_scores = b.gather_elements(scores, path, 1, "path_scores")
    path_ids = b.gather_elements(ids_in, path, 1, "path_ids")
    up = np.minimum(m + 1, levels + 1)
    child_scores = b.gather(path_scores, up, 1, "child_scores")                # moved up
    child_ids = b.gather(path_ids, up, 1, "child_ids")
    # the old last element settles below the moved-up children not smaller than it
    stays = b.logical_and(b.greater_or_equal(child_scores, value, "not_smaller"),
                          b.less(m, end, "on_walk"), "stays")
    settle = b.reduce_sum(b.cast(stays, np.int64, "stays_int"), [1], "settle", keepdims=True)
    return _pop_loop(gb, body, m, path, (child_scores, child_ids), (value, value_id), settle,
                     top, bin_slot, pops, (heap_scores, heap_ids), name)


def _pop_loop(gb, body, m, path, children, element, settle, top, bin_slot, pops, heap, name):
    """End a pop body: the path entries m < ``settle`` take their child's element
    (``children``: scores, ids [N, M]), entry ``settle`` the re-placed ``element`` (score,
    id [N, 1]); then run it ``pops`` times on ``heap``. The popped ``top`` ids [N, K]."""
    b = body.b
    scores_in, ids_in = body.carried
    below = b.less(m, settle, "below")
    new_scores = b.where(below, children[0], element[0], "new_scores")
    new_ids = b.where(below, children[1], element[1], "new_ids")
    where = b.where(b.less_or_equal(m, settle, "moved"), path, bin_slot, "where")
    graph = body.finish([_scatter(b, scores_in, where, new_scores, "scores_out"),
                         _scatter(b, ids_in, where, new_ids, "ids_out"), top],
                        [np.float32, np.int64, np.int64])
    outputs = gb.op("Loop", [gb.squeeze(pops, [0], f"{name}/count"),
                             gb.scalar(True, np.bool_, f"{name}/always"), *heap],
                    f"{name}/loop", {"body": graph}, num_outputs=3)
    return gb.transpose(outputs[2], [1, 0], f"{name}/popped")                   # [N, K]
