"""TF.js PoseNet's nearest heatmap cell of a point given in input pixels."""

from __future__ import annotations

import math

import numpy as np


def round_half_up(v: np.float32) -> int:
    """JavaScript ``Math.round`` (ties toward +infinity), on a float32 value."""
    return math.floor(np.float32(v + np.float32(0.5)))


def strided_index_near_point(y: np.float32, x: np.float32, output_stride: int,
                             height: int, width: int) -> tuple[int, int]:
    """``getStridedIndexNearPoint``: the clamped grid cell nearest to (y, x) pixels."""
    stride = np.float32(output_stride)
    row = min(max(round_half_up(np.float32(y / stride)), 0), height - 1)
    col = min(max(round_half_up(np.float32(x / stride)), 0), width - 1)
    return row, col
