"""A one-op-under-test model around an in-graph heap replay (tests of heap_order and
tfjs_heap_order)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

from onnxpose.decoder.attach import finish
from onnxpose.decoder.ops import GraphBuilder


def heap_popper(order, size: int):
    """A model: scores [N, size], candidate mask [N, size], pops [1] -> popped flat indices,
    with ``order`` (``heap_order`` or ``tfjs_heap_order``); returns
    ``run(scores, mask, k) -> (index [N, k], taken [N, k])``."""
    graph = gs.Graph(opset=17, name=f"{order.__name__}_test")
    scores = gs.Variable("scores", np.float32, ["N", size])
    mask = gs.Variable("mask", np.bool_, ["N", size])
    pops = gs.Variable("pops", np.int64, [1])
    graph.inputs = [scores, mask, pops]
    gb = GraphBuilder(graph)
    count = gb.reduce_sum(gb.cast(mask, np.int64, "mask_int"), [1], "count")
    index, taken = order(gb, scores, mask, count, pops, size)
    index.name, taken.name = "index", "taken"
    index.dtype, taken.dtype = np.int64, np.bool_
    index.shape = taken.shape = ["N", "K"]
    graph.outputs = [index, taken]
    model = finish(graph, 17)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda s, m, k: session.run(None, {"scores": s, "mask": m,
                                              "pops": np.array([k], np.int64)})


def tied_top_distinct_tail(seed, n=3, size=60):
    """Scores whose ties are all among the best (a few levels), the rest distinct and lower,
    with per-image candidate masks: the replay stops once no two elements left tie."""
    rng = np.random.default_rng(seed)
    scores = np.empty((n, size), np.float32)
    for image in range(n):
        tied = int(rng.integers(0, size // 2))
        scores[image] = np.concatenate([100 + rng.integers(0, 4, tied),
                                        rng.permutation(size - tied)])[rng.permutation(size)]
    return scores, rng.random((n, size)) < rng.uniform(0.3, 1.0, (n, 1))
