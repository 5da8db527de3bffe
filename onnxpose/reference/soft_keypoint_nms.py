"""Coral's ``PerformSoftKeypointNMS``: instance re-scoring.

Poses are visited in decreasing instance score order (stable: equal scores
keep their decoding order). A keypoint that lies within the NMS radius of the
same keypoint of any higher-scoring pose no longer counts; the new instance
score is the sum of the counted keypoint scores divided by 17.
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.reference.keypoint_nms import within_nms_radius


def decreasing_order(scores) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def summed_in_decreasing_order(values) -> np.float32:
    total = np.float32(0)
    for v in sorted(values, reverse=True):
        total = np.float32(total + v)
    return total


def soft_keypoint_nms(points: list[np.ndarray], keypoint_scores: list[np.ndarray],
                      instance_scores: list, squared_radius) -> list[np.float32]:
    """New instance score of every pose (same order as the inputs)."""
    order = decreasing_order(instance_scores)
    rescored = [np.float32(0)] * len(points)
    for rank, i in enumerate(order):
        higher = [points[j] for j in order[:rank]]
        counted = [keypoint_scores[i][k] for k in range(NUM_KEYPOINTS)
                   if not within_nms_radius(higher, squared_radius, points[i][k], k)]
        rescored[i] = np.float32(summed_in_decreasing_order(counted) / np.float32(NUM_KEYPOINTS))
    return rescored
