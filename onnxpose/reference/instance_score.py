"""TF.js PoseNet's ``getInstanceScore``.

The sum of the scores of the keypoints that are not within the NMS radius of
the same keypoint of any previously decoded pose, divided by 17.
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.reference.keypoint_nms import within_nms_radius


def instance_score(previous_points: list[np.ndarray], squared_radius, points: np.ndarray,
                   keypoint_scores: np.ndarray) -> np.float32:
    total = np.float32(0)
    for k in range(NUM_KEYPOINTS):
        if not within_nms_radius(previous_points, squared_radius, points[k], k):
            total = np.float32(total + keypoint_scores[k])
    return np.float32(total / np.float32(NUM_KEYPOINTS))
