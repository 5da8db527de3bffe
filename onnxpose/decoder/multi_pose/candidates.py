"""Candidates: the local maxima above the threshold, best first (``build_part_with_score_queue``).

A (2 * local_maximum_radius + 1)^2 MaxPool (2-D, on the heatmaps transposed to
NCHW and back: the 3-D NHWC form is refused by onnxruntime-web's WebGPU EP) finds local maxima (a cell is kept when
it equals its window maximum, so ties are allowed) at least the threshold (one
comparison with the pooled max(score, threshold)), ``TopK`` takes the K best over all cells and keypoints (equal scores:
lower scan index (y, x, keypoint) first), or ``heap_order`` replays Coral's
heap. K = min(``settings.candidates``, the largest number of candidates of an
image in the batch), at least 1.

With the heap tie order and every candidate tried (``settings.candidates`` None) the
candidates come in scan tie order too, and the heap's inputs go along as a ``Queue``:
``queue_order`` reorders the walked candidates afterwards, and replays the heap only for
images whose poses the order of equal scores can change. With a cap K the heap picks
which K candidates are walked, so it is replayed first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.heap_order import heap_order
from onnxpose.decoder.tfjs_heap_order import tfjs_heap_order
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import MultiPoseSettings

K17 = NUM_KEYPOINTS


def logit(probability: float) -> np.float32:
    """``log(p / (1 - p))`` (double arithmetic, stored as float32; -inf at 0, inf at 1):
    TF.js's part-score threshold on logits."""
    p = float(np.float32(probability))
    if p <= 0.0 or p >= 1.0:
        return np.float32(-np.inf if p <= 0.0 else np.inf)
    return np.float32(math.log(p / (1.0 - p)))


def coral_logodds(probability: float) -> np.float32:
    """Coral's ``Logodds`` (double arithmetic, stored as float32)."""
    return np.float32(-math.log(1.0 / (float(np.float32(probability)) + 1e-6) - 1.0))


@dataclass(frozen=True)
class Queue:
    """The preset's heap, left to be replayed after the walk (``queue_order``): ``replay``
    (``heap_order`` or ``tfjs_heap_order``) and its inputs (``scores`` [N,S] flat, -inf
    where ``is_candidate`` [N,S] is false, ``count`` [N], S = ``size``); ``best`` [N,K]:
    the scores of the K candidates best first (every candidate: K >= each count)."""

    replay: Callable
    scores: gs.Variable
    is_candidate: gs.Variable
    count: gs.Variable
    size: int
    best: gs.Variable


def build_part_with_score_queue(gb: GraphBuilder, scores, threshold, h: int, w: int, k: int,
                                m: int, settings: MultiPoseSettings):
    """TopK local maxima: (flat index [N,K], valid [N,K], K [1], M [1], queue).

    K ([1] int64) = min(``k``, the largest number of candidates of an image of the
    batch), at least 1: the graph does work for the candidates that exist, not for
    ``settings.candidates``. M = min(K, ``m``) rows are kept before padding to
    ``max_poses``. ``queue``: a ``Queue`` when the heap tie order is still to be applied
    (heap tie order, every candidate tried; the index is then in scan tie order), else None.
    """
    r = settings.local_maximum_radius
    # a 2-D MaxPool on NCHW (onnxruntime-web's WebGPU EP refuses pooling of rank > 2 on
    # NHWC; TensorRT and OpenVINO take 2-D pooling everywhere)
    nchw = gb.transpose(scores, [0, 3, 1, 2], "candidates/scores_nchw")         # [N,17,h,w]
    # a local maximum (equal to its window's maximum) at least the threshold: at least the
    # window's maximum of max(score, threshold). The threshold is applied before the pool
    # (the same values): on a dequantized 8-bit heatmap onnxruntime would otherwise run the
    # pool on the uint8 values (NhwcMaxPool), 14x slower (benchmarks/candidate_pool.py)
    lifted = gb.maximum(nchw, np.float32(threshold), "candidates/score_or_threshold")
    floor = gb.max_pool(lifted, [2 * r + 1, 2 * r + 1], "candidates/window_max_or_threshold",
                        pads=[r, r, r, r])
    is_candidate = gb.transpose(gb.greater_or_equal(nchw, floor, "candidates/mask_nchw"),
                                [0, 2, 3, 1], "candidates/mask")    # (bool: 1/4 of the bytes)
    masked = gb.where(is_candidate, scores, np.float32(-np.inf), "candidates/masked_scores")
    size = h * w * K17
    flat_mask = gb.reshape(is_candidate, [0, size], "candidates/flat_mask")
    count = gb.reduce_sum(gb.cast(flat_mask, np.int64, "candidates/mask_int"), [1],
                          "candidates/count")                                        # [N]
    most = gb.reduce_max(count, [0], "candidates/most", keepdims=True)
    if settings.control_flow == "none":  # a constant K (TensorRT: TopK's K an initializer)
        k_eff = gb.const(np.array([k], np.int64), "candidates/k")
    else:
        k_eff = gb.maximum(gb.minimum(most, np.array([k], np.int64), "candidates/k_capped"),
                           np.array([1], np.int64), "candidates/k")
    m_eff = (gb.const(np.array([m], np.int64), "candidates/m")
             if settings.control_flow == "none" else
             gb.minimum(k_eff, np.array([m], np.int64), "candidates/m"))
    flat_scores = gb.reshape(masked, [0, size], "candidates/flat_scores")
    replay = None
    if settings.tie_order == "heap":  # the preset's queue: std::priority_queue or MaxHeap
        replay = tfjs_heap_order if settings.preset == "tfjs" else heap_order
        if settings.candidates is not None:   # the heap picks the K walked: replay it first
            index, valid = replay(gb, flat_scores, flat_mask, count, k_eff, size,
                                  "candidates/heap")
            return index, valid, k_eff, m_eff, None
    values, index = gb.topk(flat_scores, k_eff, 1, "candidates/topk")
    index = scan_order_ties(gb, values, index, k_eff if settings.control_flow == "none" else None)
    valid = gb.gather_elements(flat_mask, index, 1, "candidates/valid")
    # (the ties reordered, the scores stay best first: `values` are the index's scores)
    queue = replay and Queue(replay, flat_scores, flat_mask, count, size, values)
    return index, valid, k_eff, m_eff, queue


def scan_order_ties(gb: GraphBuilder, values, index, k=None):
    """The TopK result [N,K] reordered so that equal scores come in scan order (lower flat
    index first). ONNX's TopK promises that order, onnxruntime keeps it, OpenVINO's CPU
    plugin does not (its TopK is not stable): each candidate's rank is the number of
    candidates before it (higher score, or equal score and lower index), a K x K
    comparison, and a TopK of the (distinct) ranks puts them in that order. ``k``: a
    constant K (else read from the shape)."""
    v_i, v_j = (gb.unsqueeze(values, [a], f"candidates/value_{n}") for a, n in ((2, "i"), (1, "j")))
    x_i, x_j = (gb.unsqueeze(index, [a], f"candidates/index_{n}") for a, n in ((2, "i"), (1, "j")))
    tie_before = gb.logical_and(gb.equal(v_j, v_i, "candidates/tie"),
                                gb.less(x_j, x_i, "candidates/index_before"),
                                "candidates/tie_before")
    before = gb.op("Or", [gb.greater(v_j, v_i, "candidates/score_before"), tie_before],
                   "candidates/before")
    rank = gb.reduce_sum(gb.cast(before, np.float32, "candidates/before_f"), [2],
                         "candidates/rank")
    if k is None:
        k = gb.slice(gb.shape(rank, "candidates/rank_shape"), [1], [2], [0], "candidates/rank_k")
    _, order = gb.topk(rank, k, 1, "candidates/by_rank", largest=False)
    return gb.gather_elements(index, order, 1, "candidates/index_scan_ties")


def part_of_index(gb: GraphBuilder, index, w: int):
    """(keypoint [N,K], cell (y, x) float [N,K,2]) of flat candidate indices (a ``Part``)."""
    keypoint = gb.mod(index, np.int64(K17), "roots/keypoint")
    cell = gb.div(index, np.int64(K17), "roots/cell")
    row = gb.div(cell, np.int64(w), "roots/row")
    col = gb.mod(cell, np.int64(w), "roots/col")
    yx = gb.concat([gb.unsqueeze(row, [-1], "roots/row_"),
                    gb.unsqueeze(col, [-1], "roots/col_")], -1, "roots/cell_yx_int")
    return keypoint, gb.cast(yx, np.float32, "roots/cell_yx")


def is_root_keypoint(gb: GraphBuilder, keypoint):
    """[N,K,17] bool: keypoint t is the root's keypoint."""
    return gb.equal(gb.unsqueeze(keypoint, [-1], "roots/keypoint_col"),
                    np.arange(K17, dtype=np.int64), "roots/is_root_keypoint")
