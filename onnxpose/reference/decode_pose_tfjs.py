"""TF.js PoseNet's ``decodePose``: one pose from a root, nearest-cell sampling.

Positions are in input pixels. Starting at the root (its cell times the stride
plus its short offset, score = the part score at the root's cell), the tree is walked
like TF.js: the backward edges from last to first (towards the nose), then the
forward edges from first to last; an edge is followed when its source is
decoded and its target is not (``traverseToTargetKeypoint``): the
displacement is read at the source's nearest cell and added; then
``refine_steps`` times the point becomes its nearest cell (times the stride)
plus the target's short offset there. The score is the target's part score at
the nearest cell of the final point. Nearest cells are clamped into the grid;
the points themselves are not.
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS
from onnxpose.reference.build_part_with_score_queue import Part
from onnxpose.reference.pose_tree import DirectedEdge, backward_edge, forward_edge
from onnxpose.reference.strided_index import strided_index_near_point


def image_coords(part: Part, output_stride: int, offsets: np.ndarray):
    """``getImageCoords``: the part's cell in pixels plus its short offset."""
    stride = np.float32(output_stride)
    return (np.float32(part.y * stride + offsets[part.y, part.x, part.keypoint]),
            np.float32(part.x * stride + offsets[part.y, part.x, NUM_KEYPOINTS + part.keypoint]))


def traverse_to_target_keypoint(edge: DirectedEdge, source, scores, offsets, displacements,
                                output_stride: int, refine_steps: int):
    """(point, score) of ``edge.target`` reached from ``source`` (pixels)."""
    h, w = scores.shape[:2]
    stride = np.float32(output_stride)
    row, col = strided_index_near_point(*source, output_stride, h, w)
    y = np.float32(source[0] + displacements[row, col, edge.channel_y])
    x = np.float32(source[1] + displacements[row, col, edge.channel_x])
    for _ in range(refine_steps):
        row, col = strided_index_near_point(y, x, output_stride, h, w)
        y = np.float32(row * stride + offsets[row, col, edge.target])
        x = np.float32(col * stride + offsets[row, col, NUM_KEYPOINTS + edge.target])
    row, col = strided_index_near_point(y, x, output_stride, h, w)
    return (y, x), scores[row, col, edge.target]


def tfjs_walk() -> list[DirectedEdge]:
    """Backward edges last to first, then forward edges first to last."""
    return ([backward_edge(e) for e in reversed(range(NUM_EDGES))]
            + [forward_edge(e) for e in range(NUM_EDGES)])


def decode_pose_tfjs(root: Part, scores, offsets, displacements, output_stride: int,
                     refine_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(points [17, 2] (y, x) in pixels, keypoint scores [17]) of the pose grown from ``root``."""
    points = {root.keypoint: image_coords(root, output_stride, offsets)}
    keypoint_scores = {root.keypoint: scores[root.y, root.x, root.keypoint]}
    for edge in tfjs_walk():
        if edge.source in points and edge.target not in points:
            points[edge.target], keypoint_scores[edge.target] = traverse_to_target_keypoint(
                edge, points[edge.source], scores, offsets, displacements, output_stride,
                refine_steps)
    return (np.array([points[k] for k in range(NUM_KEYPOINTS)], dtype=np.float32),
            np.array([keypoint_scores[k] for k in range(NUM_KEYPOINTS)], dtype=np.float32))
