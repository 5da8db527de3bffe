"""Coral's bilinear sampling of a [h, w, C] tensor at a fractional point.

The corner indices come from the point clamped into the grid, the
interpolation weights from the unclamped point (as Coral's
``BuildLinearInterpolation``). All arithmetic is float32.
"""

from __future__ import annotations

import math

import numpy as np


def linear_interpolation(v: np.float32, n: int) -> tuple[int, int, np.float32]:
    """(floor index, ceil index, lerp weight) of coordinate ``v`` on an axis of size ``n``."""
    projected = min(max(v, np.float32(0)), np.float32(n - 1))
    lo = math.floor(projected)
    hi = math.ceil(projected)
    return lo, hi, np.float32(v - np.float32(lo))


def sample_bilinear(tensor: np.ndarray, y: np.float32, x: np.float32, channel: int) -> np.float32:
    """``tensor[y, x, channel]`` interpolated bilinearly (Coral's formula)."""
    h, w = tensor.shape[:2]
    y0, y1, ly = linear_interpolation(y, h)
    x0, x1, lx = linear_interpolation(x, w)
    one = np.float32(1)
    top = (one - lx) * tensor[y0, x0, channel] + lx * tensor[y0, x1, channel]
    bottom = (one - lx) * tensor[y1, x0, channel] + lx * tensor[y1, x1, channel]
    return np.float32((one - ly) * top + ly * bottom)
