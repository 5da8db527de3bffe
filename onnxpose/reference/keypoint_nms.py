"""Part-based non-maximum suppression shared by both multi-pose decoders."""

from __future__ import annotations

import numpy as np


def squared_distance(a, b) -> np.float32:
    dy = np.float32(b[0] - a[0])
    dx = np.float32(b[1] - a[1])
    return np.float32(dy * dy + dx * dx)


def within_nms_radius(pose_points: list[np.ndarray], squared_radius, point, keypoint: int) -> bool:
    """Whether ``point`` lies within the radius of ``keypoint`` of any of ``pose_points``."""
    return any(squared_distance(point, points[keypoint]) <= squared_radius
               for points in pose_points)
