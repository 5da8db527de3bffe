"""The hand-written way: a per-keypoint Python loop decoder.

This is the code PoseNet users typically write (and what onnxpose replaces):
for each keypoint, find the heatmap maximum, read its offsets, scale. It is
the baseline in benchmarks and an independent check of ``--coordinates grid``
and of the stride convention in tests. Plain floats, no integer casts.
"""

from __future__ import annotations

import math

import numpy as np


def decode_single_pose_loop(heatmaps: np.ndarray, short_offsets: np.ndarray, output_stride: int,
                            input_hw: tuple[int, int], coordinates: str = "stride"):
    """One image: heatmaps [h,w,17], short_offsets [h,w,34] → list of 17 (y, x, score)."""
    h, w, num_keypoints = heatmaps.shape
    keypoints = []
    for k in range(num_keypoints):
        best, best_row, best_col = -math.inf, 0, 0
        for row in range(h):
            for col in range(w):
                value = float(heatmaps[row, col, k])
                if value > best:
                    best, best_row, best_col = value, row, col
        offset_y = float(short_offsets[best_row, best_col, k])
        offset_x = float(short_offsets[best_row, best_col, k + num_keypoints])
        if coordinates == "grid":
            y = best_row / (h - 1) * input_hw[0] + offset_y
            x = best_col / (w - 1) * input_hw[1] + offset_x
            score = best
        else:
            y = best_row * output_stride + offset_y
            x = best_col * output_stride + offset_x
            score = 1.0 / (1.0 + math.exp(-best))
        keypoints.append((y, x, score))
    return keypoints
