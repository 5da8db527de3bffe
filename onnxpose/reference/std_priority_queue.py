"""``std::priority_queue`` (GNU libstdc++ binary heap), as used by Coral's decoder.

Coral keeps its root candidates in a ``std::priority_queue`` ordered by score
only. Candidates with equal scores (common with quantized heatmaps) come out
in an order that depends on the heap's internals, so to reproduce Coral's
output exactly this module replays libstdc++'s ``push_heap`` (sift up while
the parent is strictly smaller) and ``pop_heap`` (move the hole down to a
leaf, preferring the right child on ties, then sift the last element up).
"""

from __future__ import annotations

from typing import Any, Callable


class StdPriorityQueue:
    """Max-heap of items ranked by ``key(item)``, popping like libstdc++."""

    def __init__(self, key: Callable[[Any], float]):
        self._key = key
        self._heap: list = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item) -> None:
        self._heap.append(item)
        self._sift_up(len(self._heap) - 1, 0, item)

    def pop(self):
        heap = self._heap
        top = heap[0]
        last = heap.pop()
        if heap:
            self._adjust_heap(last)
        return top

    def _less(self, a, b) -> bool:
        return self._key(a) < self._key(b)

    def _sift_up(self, hole: int, top: int, item) -> None:
        heap = self._heap
        parent = (hole - 1) // 2
        while hole > top and self._less(heap[parent], item):
            heap[hole] = heap[parent]
            hole = parent
            parent = (hole - 1) // 2
        heap[hole] = item

    def _adjust_heap(self, item) -> None:
        """libstdc++ ``__adjust_heap`` from the root with ``item`` (the old last element)."""
        heap, n = self._heap, len(self._heap)
        hole = child = 0
        while child < (n - 1) // 2:
            child = 2 * (child + 1)
            if self._less(heap[child], heap[child - 1]):
                child -= 1
            heap[hole] = heap[child]
            hole = child
        if n % 2 == 0 and child == (n - 2) // 2:
            child = 2 * (child + 1)
            heap[hole] = heap[child - 1]
            hole = child - 1
        self._sift_up(hole, 0, item)
