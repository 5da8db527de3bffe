"""numpy reference: TF.js PoseNet's decodeSinglePose, vectorized.

Written from the algorithm, independently of the graph code, so that tests
and ``build`` validation can compare the ONNX decoder against it.
"""

from __future__ import annotations

import numpy as np


def argmax_cells(heatmaps: np.ndarray) -> np.ndarray:
    """Flat (row * w + col) index of each keypoint's maximum; [N,17]. First index wins ties."""
    n, h, w, k = heatmaps.shape
    return heatmaps.reshape(n, h * w, k).argmax(axis=1)


def decode_single_pose(heatmaps: np.ndarray, short_offsets: np.ndarray, output_stride: int,
                       input_hw: tuple[int, int], coordinates: str = "stride"):
    """Decode one pose per image.

    heatmaps [N,h,w,17] logits, short_offsets [N,h,w,34] (y then x, pixels).
    ``coordinates="stride"``: ``y = row * output_stride + offset_y``, score =
    sigmoid(logit). ``coordinates="grid"``: ``y = row / (h - 1) * input_h +
    offset_y``, score = the raw heatmap value.
    Returns keypoints float32 [N,17,3] (y, x, score) and pose_score [N].
    """
    heatmaps = np.asarray(heatmaps, np.float32)
    short_offsets = np.asarray(short_offsets, np.float32)
    n, h, w, k = heatmaps.shape
    cells = argmax_cells(heatmaps)
    rows, cols = np.divmod(cells, w)
    take = lambda field: np.take_along_axis(field.reshape(n, h * w, -1), cells[:, None, :], 1)[:, 0]
    logits = take(heatmaps)
    offset_y = take(short_offsets[..., :k])
    offset_x = take(short_offsets[..., k:])
    if coordinates == "stride":
        y = rows.astype(np.float32) * np.float32(output_stride) + offset_y
        x = cols.astype(np.float32) * np.float32(output_stride) + offset_x
        scores = 1.0 / (1.0 + np.exp(-logits))
    elif coordinates == "grid":
        y = rows.astype(np.float32) / np.float32(h - 1) * np.float32(input_hw[0]) + offset_y
        x = cols.astype(np.float32) / np.float32(w - 1) * np.float32(input_hw[1]) + offset_x
        scores = logits
    else:
        raise ValueError(f"unknown coordinates {coordinates!r}")
    keypoints = np.stack([y, x, scores], axis=-1).astype(np.float32)
    return keypoints, keypoints[..., 2].mean(axis=1)
