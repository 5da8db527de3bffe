"""Root candidates: local maxima of the part scores, best first.

A candidate is a (score, y, x, keypoint) whose score is at least the
threshold and not smaller than any score of the same keypoint within
``local_maximum_radius`` cells (ties allowed: only a strictly greater
neighbour rejects it). Candidates are listed in scan order (y, x, keypoint),
which is the order both Coral and TF.js push them into their queues.

``tie_order`` decides how candidates with equal scores come out:

* ``"heap"``: like the original decoder's priority queue (``queue="std"``:
  Coral's libstdc++ ``std::priority_queue``; ``queue="tfjs"``: TF.js's
  ``MaxHeap``).
* ``"scan"``: stable, equal scores in scan order. This is what the ONNX graph
  does by default (``TopK`` returns the lower index first on ties); its
  ``tie_order="heap"`` replays the preset's queue (``onnxpose.decoder.heap_order``,
  ``onnxpose.decoder.tfjs_heap_order``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from onnxpose.reference.max_heap import MaxHeap
from onnxpose.reference.std_priority_queue import StdPriorityQueue

TIE_ORDERS = ("heap", "scan")


class Part(NamedTuple):
    score: np.float32
    y: int
    x: int
    keypoint: int


def is_local_maximum(scores: np.ndarray, y: int, x: int, keypoint: int, radius: int) -> bool:
    h, w = scores.shape[:2]
    window = scores[max(y - radius, 0):min(y + radius + 1, h),
                    max(x - radius, 0):min(x + radius + 1, w), keypoint]
    return not (window > scores[y, x, keypoint]).any()


def local_maximum_parts(scores: np.ndarray, threshold, radius: int) -> list[Part]:
    """All candidates of a [h, w, K] score map, in scan order."""
    parts = []
    for y, x, k in zip(*np.nonzero(scores >= threshold)):  # C order = scan order
        if is_local_maximum(scores, y, x, k, radius):
            parts.append(Part(scores[y, x, k], int(y), int(x), int(k)))
    return parts


def order_parts(parts: list[Part], tie_order: str, queue: str) -> list[Part]:
    """``parts`` (in scan order) in the order the decoder takes them as roots."""
    if tie_order == "scan":
        return sorted(parts, key=lambda p: -p.score)  # sorted() is stable
    if tie_order != "heap":
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, not {tie_order!r}")
    heap = {"std": StdPriorityQueue, "tfjs": MaxHeap}[queue](key=lambda p: p.score)
    for part in parts:
        heap.push(part)
    return [heap.pop() for _ in range(len(heap))]


def build_part_with_score_queue(scores: np.ndarray, threshold, radius: int,
                                max_candidates: int, tie_order: str = "heap",
                                queue: str = "std") -> list[Part]:
    """The ``max_candidates`` best candidates, in the order they are tried as roots."""
    parts = local_maximum_parts(scores, threshold, radius)
    return order_parts(parts, tie_order, queue)[:max_candidates]
