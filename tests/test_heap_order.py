"""The in-graph replay of Coral's std::priority_queue against the numpy one."""

from __future__ import annotations

import numpy as np
import pytest

from onnxpose.decoder.heap_order import heap_order
from onnxpose.reference.std_priority_queue import StdPriorityQueue
from onnxpose.testing.heap_models import heap_popper, tied_top_distinct_tail

SIZE = 60


@pytest.fixture(scope="module")
def popper():
    return heap_popper(heap_order, SIZE)


def std_pops(scores, mask, k):
    queue = StdPriorityQueue(key=lambda i: scores[i])
    for i in np.flatnonzero(mask):  # scan order
        queue.push(int(i))
    return [queue.pop() for _ in range(min(k, len(queue)))]


@pytest.mark.parametrize("seed", range(40))
def test_pops_like_libstdcxx_with_many_ties(popper, seed):
    rng = np.random.default_rng(seed)
    n = 3
    levels = int(rng.integers(1, 6))                 # few distinct scores: many ties
    scores = rng.integers(0, levels, (n, SIZE)).astype(np.float32)
    mask = rng.random((n, SIZE)) < rng.uniform(0.05, 1.0, (n, 1))
    k = int(rng.integers(1, SIZE + 1))
    index, taken = popper(scores, mask, k)
    for image in range(n):
        expected = std_pops(scores[image], mask[image], k)
        assert index[image][taken[image]].tolist() == expected
        assert taken[image].tolist() == [True] * len(expected) + [False] * (k - len(expected))


def test_images_without_candidates(popper):
    scores = np.zeros((2, SIZE), np.float32)
    mask = np.zeros((2, SIZE), bool)
    mask[1, [3, 7, 9]] = True
    index, taken = popper(scores, mask, 3)
    assert not taken[0].any()
    assert index[1].tolist() == std_pops(scores[1], mask[1], 3) and taken[1].all()


def test_distinct_scores_pop_best_first(popper):
    rng = np.random.default_rng(1)
    scores = rng.permutation(SIZE).astype(np.float32)[None]
    mask = np.ones((1, SIZE), bool)
    index, taken = popper(scores, mask, SIZE)
    assert taken.all()
    assert index[0].tolist() == np.argsort(-scores[0], kind="stable").tolist()


@pytest.mark.parametrize("seed", range(12))
def test_pops_like_libstdcxx_with_ties_only_at_the_top(popper, seed):
    scores, mask = tied_top_distinct_tail(seed, size=SIZE)
    k = int(np.random.default_rng(seed).integers(1, SIZE + 1))
    index, taken = popper(scores, mask, k)
    for image in range(len(scores)):
        expected = std_pops(scores[image], mask[image], k)
        assert index[image][taken[image]].tolist() == expected
