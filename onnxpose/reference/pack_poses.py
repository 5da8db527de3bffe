"""Fixed-size output arrays from a list of decoded poses."""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_KEYPOINTS


def pack_poses(poses: list[tuple[np.ndarray, np.ndarray, float]], max_poses: int):
    """``poses``: (points [17, 2] (y, x) in pixels, keypoint scores [17], pose score).

    Returns keypoints [max_poses, 17, 3] (y, x, score), pose scores [max_poses]
    and the pose count; rows past the count are zero.
    """
    keypoints = np.zeros((max_poses, NUM_KEYPOINTS, 3), dtype=np.float32)
    scores = np.zeros((max_poses,), dtype=np.float32)
    for i, (points, keypoint_scores, pose_score) in enumerate(poses[:max_poses]):
        keypoints[i, :, :2] = points
        keypoints[i, :, 2] = keypoint_scores
        scores[i] = pose_score
    return keypoints, scores, np.int32(min(len(poses), max_poses))


def stack_batch(per_image: list[tuple[np.ndarray, np.ndarray, np.int32]]):
    keypoints, scores, counts = zip(*per_image)
    return np.stack(keypoints), np.stack(scores), np.array(counts, dtype=np.int32)
