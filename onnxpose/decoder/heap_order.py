"""Candidates in the order Coral's ``std::priority_queue`` pops them, as ONNX ops.

Coral pushes every candidate (scan order y, x, keypoint) into a libstdc++
``std::priority_queue`` ordered by score and pops roots from it. Equal scores,
common with uint8 heatmaps, come out in an order set by the heap's history.
This module replays that heap in the graph (``tie_order="heap"``), so that a
converted Coral decoder model takes exactly Coral's roots. It is the numpy
``onnxpose.reference.std_priority_queue`` written as batched tensor steps:

The heap is one int64 array of packed keys, rank * base + (base - 1 - t) (rank: the
dense rank of the score, t: the scan slot; ``_keys``), so a push or pop gathers and
scatters one array:

* push (one ``Loop`` iteration per candidate): the new element at slot t
  rises past the ancestors that are strictly smaller. Along a root path the
  keys are sorted, and equal scores compare newest lowest, so the new path is
  ``max(path, min(parents, key))``: two gathers, a Min, a Max, one scatter.
* pop (one ``Loop`` iteration per root taken): libstdc++'s ``__adjust_heap``
  walks the hole from the root to the larger child (the right one on ties)
  while it has a child in the heap, then pushes the old last element up
  from there. With the slots past the heap masked (rank 0), the walk is a
  pointer chase through the "larger child" table (by pointer doubling: a few
  gathers), and where the old last element settles is a comparison of ranks
  along the walked path (a prefix).

The cost grows with the number of candidates (each push and pop is a few
dozen small nodes), so it is the default only for models that had Coral's
decoder op; ``tie_order="scan"`` (everywhere else) takes equal scores in
scan order with one ``TopK``. With every candidate tried, ``multi_pose.queue_order``
asks only for the pops whose order can change the poses (``asked``), most often none.
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
               name: str = "heap", asked=None, ranked=None):
    """Flat indices [N, K] of the first ``pops`` ([1] int64, K) candidates in Coral's pop order,
    and whether each is a candidate [N, K] (images with fewer candidates: False).

    ``scores`` [N, S] (scan order), ``is_candidate`` [N, S] bool, ``count`` [N] int64 (the
    number of candidates per image), S = ``size``; ``asked`` [N] int64 or None (all): how
    many of each image's first pops must come in the heap's order (a count that ends a
    group of equal scores); the rest come best first, equal scores in any order.
    ``ranked``: (scores, flat indices) [N, K] of the candidates best first, if known (then
    K = ``pops`` is at least every count).
    """
    return replay_heap(gb, scores, is_candidate, count, pops, size, name, _root_paths, _pops,
                       asked, ranked)


def replay_heap(gb: GraphBuilder, scores, is_candidate, count, pops, size: int, name: str,
                root_paths, pop_loop, asked=None, ranked=None):
    """``heap_order`` for a binary heap given by ``root_paths(gb, capacity_s, levels, name)``
    (the ancestors of each slot, see ``_root_paths``) and ``pop_loop`` (``_pops``'s
    arguments and result): push every candidate in scan order, pop ``pops`` roots (of an
    image, at most its ``asked`` [N] first ones in the heap's order; None: all).

    The replay matters only when some image has two candidates of equal score: a heap pops
    a maximum of what it holds, so without equal scores its pop order is the score order,
    the sorted candidates of one ``TopK``. For the same reason the replay stops popping once
    no two elements left in any image's heap tie (after its lowest tied pair of candidates):
    the rest come out best first. When no image has a tie the heap pushes one element
    (OpenVINO 2025.4 returns an empty tensor from a Loop that runs zero times), pops once,
    and the sorted candidates are the order. (No ``If`` chooses between the two: OpenVINO's
    CPU plugin, with the input shapes fixed, returned uninitialized memory from an ``If``
    whose branch held the replay's Loops.)"""
    zero, one = gb.scalar(0, np.int64), gb.scalar(1, np.int64)
    most = gb.reduce_max(count, [0], f"{name}/most", keepdims=True)
    capacity = gb.maximum(most, np.array([1], np.int64), f"{name}/capacity")         # [1], >= 1
    n = gb.unsqueeze(count, [1], f"{name}/count")                                      # [N, 1]
    # the candidates best first (K' = max(C, K) <= S): equal neighbours among the first
    # `count` of an image are its ties
    if ranked is None:
        masked = gb.where(is_candidate, scores, np.float32(-np.inf), f"{name}/masked")
        sorted_k = gb.maximum(capacity, pops, f"{name}/sorted_k")                     # [1]
        sorted_scores, best = gb.topk(masked, sorted_k, 1, f"{name}/best_first")
    else:
        sorted_k, (sorted_scores, best) = pops, ranked
    same = gb.equal(gb.slice(sorted_scores, [1], [size + 1], [1], f"{name}/next"),
                    gb.slice(sorted_scores, [0], [-1], [1], f"{name}/this"), f"{name}/same")
    within = gb.less(gb.range_(one, gb.squeeze(sorted_k, [0], f"{name}/sorted_n"), one,
                               f"{name}/next_rank"), n, f"{name}/next_within")
    # a candidate at -inf would tie with the non-candidates: replay then too
    lowest = gb.logical_and(gb.equal(sorted_scores, np.float32(-np.inf), f"{name}/at_minus_inf"),
                            gb.less(gb.range_(zero, gb.squeeze(sorted_k, [0], f"{name}/k_"), one,
                                              f"{name}/this_rank"), n, f"{name}/this_within"),
                            f"{name}/candidate_at_minus_inf")
    pair_tie = gb.logical_and(same, within, f"{name}/tie_")
    tie = gb.concat([pair_tie, lowest], 1, f"{name}/tie")
    any_tie = gb.greater(gb.reduce_max(gb.cast(tie, np.int64, f"{name}/tie_int"), [0, 1],
                                       f"{name}/ties"), np.int64(0), f"{name}/any_tie")

    # the heap pops in score order once no two of its elements tie: after the candidates
    # down to the lowest tied pair (or all of them when one is at -inf)
    last_tie = gb.reduce_max(gb.where(pair_tie, gb.add(gb.range_(one, gb.squeeze(
        sorted_k, [0], f"{name}/sorted_n_"), one, f"{name}/pair_rank"), np.int64(1),
        f"{name}/pair_end"), np.int64(0), f"{name}/tied_through"), [1], f"{name}/last_tie",
        keepdims=True)                                                        # [N, 1]
    any_lowest = gb.reduce_max(gb.cast(lowest, np.int64, f"{name}/lowest_int"), [1],
                               f"{name}/any_lowest", keepdims=True)
    needed = gb.maximum(last_tie, gb.mul(any_lowest, n, f"{name}/lowest_needs"),
                        f"{name}/needed")                                     # [N, 1]
    if asked is not None:      # fewer pops in order: the heap is replayed only if some are
        needed = gb.minimum(needed, gb.unsqueeze(asked, [1], f"{name}/asked"),
                            f"{name}/needed_asked")
        any_tie = gb.greater(gb.reduce_max(needed, [0, 1], f"{name}/most_asked"),
                             np.int64(0), f"{name}/any_asked")
    index = _replay(gb, scores, is_candidate, count, capacity, n, pops, size, name,
                    root_paths, pop_loop, needed, best, any_tie, ranked is not None)
    rank = gb.range_(zero, gb.squeeze(pops, [0], f"{name}/pops"), one, f"{name}/rank")
    taken = gb.less(rank, n, f"{name}/taken")                        # [N, K]: heap not empty
    return index, taken


def _replay(gb, scores, is_candidate, count, capacity, n, pops, size, name, root_paths,
            pop_loop, needed, best, any_tie, from_best=False):
    """The popped candidates' flat indices [N, K], by replaying the heap: every push, and
    the pops up to the most ``needed`` [N, 1] of an image; an image's pops from its
    ``needed``-th on are its candidates best first (``best``: they no longer tie). Without
    ``any_tie`` (bool scalar) only slot 0 is pushed. ``from_best``: ``best`` holds every
    candidate (its first ``count``), so the scan order is read from it, not from all S cells.

    The heap holds one packed int64 key per element (``_keys``), so that each push and pop
    moves one array (one gather, one scatter) instead of a score and an id array."""
    levels = _levels(size)
    base = _id_base(size)
    zero, one = gb.scalar(0, np.int64), gb.scalar(1, np.int64)
    # the candidates of each image in scan order, padded to the largest count C
    capacity_s = gb.squeeze(capacity, [0], f"{name}/capacity_scalar")
    if from_best:       # the flat indices of `best` in increasing order
        held = gb.less(gb.range_(zero, gb.squeeze(pops, [0], f"{name}/best_n"), one,
                                 f"{name}/best_rank"), n, f"{name}/best_held")
        scan_key = gb.where(held, gb.neg(gb.cast(best, np.float32, f"{name}/best_f"),
                                         f"{name}/best_neg"), np.float32(-np.inf),
                            f"{name}/scan_key")
        _, column = gb.topk(scan_key, capacity, 1, f"{name}/in_scan_order")
        position = gb.gather_elements(best, column, 1, f"{name}/scan_position")     # [N, C]
    else:
        scan_key = gb.where(is_candidate, np.negative(np.arange(size, dtype=np.float32)),
                            np.float32(-np.inf), f"{name}/scan_key")
        _, position = gb.topk(scan_key, capacity, 1, f"{name}/in_scan_order")       # [N, C]
    value = gb.gather_elements(scores, position, 1, f"{name}/scores_")
    slot = gb.range_(zero, capacity_s, one, f"{name}/slots")                          # [C]
    pushed = gb.less(slot, n, f"{name}/is_pushed")
    keys = _keys(gb, value, pushed, capacity, base, name)

    # the heap [N, C + 2] (0: empty); slot C is a bin for the writes that must not land,
    # slot C + 1 a sentinel above every key (the pushes' paths end there)
    batch = gb.slice(gb.shape(value, f"{name}/value_shape"), [0], [1], [0], f"{name}/batch")
    shape = gb.concat([batch, gb.add(capacity, np.int64(1), f"{name}/c1")], 0,
                      f"{name}/heap_shape")
    heap = gb.op("ConstantOfShape", [shape], f"{name}/keys0_",
                 {"value": gs.Constant("zero", np.array([0], np.int64))})
    sentinel = gb.op("ConstantOfShape", [gb.concat([batch, np.array([1], np.int64)], 0,
                                                   f"{name}/column_shape")],
                     f"{name}/sentinel", {"value": gs.Constant(
                         "sentinel", np.array([(size + 3) * base], np.int64))})
    heap = gb.concat([heap, sentinel], 1, f"{name}/keys0")
    # C pushes, or one when nothing ties (its pops are then not used; OpenVINO 2025.4's
    # Loop needs a trip)
    pushes = gb.maximum(gb.mul(capacity, gb.cast(any_tie, np.int64, f"{name}/any_tie_int"),
                               f"{name}/pushes_"), np.array([1], np.int64), f"{name}/pushes")
    heap = _pushes(gb, keys, capacity_s, pushes, heap, batch, levels,
                   root_paths(gb, capacity_s, levels + 1, f"{name}/push"), f"{name}/push")
    replayed = gb.maximum(gb.minimum(gb.reduce_max(needed, [0], f"{name}/most_needed"), pops,
                                     f"{name}/replayed_"), np.array([1], np.int64),
                          f"{name}/replayed")                                 # [1]
    popped = pop_loop(gb, n, capacity_s, heap, replayed, levels, base, f"{name}/pop")   # keys
    # the popped key's scan slot (an empty heap's key 0 is clamped into range)
    slot_of = gb.sub(np.int64(base - 1), gb.mod(popped, np.int64(base), f"{name}/id_part"),
                     f"{name}/popped_slot_")
    slot_of = gb.minimum(slot_of, gb.sub(capacity, np.int64(1), f"{name}/last_slot"),
                         f"{name}/popped_slot")
    index = gb.gather_elements(position, slot_of, 1, f"{name}/replay_index")    # [N, P]
    pads = gb.concat([np.zeros(3, np.int64), gb.sub(pops, replayed, f"{name}/unreplayed")], 0,
                     f"{name}/replay_pads")
    index = gb.pad(index, pads, f"{name}/replay_index_k", value=None)          # [N, K]
    rank = gb.range_(zero, gb.squeeze(pops, [0], f"{name}/k_s"), one, f"{name}/pop_rank")
    sorted_first = gb.op("Slice", [best, np.array([0], np.int64), pops, np.array([1], np.int64)],
                         f"{name}/best_k")
    return gb.where(gb.less(rank, needed, f"{name}/is_replayed"), index, sorted_first,
                    f"{name}/index")


def _id_base(size: int) -> int:
    """The id part of a key ranges over [1, base): base a power of two above size + 1."""
    return 2 ** math.ceil(math.log2(size + 2))


def _keys(gb, value, pushed, capacity, base: int, name):
    """The packed key of each pushed element [N, C] int64 (0 where ``pushed`` is false):
    rank * base + (base - 1 - t). ``rank`` (>= 2) is the dense rank of the element's score
    (equal scores, equal ranks), t its scan slot. Keys order elements by score, and equal
    scores newest (highest t) lowest: exactly a push's comparison (the new element rises
    past strictly smaller ancestors), so a push compares keys; a pop compares ranks
    (key // base). No key is a multiple of base."""
    ordered, order = gb.topk(value, capacity, 1, f"{name}/by_score")                # [N, C]
    drop = gb.less(gb.slice(ordered, [1], [np.iinfo(np.int64).max], [1], f"{name}/below"),
                   gb.slice(ordered, [0], [-1], [1], f"{name}/above"), f"{name}/drop")
    drop = gb.pad(gb.cast(drop, np.int64, f"{name}/drop_int"), [0, 1, 0, 0],
                  f"{name}/drop_padded", value=None)
    group = gb.cumsum(drop, 1, f"{name}/group")                                     # 0: best
    top = gb.mul(gb.add(capacity, np.int64(2), f"{name}/c2"), np.int64(base),
                 f"{name}/top_rank")
    sorted_keys = gb.sub(gb.sub(top, gb.mul(group, np.int64(base), f"{name}/group_part"),
                                f"{name}/rank_part"),
                         gb.add(order, np.int64(1), f"{name}/t1"), f"{name}/sorted_keys")
    keys = gb.op("ScatterElements", [gb.mul(order, np.int64(0), f"{name}/zeros"), order,
                                     sorted_keys], f"{name}/keys_", {"axis": 1})
    return gb.where(pushed, keys, np.int64(0), f"{name}/keys")


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


def _pushes(gb, keys, capacity_s, pushes, heap, batch, levels, root_paths, name):
    """Push slot t (t = 0 .. ``pushes``-1, [1]) of every image that has it, along ``root_paths``
    (``_root_paths``'s result for L + 1 levels: row t is the path of slot t).

    The path of t from t up (t, its ancestors, then the sentinel slot: ``lo``) is sorted by
    key, and the new key v rises past the smaller ones, so the path's new keys are
    ``max(lo, min(hi, v))``, hi the path shifted by one (each entry's parent, or the
    sentinel): one gather of each, one scatter, in a ``Loop`` whose iteration t gathers row t
    of the tables pre-arranged by slot, [C, N, .] (9 nodes). An image without slot t pushes
    key 0 (empty): no change.

    A ``Loop``, not a ``Scan`` over the tables: onnxruntime's OpenVINO EP (1.24.1) claims a
    Scan body on its own, as a separate OpenVINO graph, and then splits the outer graph into
    pieces that OpenVINO refuses (an input of dynamic rank); it leaves this Loop's body to the
    Loop, as it does the pops' and root NMS's, so the whole decoder stays one OpenVINO graph.
    On onnxruntime CPU the three row gathers cost 1-2 % of the replay's decode."""
    paths, ancestor = root_paths                                               # [C, L+2]
    j = np.arange(levels + 2, dtype=np.int64)
    on_path = gb.op("Or", [ancestor, j == 0], f"{name}/on_path_or_self")
    sentinel = gb.add(capacity_s, gb.scalar(1, np.int64), f"{name}/sentinel_slot")
    rows = gb.where(on_path, paths, sentinel, f"{name}/rows")
    by_image = gb.concat([np.array([1], np.int64), batch, np.array([1], np.int64)], 0,
                         f"{name}/by_image")
    rows = gb.op("Expand", [gb.unsqueeze(rows, [1], f"{name}/rows_"), by_image],
                 f"{name}/rows_by_slot")                                       # [C, N, L+2]
    lo = gb.slice(rows, [0], [levels + 1], [2], f"{name}/lo_rows")
    hi = gb.slice(rows, [1], [levels + 2], [2], f"{name}/hi_rows")
    by_slot = gb.unsqueeze(gb.transpose(keys, [1, 0], f"{name}/keys_t"), [2],
                           f"{name}/keys_by_slot")                             # [C, N, 1]

    body = LoopBody(gb, name, [("keys", np.int64)])
    b, t, keys_in = body.b, body.step, body.carried[0]
    row_lo, row_hi, key = (b.gather(table, t, 0, part) for table, part in
                           ((lo, "lo"), (hi, "hi"), (by_slot, "key")))       # [N, L+1], [N, 1]
    lifted = b.minimum(b.gather_elements(keys_in, row_hi, 1, "parents"), key, "lifted")
    new = b.maximum(b.gather_elements(keys_in, row_lo, 1, "path"), lifted, "new")
    graph = body.finish([_scatter(b, keys_in, row_lo, new, "keys_out")], [np.int64])
    (heap,) = gb.loop(graph, gb.squeeze(pushes, [0], f"{name}/count"),
                      gb.scalar(True, np.bool_, f"{name}/always"), [heap], f"{name}/loop")
    return gb.slice(heap, [0], [-1], [1], f"{name}/keys")                      # drop sentinel


def _pops(gb, n, capacity_s, heap, pops, levels, base, name):
    """The keys of the popped roots [N, K] (anything once an image's heap is empty).

    libstdc++'s ``__adjust_heap``: the hole walks from the root to the larger child (the
    right one unless it is strictly smaller) while it has a child in the heap; the old last
    element then rises from there past strictly smaller parents, i.e. it settles below the
    walked children not smaller than it."""
    slot = gb.range_(gb.scalar(0, np.int64), gb.add(capacity_s, gb.scalar(1, np.int64),
                                                   f"{name}/c1"),
                     gb.scalar(1, np.int64), f"{name}/slots")
    left = gb.minimum(gb.add(gb.mul(slot, np.int64(2), f"{name}/2i"), np.int64(1), f"{name}/l_"),
                      capacity_s, f"{name}/left")
    right = gb.minimum(gb.add(gb.mul(slot, np.int64(2), f"{name}/2i_"), np.int64(2),
                              f"{name}/r_"), capacity_s, f"{name}/right")
    left, right = per_image(gb, heap, [left, right], name)

    def larger_child(b, ranks):
        take_left = b.less(b.gather_elements(ranks, right, 1, "right_ranks"),
                           b.gather_elements(ranks, left, 1, "left_ranks"), "take_left")
        return b.where(take_left, left, right, "larger_child")

    return pop_loop(gb, n, capacity_s, heap, pops, levels, base, slot, larger_child,
                    lambda b, child, value: b.greater_or_equal(child, value, "stays"), name)


def per_image(gb, heap, tables, name):
    """``tables`` [C+1] repeated for every image, [N, C+1] like ``heap``: read with
    ``GatherElements`` (much cheaper in onnxruntime than ``Gather`` along axis 1, which
    copies element by element)."""
    shape = gb.shape(heap, f"{name}/heap_shape")
    return [gb.op("Expand", [t, shape], f"{name}/{t.name.rsplit('/', 1)[-1]}_per_image")
            for t in tables]


def pop_loop(gb, n, capacity_s, heap, pops, levels, base, slot, larger_child, stays, name):
    """Pop ``pops`` times from ``heap`` [N, C+1] (keys; slot C the bin): the popped keys
    [N, K]. Each pop takes the root, masks the slots from the heap's new length on (rank
    0), follows ``larger_child(b, ranks [N, C+1]) -> [N, C+1]`` from the root (by pointer
    doubling: a few gathers), and places the old last element x at the path's first
    position m whose child does not ``stays(b, child ranks [N, M], rank of x)`` (a prefix,
    since ranks fall along the path): entries before it take their child's key."""
    positions = levels + 2                     # slots 0 .. C-1 lie on path entries 0 .. L
    doublings = max(1, math.ceil(math.log2(positions)))
    count_1 = gb.sub(n, np.int64(1), f"{name}/count_1")                             # [N, 1]
    root = gb.mul(n, np.int64(0), f"{name}/root")                                   # [N, 1]
    first = gb.equal(root, np.int64(0), f"{name}/first")                            # [N, 1]
    bin_slot = gb.unsqueeze(capacity_s, [0], f"{name}/bin")

    body = LoopBody(gb, name, [("keys", np.int64)])
    b, p = body.b, body.step
    keys_in = body.carried[0]
    top = b.gather(keys_in, gb.scalar(0, np.int64), 1, "top")                 # [N]
    # after the pop `length` elements are left, slots 0 .. length-1; x is the old slot
    # `length`. An image whose heap is empty writes only past it: never read again.
    length = b.sub(count_1, p, "length")
    value = b.gather_elements(keys_in, b.maximum(length, np.int64(0), "last"), 1, "value")
    ranks = b.where(b.greater_or_equal(slot, length, "is_out"), np.int64(0),
                    b.div(keys_in, np.int64(base), "ranks_"), "ranks")
    step = larger_child(b, ranks)                                              # [N, C+1]
    path = root                                                               # [N, 1]
    for k in range(doublings):
        path = b.concat([path, b.gather_elements(step, path, 1, f"walk{k}")], 1, f"path{k}")
        if k + 1 < doublings:
            step = b.gather_elements(step, step, 1, f"jump{k}")
    child = b.slice(path, [1], [positions], [1], "child")                     # [N, M]
    child_ranks = b.gather_elements(ranks, child, 1, "child_ranks")
    moves = stays(b, child_ranks, b.div(value, np.int64(base), "value_rank"))  # a prefix
    new = b.where(moves, b.gather_elements(keys_in, child, 1, "child_keys"), value, "new")
    # written: the moved entries and the one after them (x); the rest goes to the bin
    written = b.concat([first, b.slice(moves, [0], [-1], [1], "moves_")], 1, "written")
    where = b.where(written, b.slice(path, [0], [positions - 1], [1], "head"), bin_slot,
                    "where")
    graph = body.finish([_scatter(b, keys_in, where, new, "keys_out"), top],
                        [np.int64, np.int64])
    outputs = gb.op("Loop", [gb.squeeze(pops, [0], f"{name}/count"),
                             gb.scalar(True, np.bool_, f"{name}/always"), heap],
                    f"{name}/loop", {"body": graph}, num_outputs=2)
    return gb.transpose(outputs[1], [1, 0], f"{name}/popped")                   # [N, K]
