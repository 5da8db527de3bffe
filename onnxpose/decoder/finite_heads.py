"""Make heads finite before multi-pose decoding; the rule is documented in
``onnxpose.reference.finite_heads`` (which the numpy reference applies, with its own
copy of ``HEATMAP_LIMIT``: the graph's comes from ``onnxpose.spec``).

Heatmaps are always clipped (``Clip`` keeps NaN). Whether anything else is
needed is asked once per batch: the sum of all values is finite exactly when
none is NaN or infinite (or the sum overflows, which only sends the batch
down the same, always correct, path). Only then does an ``If`` run the
full-size passes that replace NaN logits and non-finite offsets; finite heads
go straight to ``finish`` (the decoder's table layout), so the usual case
costs one ``ReduceSum`` per head.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.spec import HEATMAP_LIMIT

Finish = Callable[[GraphBuilder, gs.Variable, str], gs.Variable]


def clipped_heatmaps(b: GraphBuilder, heatmaps):
    """Logits clipped to +-HEATMAP_LIMIT (NaN stays NaN)."""
    return b.clip(heatmaps, np.float32(-HEATMAP_LIMIT), np.float32(HEATMAP_LIMIT),
                  "heatmaps_clipped")


def finite_heatmaps(b: GraphBuilder, clipped, name: str = "heatmaps"):
    """Clipped logits with NaN -> -HEATMAP_LIMIT."""
    is_nan = b.op("IsNaN", [clipped], f"{name}_is_nan")
    return b.where(is_nan, np.float32(-HEATMAP_LIMIT), clipped, f"{name}_finite")


def finite_field(b: GraphBuilder, field, name: str):
    """Non-finite values → 0 (x - x is NaN exactly where x is NaN or +-inf)."""
    not_finite = b.op("IsNaN", [b.sub(field, field, f"{name}_minus_itself")], f"{name}_not_finite")
    return b.where(not_finite, np.float32(0), field, f"{name}_finite")


def _branch(b: GraphBuilder, name: str, outputs_of) -> gs.Graph:
    branch = b.branch(name)
    graph = branch.graph
    outputs = outputs_of(branch)
    for tensor in outputs:
        tensor.dtype = np.float32
    graph.outputs = outputs
    return graph


def finite_heads(b: GraphBuilder, heads: dict, finish: Finish, always: bool = False) -> list:
    """``finish(builder, head, name)`` of every head of ``heads`` ({name: tensor}; a name
    ending in ``heatmaps`` holds clipped logits, NaN -> -HEATMAP_LIMIT, the others offsets,
    non-finite -> 0); the replacement passes only run when some value is not finite
    (``always``: they always run, no ``If``)."""
    if always:
        return [finish(b, finite_heatmaps(b, head, name) if name.endswith("heatmaps")
                       else finite_field(b, head, name), name) for name, head in heads.items()]
    sums = [b.reduce_sum(head, [0, 1, 2, 3], f"finite/{name}_sum") for name, head in heads.items()]
    total = sums[0]
    for i, partial in enumerate(sums[1:]):
        total = b.add(total, partial, f"finite/sum_{i}")
    not_finite = b.op("IsNaN", [b.sub(total, total, "finite/sum_minus_itself")],
                      "finite/any_not_finite")

    def cleaned(g: GraphBuilder, name, head):
        return (finite_heatmaps(g, head, name) if name.endswith("heatmaps")
                else finite_field(g, head, name))

    def replace(g: GraphBuilder):
        return [finish(g, cleaned(g, name, head), name) for name, head in heads.items()]

    def keep(g: GraphBuilder):
        return [finish(g, head, name) for name, head in heads.items()]

    outputs = b.op("If", [not_finite], "finite/heads",
                   {"then_branch": _branch(b, "finite/replace", replace),
                    "else_branch": _branch(b, "finite/keep", keep)}, num_outputs=len(heads),
                   output_names=[f"{name}_finished" for name in heads])
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for output in outputs:
        output.dtype = np.float32
    return outputs
