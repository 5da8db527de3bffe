"""The in-graph replay of TF.js's MaxHeap against the numpy one."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from onnxpose.decoder.attach import finish
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.tfjs_heap_order import tfjs_heap_order
from onnxpose.reference.max_heap import MaxHeap

SIZE = 60
SEEDS = range(48)


@pytest.fixture(scope="module")
def popper():
    """A model: scores [N, SIZE], candidate mask [N, SIZE], pops [1] -> popped flat indices."""
    graph = gs.Graph(opset=17, name="tfjs_heap_order_test")
    scores = gs.Variable("scores", np.float32, ["N", SIZE])
    mask = gs.Variable("mask", np.bool_, ["N", SIZE])
    pops = gs.Variable("pops", np.int64, [1])
    graph.inputs = [scores, mask, pops]
    gb = GraphBuilder(graph)
    count = gb.reduce_sum(gb.cast(mask, np.int64, "mask_int"), [1], "count")
    index, taken = tfjs_heap_order(gb, scores, mask, count, pops, SIZE)
    index.name, taken.name = "index", "taken"
    index.dtype, taken.dtype = np.int64, np.bool_
    index.shape = taken.shape = ["N", "K"]
    graph.outputs = [index, taken]
    model = finish(graph, 17)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda s, m, k: session.run(None, {"scores": s, "mask": m,
                                              "pops": np.array([k], np.int64)})


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


def test_images_without_candidates(popper):
    scores = np.zeros((2, SIZE), np.float32)
    mask = np.zeros((2, SIZE), bool)
    mask[1, [3, 7, 9]] = True
    index, taken = popper(scores, mask, 3)
    assert not taken[0].any()
    assert index[1].tolist() == tfjs_pops(scores[1], mask[1], 3) and taken[1].all()


def test_single_candidate(popper):
    scores = np.zeros((1, SIZE), np.float32)
    mask = np.zeros((1, SIZE), bool)
    mask[0, 41] = True
    index, taken = popper(scores, mask, 2)
    assert index[0, 0] == 41 and taken[0].tolist() == [True, False]


def test_distinct_scores_pop_best_first(popper):
    rng = np.random.default_rng(1)
    scores = rng.permutation(SIZE).astype(np.float32)[None]
    mask = np.ones((1, SIZE), bool)
    index, taken = popper(scores, mask, SIZE)
    assert taken.all()
    assert index[0].tolist() == np.argsort(-scores[0], kind="stable").tolist()
