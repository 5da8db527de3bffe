"""Coral's ``BacktrackDecodePose``: one pose from a root, bilinear sampling.

Everything is in block units (pixels / output stride). From the root, each
directed edge of the walk moves from the (already decoded) source keypoint by
the bilinearly sampled displacement, clamps into the grid, then
``refine_steps`` times adds the bilinearly sampled short offset of the target
keypoint and clamps again. Coral visits the edges best score first; on the
keypoint tree that order does not change any position (see ``pose_tree``).
A keypoint's score is the sigmoid of the heatmap logit sampled bilinearly at
its position (the root's too, at its refined position).

Displacement channels, as Coral derives them (``coral_displacement_channels``):
Coral's ``kEdgeList`` holds 32 directed edges, ids 0..15 the ``POSE_CHAIN``
edges forward (parent -> child), ids 16..31 the same edges backward. The
mid-offset head is 4 blocks of 16 channels, [fwd y][fwd x][bwd y][bwd x];
``BacktrackDecodePose`` moves a backward id 16 further on
(``if (edge_id >= kNumEdges) edge_id += kNumEdges;`` in libcoral's Grouper
release) and ``FindDisplacedPosition`` samples y at ``edge_id`` and x at
``edge_id + kNumEdges``. The decoder google-coral/project-posenet ships
(``posenet_decoder.so``, libcoral's Frogfish release) tests ``edge_id >
kNumEdges``: id 16 (leftEye -> nose, backward of chain edge 0) is not moved and
samples channels 16 (forward x of edge 0) and 32 (backward y of edge 0).
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS, POSE_CHAIN
from onnxpose.reference.bilinear_sample import sample_bilinear
from onnxpose.reference.pose_tree import walk_from
from onnxpose.reference.sigmoid import sigmoid

Point = tuple[np.float32, np.float32]

#: Coral's ``kEdgeList``: the chain forward, then the chain backward (directed-edge ids).
CORAL_EDGE_LIST = tuple(POSE_CHAIN) + tuple((child, parent) for parent, child in POSE_CHAIN)
#: libcoral releases: whether BacktrackDecodePose moves backward edge ``edge_id`` (Coral's
#: kNumEdges = 16 undirected edges) into the backward blocks of the mid-offset head.
CORAL_BACKWARD_ADJUSTMENT = {
    "grouper": lambda edge_id: edge_id >= NUM_EDGES,   # coral/pose_estimation/posenet_decoder.cc
    "frogfish": lambda edge_id: edge_id > NUM_EDGES,   # coral/posenet/posenet_decoder.cc (shipped .so)
}


def coral_edge_id(source: int, target: int) -> int:
    """Coral's directed-edge id of the edge ``source`` -> ``target``."""
    return CORAL_EDGE_LIST.index((source, target))


def coral_displacement_channels(edge_id: int, release: str = "grouper") -> tuple[int, int]:
    """(y, x) mid-offset channels Coral's ``release`` samples for directed edge ``edge_id``."""
    if CORAL_BACKWARD_ADJUSTMENT[release](edge_id):
        edge_id += NUM_EDGES
    return edge_id, edge_id + NUM_EDGES


def clamp_to_grid(y, x, height: int, width: int) -> Point:
    return (min(max(np.float32(y), np.float32(0)), np.float32(height - 1)),
            min(max(np.float32(x), np.float32(0)), np.float32(width - 1)))


def displaced_position(short_offsets, displacements, source: Point, channels: tuple[int, int],
                       target: int, refine_steps: int) -> Point:
    """Coral's ``FindDisplacedPosition``: ``channels`` (y, x) of the mid offsets, then the
    ``target`` keypoint's short offsets."""
    h, w = short_offsets.shape[:2]
    y, x = source
    dy = sample_bilinear(displacements, y, x, channels[0])
    dx = sample_bilinear(displacements, y, x, channels[1])
    y, x = clamp_to_grid(y + dy, x + dx, h, w)
    for _ in range(refine_steps):
        dy = sample_bilinear(short_offsets, y, x, target)
        dx = sample_bilinear(short_offsets, y, x, NUM_KEYPOINTS + target)
        y, x = clamp_to_grid(y + dy, x + dx, h, w)
    return y, x


def decode_pose_coral(root: Point, root_keypoint: int, heatmaps, short_offsets,
                      displacements, refine_steps: int,
                      release: str = "grouper") -> tuple[np.ndarray, np.ndarray]:
    """(points [17, 2] (y, x) in blocks, keypoint scores [17]) of the pose grown from ``root``,
    walked as libcoral's ``release`` walks it."""
    points = {root_keypoint: root}
    for edge in walk_from(root_keypoint):
        channels = coral_displacement_channels(coral_edge_id(edge.source, edge.target), release)
        points[edge.target] = displaced_position(short_offsets, displacements,
                                                 points[edge.source], channels, edge.target,
                                                 refine_steps)
    coords = np.array([points[k] for k in range(NUM_KEYPOINTS)], dtype=np.float32)
    logits = [sample_bilinear(heatmaps, y, x, k) for k, (y, x) in enumerate(coords)]
    return coords, sigmoid(np.array(logits, dtype=np.float32))
