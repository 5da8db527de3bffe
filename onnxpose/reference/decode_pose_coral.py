"""Coral's ``BacktrackDecodePose``: one pose from a root, bilinear sampling.

Everything is in block units (pixels / output stride). From the root, each
directed edge of the walk moves from the (already decoded) source keypoint by
the bilinearly sampled displacement, clamps into the grid, then
``refine_steps`` times adds the bilinearly sampled short offset of the target
keypoint and clamps again. Coral visits the edges best score first; on the
keypoint tree that order does not change any position (see ``pose_tree``).
A keypoint's score is the sigmoid of the heatmap logit sampled bilinearly at
its position (the root's too, at its refined position).
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.reference.bilinear_sample import sample_bilinear
from onnxpose.reference.pose_tree import walk_from
from onnxpose.reference.sigmoid import sigmoid

Point = tuple[np.float32, np.float32]


def clamp_to_grid(y, x, height: int, width: int) -> Point:
    return (min(max(np.float32(y), np.float32(0)), np.float32(height - 1)),
            min(max(np.float32(x), np.float32(0)), np.float32(width - 1)))


def displaced_position(short_offsets, displacements, source: Point, edge,
                       refine_steps: int) -> Point:
    """Coral's ``FindDisplacedPosition``."""
    h, w = short_offsets.shape[:2]
    y, x = source
    dy = sample_bilinear(displacements, y, x, edge.channel_y)
    dx = sample_bilinear(displacements, y, x, edge.channel_x)
    y, x = clamp_to_grid(y + dy, x + dx, h, w)
    for _ in range(refine_steps):
        dy = sample_bilinear(short_offsets, y, x, edge.target)
        dx = sample_bilinear(short_offsets, y, x, NUM_KEYPOINTS + edge.target)
        y, x = clamp_to_grid(y + dy, x + dx, h, w)
    return y, x


def decode_pose_coral(root: Point, root_keypoint: int, heatmaps, short_offsets,
                      displacements, refine_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(points [17, 2] (y, x) in blocks, keypoint scores [17]) of the pose grown from ``root``."""
    points = {root_keypoint: root}
    for edge in walk_from(root_keypoint):
        points[edge.target] = displaced_position(short_offsets, displacements,
                                                 points[edge.source], edge, refine_steps)
    coords = np.array([points[k] for k in range(NUM_KEYPOINTS)], dtype=np.float32)
    logits = [sample_bilinear(heatmaps, y, x, k) for k, (y, x) in enumerate(coords)]
    return coords, sigmoid(np.array(logits, dtype=np.float32))
