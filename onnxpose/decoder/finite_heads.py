"""Make heads finite before multi-pose decoding; the rule is documented in
``onnxpose.reference.finite_heads`` (which the numpy reference applies, with its own
copy of ``HEATMAP_LIMIT``: the graph's comes from ``onnxpose.spec``).

Heatmaps are clipped (``Clip`` keeps NaN), then NaN logits and non-finite offsets are
replaced: two element-wise nodes for the heatmaps, three for the offsets (0.03-0.06 ms on
the shared photo's heads, decoder alone; more inside the full model, where each is a pass
over a whole head on cold caches). The multi-pose decoder leaves them out when the heads
are known finite (``onnxpose.decoder.attach.heads_are_finite``: dequantized 8-bit heads).
NaN is found as ``x != x`` (no ``IsNaN``: onnxruntime's OpenVINO EP and the WebGPU EP have
no kernel for it), and no ``If`` asks first whether anything is not finite: an ``If`` made
onnxruntime's OpenVINO EP split the graph into pieces it then could not load.
"""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.ops import GraphBuilder
from onnxpose.spec import HEATMAP_LIMIT


def clipped_heatmaps(b: GraphBuilder, heatmaps):
    """Logits clipped to +-HEATMAP_LIMIT (NaN stays NaN)."""
    return b.clip(heatmaps, np.float32(-HEATMAP_LIMIT), np.float32(HEATMAP_LIMIT),
                  "heatmaps_clipped")


def finite_heatmaps(b: GraphBuilder, clipped, name: str = "heatmaps"):
    """Clipped logits with NaN -> -HEATMAP_LIMIT."""
    is_number = b.equal(clipped, clipped, f"{name}_is_number")
    return b.where(is_number, clipped, np.float32(-HEATMAP_LIMIT), f"{name}_finite")


def finite_field(b: GraphBuilder, field, name: str):
    """Non-finite values -> 0 (x - x is NaN exactly where x is NaN or +-inf)."""
    zero = b.sub(field, field, f"{name}_minus_itself")
    return b.where(b.equal(zero, zero, f"{name}_is_finite"), field, np.float32(0),
                   f"{name}_finite")
