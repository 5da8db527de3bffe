"""Make heads finite before multi-pose decoding; the rule is documented in
``onnxpose.reference.finite_heads`` (which the numpy reference applies too)."""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.reference.finite_heads import HEATMAP_LIMIT


def finite_heatmaps(b: GraphBuilder, heatmaps):
    clipped = b.clip(heatmaps, np.float32(-HEATMAP_LIMIT), np.float32(HEATMAP_LIMIT), "heatmaps_clipped")
    is_nan = b.op("IsNaN", [heatmaps], "heatmaps_is_nan")
    return b.where(is_nan, np.float32(-HEATMAP_LIMIT), clipped, "heatmaps_finite")


def finite_field(b: GraphBuilder, field, name: str):
    """Non-finite values → 0 (x - x is NaN exactly where x is NaN or +-inf)."""
    not_finite = b.op("IsNaN", [b.sub(field, field, f"{name}_minus_itself")], f"{name}_not_finite")
    return b.where(not_finite, np.float32(0), field, f"{name}_finite")


def append_finite_heads(b: GraphBuilder, heatmaps, short_offsets, displacements):
    return (finite_heatmaps(b, heatmaps), finite_field(b, short_offsets, "short_offsets"),
            finite_field(b, displacements, "displacements"))
