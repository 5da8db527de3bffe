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

Displacements as TF.js reads them: two tensors, ``displacementsFwd`` (used by
the forward edges) and ``displacementsBwd`` (the backward ones), each [h, w,
2 * numEdges]; ``getDisplacement(edgeId, ...)`` reads y at ``edgeId`` and x at
``numEdges + edgeId`` of the edge's tensor. Edge ``edgeId`` joins
``parentToChildEdges[edgeId]`` (child) and ``childToParentEdges[edgeId]``
(parent) of ``POSE_CHAIN``. onnxpose's displacement head is the two tensors
concatenated (``split_displacements``).
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS
from onnxpose.reference.build_part_with_score_queue import Part
from onnxpose.reference.pose_tree import BACKWARD, DirectedEdge, backward_edge, forward_edge
from onnxpose.reference.strided_index import strided_index_near_point


def image_coords(part: Part, output_stride: int, offsets: np.ndarray):
    """``getImageCoords``: the part's cell in pixels plus its short offset."""
    stride = np.float32(output_stride)
    return (np.float32(part.y * stride + offsets[part.y, part.x, part.keypoint]),
            np.float32(part.x * stride + offsets[part.y, part.x, NUM_KEYPOINTS + part.keypoint]))


def split_displacements(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(displacementsFwd, displacementsBwd), each [h, w, 2 * numEdges], of the
    concatenated [h, w, 4 * numEdges] head."""
    return displacements[..., :2 * NUM_EDGES], displacements[..., 2 * NUM_EDGES:]


def get_displacement(edge_id: int, row: int, col: int, displacements: np.ndarray):
    """TF.js ``getDisplacement``: (y, x) of edge ``edge_id`` in one direction's tensor."""
    num_edges = displacements.shape[-1] // 2
    return displacements[row, col, edge_id], displacements[row, col, num_edges + edge_id]


def traverse_to_target_keypoint(edge: DirectedEdge, source, scores, offsets, displacements,
                                output_stride: int, refine_steps: int):
    """(point, score) of ``edge.target`` reached from ``source`` (pixels); ``displacements``:
    the concatenated head, of which the edge's direction picks TF.js's tensor."""
    h, w = scores.shape[:2]
    stride = np.float32(output_stride)
    forward, backward = split_displacements(displacements)
    row, col = strided_index_near_point(*source, output_stride, h, w)
    dy, dx = get_displacement(edge.edge, row, col,
                              backward if edge.direction == BACKWARD else forward)
    y = np.float32(source[0] + dy)
    x = np.float32(source[1] + dx)
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
