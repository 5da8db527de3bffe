"""Candidates in the order TF.js's ``MaxHeap`` pops them, as ONNX ops.

TF.js PoseNet (``buildPartWithScoreQueue``) pushes every candidate, in scan
order (y, x, keypoint), into its ``MaxHeap`` (tfjs-models
posenet/src/multi_pose/max_heap.ts) and dequeues the roots from it; equal
scores come out in an order set by the heap's history. This module replays
that heap in the graph for ``tie_order="heap"`` with the tfjs preset, next to
the numpy ``onnxpose.reference.max_heap``. Its quirk is kept: the array is
0-based, but the parent of k is k // 2 and the children of k are 2k and
2k + 1, so slot 0 sits above slot 1, which is above 2 and 3, and so on.

The scan-order padding, the packed-key heap array, the push ``Loop`` and the
pop ``Loop`` are ``onnxpose.decoder.heap_order``'s (``replay_heap``,
``pop_loop``); this module gives the heap's shape and its pop rules:

* push = ``enqueue``: the new element at slot t ``swim``s past the ancestors
  that are strictly smaller (``less(k // 2, k)``). Its root path is
  t, t // 2, t // 4, ..., 1, 0 (``_root_paths``); along it a heap is sorted,
  so it rises past the first c ancestors (``heap_order._pushes``).
* pop = ``dequeue``: ``exchange(0, last)``, ``last--``, ``sink(0)``. The old
  last element x sinks from the root along the larger-child path (0 -> 1,
  then 2k or 2k + 1, the right one only if the left one is strictly
  smaller), which does not depend on x: a pointer chase through the
  larger-child table (by pointer doubling: a few gathers). x moves below the
  path's children that are strictly greater than it (``less(k, j)``), a
  prefix of the path since scores fall along it.

The cost grows with the number of candidates (a push is 9 nodes, a pop
about 34), like Coral's replay.
"""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.heap_order import per_image, pop_loop, replay_heap
from onnxpose.decoder.ops import GraphBuilder

NEVER = np.iinfo(np.int64).max


def tfjs_heap_order(gb: GraphBuilder, scores, is_candidate, count, pops, size: int,
                    name: str = "tfjs_heap", asked=None, ranked=None):
    """Flat indices [N, K] of the first ``pops`` ([1] int64, K) candidates in TF.js's pop
    order, and whether each is a candidate [N, K] (images with fewer candidates: False).

    ``scores`` [N, S] (scan order), ``is_candidate`` [N, S] bool, ``count`` [N] int64 (the
    number of candidates per image), S = ``size``; ``asked``, ``ranked``: as ``heap_order``'s.
    """
    return replay_heap(gb, scores, is_candidate, count, pops, size, name, _root_paths, _pops,
                       asked, ranked)


def _root_paths(gb, capacity_s, levels, name):
    """``swim``'s path of every slot t [C, L+1]: t >> j (t, t // 2, ..., 1, 0, 0, ...),
    and which of its entries are ancestors of t: j >= 1 while t >> (j - 1) > 0."""
    j = np.arange(levels + 1, dtype=np.int64)
    t = gb.unsqueeze(gb.range_(gb.scalar(0, np.int64), capacity_s, gb.scalar(1, np.int64),
                               f"{name}/slot_"), [1], f"{name}/slot")                # [C, 1]
    paths = gb.div(t, 2 ** j, f"{name}/paths")
    # ancestor j of t: t >= 2 ** (j - 1); entry 0 is t itself, never an ancestor
    lowest = np.where(j >= 1, 2 ** np.maximum(j - 1, 0), NEVER).astype(np.int64)
    return paths, gb.greater_or_equal(t, lowest, f"{name}/is_ancestor")


def _children(gb, capacity_s, name):
    """The children (2k, 2k + 1) of the slots 0 .. C [C+1], clamped to the bin slot C; slot
    0's only other child is 1 (its own "child" 0 is never taken: ``less(0, 0)`` is false)."""
    slot = gb.range_(gb.scalar(0, np.int64), gb.add(capacity_s, gb.scalar(1, np.int64),
                                                   f"{name}/c1"),
                     gb.scalar(1, np.int64), f"{name}/slots")
    twice = gb.mul(slot, np.int64(2), f"{name}/2k")
    left = gb.minimum(gb.maximum(twice, np.int64(1), f"{name}/left_"), capacity_s,
                      f"{name}/left")
    right = gb.minimum(gb.add(twice, np.int64(1), f"{name}/right_"), capacity_s,
                       f"{name}/right")
    return slot, left, right


def _pops(gb, n, capacity_s, heap, pops, levels, base, name):
    """The keys of the popped roots [N, K] (anything once an image's heap is empty).

    ``dequeue``: exchange(0, last), last--: the old last element x goes to the root and
    sinks along the larger-child path (the left one on ties: j = 2k, j + 1 if less(j, j + 1)),
    below the children strictly greater than it (``less(k, j)``)."""
    slot, left, right = _children(gb, capacity_s, name)
    left, right = per_image(gb, heap, [left, right], name)

    def larger_child(b, ranks):
        take_right = b.less(b.gather_elements(ranks, left, 1, "left_ranks"),
                            b.gather_elements(ranks, right, 1, "right_ranks"), "take_right")
        return b.where(take_right, right, left, "larger_child")

    return pop_loop(gb, n, capacity_s, heap, pops, levels, base, slot, larger_child,
                    lambda b, child, value: b.greater(child, value, "sinks"), name)
