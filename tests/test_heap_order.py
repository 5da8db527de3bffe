"""The in-graph replay of Coral's std::priority_queue against the numpy one."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from onnxpose.decoder.attach import finish
from onnxpose.decoder.heap_order import heap_order
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.reference.std_priority_queue import StdPriorityQueue

SIZE = 60


@pytest.fixture(scope="module")
def popper():
    """A model: scores [N, SIZE], candidate mask [N, SIZE], pops [1] -> popped flat indices."""
    graph = gs.Graph(opset=17, name="heap_order_test")
    scores = gs.Variable("scores", np.float32, ["N", SIZE])
    mask = gs.Variable("mask", np.bool_, ["N", SIZE])
    pops = gs.Variable("pops", np.int64, [1])
    graph.inputs = [scores, mask, pops]
    gb = GraphBuilder(graph)
    count = gb.reduce_sum(gb.cast(mask, np.int64, "mask_int"), [1], "count")
    index, taken = heap_order(gb, scores, mask, count, pops, SIZE)
    index.name, taken.name = "index", "taken"
    index.dtype, taken.dtype = np.int64, np.bool_
    index.shape = taken.shape = ["N", "K"]
    graph.outputs = [index, taken]
    model = finish(graph, 17)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda s, m, k: session.run(None, {"scores": s, "mask": m,
                                              "pops": np.array([k], np.int64)})


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
