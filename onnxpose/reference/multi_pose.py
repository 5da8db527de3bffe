"""Multi-pose reference decoding by preset (what the ONNX multi-pose decoder computes).

``decode_multiple_poses`` dispatches on ``settings.preset`` to
``decode_multiple_poses_coral`` or ``decode_multiple_poses_tfjs``. It takes
equal-score candidates in the order ``settings.tie_order`` says, as the ONNX
graph does (``scan``: scan order, the graph's ``TopK``; ``heap``: Coral's
priority queue), so that it can check built models; ``tie_order`` overrides
it (``"heap"`` for the tfjs preset replays TF.js's ``MaxHeap``).
Non-finite heads are first made finite as the graph does
(``onnxpose.reference.finite_heads``).
"""

from __future__ import annotations

from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.decode_multiple_poses_coral import decode_multiple_poses_coral
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs
from onnxpose.reference.finite_heads import finite_heads

DECODERS = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}


def decode_multiple_poses(heatmaps, short_offsets, displacements, output_stride: int,
                          settings: MultiPoseSettings, *, tie_order: str | None = None):
    """(keypoints [N,P,17,3], pose_scores [N,P], pose_count [N] int32); see the presets."""
    heatmaps, short_offsets, displacements = finite_heads(heatmaps, short_offsets, displacements)
    return DECODERS[settings.preset](heatmaps, short_offsets, displacements, output_stride,
                                     settings, tie_order=tie_order or settings.tie_order)
