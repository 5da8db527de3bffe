"""The keypoint tree as directed edges, and walk orders from a root keypoint.

Each of the 16 ``POSE_CHAIN`` edges (parent, child) can be followed both ways:
forward (parent -> child) or backward (child -> parent). A ``DirectedEdge``
says which keypoints it joins, which chain edge it is and in which direction
it goes; it does not say where its displacement lies in a head. Each
reference decoder derives that from its own peer's algorithm: Coral's
directed-edge ids and its release's backward-edge adjustment
(``decode_pose_coral.coral_displacement_channels``), TF.js's separate forward
and backward displacement tensors (``decode_pose_tfjs``), so that the
references check the graph's channel table instead of sharing it.

Because the skeleton is a tree, the path from a root keypoint to any other
keypoint is unique: whatever order a decoder visits the edges in (Coral: best
score first; TF.js: all backward edges, then all forward edges), each target
keypoint is reached from the same source keypoint over the same edge.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS, POSE_CHAIN

FORWARD, BACKWARD = "forward", "backward"


class DirectedEdge(NamedTuple):
    source: int
    target: int
    edge: int          # index of the chain edge in POSE_CHAIN
    direction: str     # FORWARD (parent -> child) or BACKWARD (child -> parent)



def forward_edge(edge: int) -> DirectedEdge:
    parent, child = POSE_CHAIN[edge]
    return DirectedEdge(parent, child, edge, FORWARD)


def backward_edge(edge: int) -> DirectedEdge:
    parent, child = POSE_CHAIN[edge]
    return DirectedEdge(child, parent, edge, BACKWARD)


def directed_edges() -> list[DirectedEdge]:
    """All 32 directed edges: the 16 forward ones, then the 16 backward ones."""
    return ([forward_edge(e) for e in range(NUM_EDGES)]
            + [backward_edge(e) for e in range(NUM_EDGES)])


def walk_from(root: int) -> list[DirectedEdge]:
    """The 16 directed edges that reach every keypoint from ``root``, breadth first."""
    reached = {root}
    queue = deque([root])
    walk = []
    while queue:
        source = queue.popleft()
        for edge in directed_edges():
            if edge.source == source and edge.target not in reached:
                reached.add(edge.target)
                walk.append(edge)
                queue.append(edge.target)
    assert len(reached) == NUM_KEYPOINTS
    return walk


def depth_from(root: int) -> list[int]:
    """Number of edges between ``root`` and each keypoint."""
    depth = [0] * NUM_KEYPOINTS
    for edge in walk_from(root):
        depth[edge.target] = depth[edge.source] + 1
    return depth
