"""What the multi-pose decoders do with non-finite heads (NaN, +-inf).

Heatmap logits: NaN counts as a very unlikely cell (-HEATMAP_LIMIT) and every
logit is clipped to +-HEATMAP_LIMIT, which saturates the sigmoid in float32
and keeps bilinear sampling finite (0 * inf would be NaN). Short offsets and
displacements: non-finite values count as 0. So the decoded keypoints,
scores and counts are always finite. The graph applies the same rule
(``onnxpose.decoder.finite_heads``).
"""

from __future__ import annotations

import numpy as np

HEATMAP_LIMIT = 1e4


def finite_heads(heatmaps, short_offsets, displacements):
    heatmaps = np.asarray(heatmaps, np.float32)
    heatmaps = np.where(np.isnan(heatmaps), np.float32(-HEATMAP_LIMIT),
                        np.clip(heatmaps, -HEATMAP_LIMIT, HEATMAP_LIMIT)).astype(np.float32)
    finite = lambda field: np.where(np.isfinite(field), field, np.float32(0)).astype(np.float32)
    return heatmaps, finite(short_offsets), finite(displacements)
