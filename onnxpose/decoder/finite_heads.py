"""Make heads finite before multi-pose decoding; the rule is documented in
``onnxpose.reference.finite_heads`` (which the numpy reference applies too).

Heatmaps (17 channels, cheap) are always clipped and cleaned. For the offset
fields the question is asked once per batch: the sum of all their values is
finite exactly when none is NaN or infinite (or the sum overflows, which only
sends the batch down the same, always correct, path). Only then does an
``If`` run the three full-size passes per field that replace non-finite
values; finite fields go straight to ``finish`` (the decoder's table layout),
so the usual case costs one ``ReduceSum`` per field.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.reference.finite_heads import HEATMAP_LIMIT

Finish = Callable[[GraphBuilder, gs.Variable, str], gs.Variable]


def finite_heatmaps(b: GraphBuilder, heatmaps):
    """Logits clipped to +-HEATMAP_LIMIT; NaN -> -HEATMAP_LIMIT."""
    clipped = b.clip(heatmaps, np.float32(-HEATMAP_LIMIT), np.float32(HEATMAP_LIMIT),
                     "heatmaps_clipped")                       # Clip keeps NaN
    is_nan = b.op("IsNaN", [heatmaps], "heatmaps_is_nan")
    return b.where(is_nan, np.float32(-HEATMAP_LIMIT), clipped, "heatmaps_finite")


def finite_field(b: GraphBuilder, field, name: str):
    """Non-finite values → 0 (x - x is NaN exactly where x is NaN or +-inf)."""
    not_finite = b.op("IsNaN", [b.sub(field, field, f"{name}_minus_itself")], f"{name}_not_finite")
    return b.where(not_finite, np.float32(0), field, f"{name}_finite")


def _branch(b: GraphBuilder, name: str, outputs_of) -> gs.Graph:
    graph = gs.Graph(name=b.name(name))
    outputs = outputs_of(GraphBuilder(graph, b.name(f"{name}/")))
    for tensor in outputs:
        tensor.dtype = np.float32
    graph.outputs = outputs
    return graph


def finite_fields(b: GraphBuilder, fields: dict, finish: Finish) -> list:
    """``finish(builder, field, name)`` of every field of ``fields`` ({name: tensor}) with
    non-finite values replaced by 0; the replacement only runs when there is one."""
    sums = [b.reduce_sum(field, [0, 1, 2, 3], f"finite/{name}_sum")
            for name, field in fields.items()]
    total = sums[0]
    for i, partial in enumerate(sums[1:]):
        total = b.add(total, partial, f"finite/sum_{i}")
    not_finite = b.op("IsNaN", [b.sub(total, total, "finite/sum_minus_itself")],
                      "finite/any_not_finite")

    def replace(g: GraphBuilder):
        return [finish(g, finite_field(g, field, name), name) for name, field in fields.items()]

    def keep(g: GraphBuilder):
        return [finish(g, field, name) for name, field in fields.items()]

    outputs = b.op("If", [not_finite], "finite/fields",
                   {"then_branch": _branch(b, "finite/replace", replace),
                    "else_branch": _branch(b, "finite/keep", keep)}, num_outputs=len(fields),
                   output_names=[f"{name}_finished" for name in fields])
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for output in outputs:
        output.dtype = np.float32
    return outputs
