"""The in-graph replay of TF.js's MaxHeap against the numpy one."""

from __future__ import annotations

import numpy as np
import pytest

from onnxpose.decoder.tfjs_heap_order import tfjs_heap_order
from onnxpose.reference.max_heap import MaxHeap
from onnxpose.testing.heap_models import heap_popper, tied_top_distinct_tail

SIZE = 60
SEEDS = range(48)


@pytest.fixture(scope="module")
def popper():
    return heap_popper(tfjs_heap_order, SIZE)


def tfjs_pops(scores, mask, k, heap=MaxHeap):
    queue = heap(key=lambda i: scores[i])
    for i in np.flatnonzero(mask):  # scan order, like buildPartWithScoreQueue
        queue.push(int(i))
    return [queue.pop() for _ in range(min(k, len(queue)))]


def scan_pops(scores, mask, k):
    candidates = np.flatnonzero(mask)
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k].tolist()


def tied_batch(seed):
    """3 images, few distinct scores (many ties), random masks; image 0 of every fifth
    batch has no candidate; K below the largest count in most batches."""
    rng = np.random.default_rng(seed)
    n = 3
    levels = int(rng.integers(1, 6))
    scores = rng.integers(0, levels, (n, SIZE)).astype(np.float32)
    mask = rng.random((n, SIZE)) < rng.uniform(0.05, 1.0, (n, 1))
    if seed % 5 == 0:
        mask[0] = False
    k = int(rng.integers(1, SIZE + 1))
    return scores, mask, k


def assert_pops_like(popper, scores, mask, k, expected_pops=tfjs_pops):
    index, taken = popper(scores, mask, k)
    for image in range(len(scores)):
        expected = expected_pops(scores[image], mask[image], k)
        assert index[image][taken[image]].tolist() == expected
        assert taken[image].tolist() == [True] * len(expected) + [False] * (k - len(expected))


@pytest.mark.parametrize("seed", SEEDS)
def test_pops_like_tfjs_with_many_ties(popper, seed):
    assert_pops_like(popper, *tied_batch(seed))


def test_tied_batches_cover_empty_images_and_small_k():
    batches = [tied_batch(seed) for seed in SEEDS]
    assert sum(not m[0].any() for _, m, _ in batches) >= 5
    assert sum(k < m.sum(axis=1).max() for _, m, k in batches) >= 10
    assert sum(len(set(m.sum(axis=1))) > 1 for _, m, _ in batches) >= 40


def test_heap_order_is_not_scan_order_on_tied_batches():
    """The test above is meaningful: on most batches TF.js's order is not scan order."""
    differs = [any(tfjs_pops(s[i], m[i], k) != scan_pops(s[i], m[i], k) for i in range(3))
               for s, m, k in map(tied_batch, SEEDS)]
    assert np.mean(differs) > 0.7


class _WrongSwim(MaxHeap):
    """A mutation: swim past equal ancestors too (less_or_equal instead of less)."""

    def _swim(self, k):
        while k > 0 and self._key(self._queue[k // 2]) <= self._key(self._queue[k]):
            self._exchange(k, k // 2)
            k //= 2


class _WrongSink(MaxHeap):
    """A mutation: sink to the right child on ties."""

    def _sink(self, k):
        while 2 * k <= self._last:
            j = 2 * k
            if j < self._last and not self._less(j + 1, j):
                j += 1
            if not self._less(k, j):
                break
            self._exchange(k, j)
            k = j


@pytest.mark.parametrize("mutant", [_WrongSwim, _WrongSink])
def test_the_comparison_catches_a_changed_tie_rule(popper, mutant):
    """The graph matches MaxHeap, so it fails against a heap with another tie rule."""
    caught = 0
    for scores, mask, k in map(tied_batch, SEEDS):
        try:
            assert_pops_like(popper, scores, mask, k,
                             lambda s, m, kk: tfjs_pops(s, m, kk, heap=mutant))
        except AssertionError:
            caught += 1
    assert caught >= len(SEEDS) // 2


def test_empty_single_and_tied_images_in_one_batch(popper):
    scores = np.zeros((3, SIZE), np.float32)
    mask = np.zeros((3, SIZE), bool)
    mask[1, 41] = True
    mask[2, [3, 7, 9, 12]] = True
    index, taken = popper(scores, mask, 3)
    assert taken.tolist() == [[False] * 3, [True, False, False], [True] * 3]
    assert index[1, 0] == 41
    assert index[2].tolist() == tfjs_pops(scores[2], mask[2], 3) == [3, 12, 9]


def test_distinct_scores_pop_best_first(popper):
    rng = np.random.default_rng(1)
    scores = np.stack([rng.permutation(SIZE) for _ in range(2)]).astype(np.float32)
    mask = rng.random((2, SIZE)) < 0.6
    mask[0] = True
    assert_pops_like(popper, scores, mask, SIZE, scan_pops)


@pytest.mark.parametrize("seed", range(12))
def test_pops_like_tfjs_with_ties_only_at_the_top(popper, seed):
    scores, mask = tied_top_distinct_tail(seed, size=SIZE)
    assert_pops_like(popper, scores, mask, int(np.random.default_rng(seed).integers(1, SIZE + 1)))
