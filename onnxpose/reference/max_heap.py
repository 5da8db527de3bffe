"""TF.js PoseNet's ``MaxHeap`` (tfjs-models posenet/src/multi_pose/max_heap.ts).

Replayed step by step so that candidates with equal scores leave the queue in
the same order as in TF.js. Its quirk is kept: the array is 0-based but the
parent of ``k`` is ``k // 2`` and the children of ``k`` are ``2k`` and
``2k + 1`` (so slot 0 sits above slot 1).
"""

from __future__ import annotations

from typing import Any, Callable


class MaxHeap:
    def __init__(self, key: Callable[[Any], float]):
        self._key = key
        self._queue: list = []
        self._last = -1  # index of the last element (TF.js numberOfElements)

    def __len__(self) -> int:
        return self._last + 1

    def push(self, item) -> None:
        self._last += 1
        if self._last < len(self._queue):
            self._queue[self._last] = item
        else:
            self._queue.append(item)
        self._swim(self._last)

    def pop(self):
        top = self._queue[0]
        self._exchange(0, self._last)
        self._last -= 1
        self._sink(0)
        self._queue[self._last + 1] = None
        return top

    def _less(self, i: int, j: int) -> bool:
        return self._key(self._queue[i]) < self._key(self._queue[j])

    def _exchange(self, i: int, j: int) -> None:
        q = self._queue
        q[i], q[j] = q[j], q[i]

    def _swim(self, k: int) -> None:
        while k > 0 and self._less(k // 2, k):
            self._exchange(k, k // 2)
            k //= 2

    def _sink(self, k: int) -> None:
        while 2 * k <= self._last:
            j = 2 * k
            if j < self._last and self._less(j, j + 1):
                j += 1
            if not self._less(k, j):
                break
            self._exchange(k, j)
            k = j
