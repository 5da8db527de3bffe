"""The pose tree as data, derived here from ``onnxpose.keypoints.POSE_CHAIN``.

The decoder's own derivation (the numpy references derive theirs on their own,
``onnxpose.reference.pose_tree``, so a wrong table cannot pass validation):
the 32 directed edges (16 forward parent -> child, then 16 backward), the walk
from each root keypoint, its schedule in steps of ``width`` edges, and the
per-step tables the graph gathers by root keypoint. Which displacement channels
an edge samples is a parameter (``channels``: edge -> (channel_y, channel_x)),
so that a variant can sample one edge elsewhere (Coral's "frogfish" release
samples backward edge 0, leftEye -> nose, at channels 16 and 32).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, NamedTuple

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS, POSE_CHAIN

K17 = NUM_KEYPOINTS
WALK_WIDTH = 3                   # edges per walk step (3 -> 8 steps, the tree's depth)


class DirectedEdge(NamedTuple):
    """Edge ``index`` of POSE_CHAIN, walked from ``source`` to ``target``."""

    index: int
    forward: bool
    source: int
    target: int


def displacement_channels(edge: DirectedEdge) -> tuple[int, int]:
    """PoseNet's displacement head: forward edge e at (e, 16 + e), backward (32 + e, 48 + e)."""
    first = 0 if edge.forward else 2 * NUM_EDGES
    return first + edge.index, first + NUM_EDGES + edge.index


def frogfish_displacement_channels(edge: DirectedEdge) -> tuple[int, int]:
    """Coral's shipped op (libcoral Frogfish, ``posenet_decoder.so``): its BacktrackDecodePose
    tests ``edge_id > kNumEdges`` where Grouper tests ``>=``, so backward edge 0 (leftEye ->
    nose) reads channels (16, 32) instead of (32, 48); every other edge as PoseNet's head."""
    if not edge.forward and edge.index == 0:
        return NUM_EDGES, 2 * NUM_EDGES
    return displacement_channels(edge)


Channels = Callable[[DirectedEdge], tuple[int, int]]

#: the edge -> displacement channels of each Coral release (TF.js reads Grouper's)
RELEASE_CHANNELS: dict[str, Channels] = {"grouper": displacement_channels,
                                         "frogfish": frogfish_displacement_channels}


def edge_channels(release: str) -> Channels:
    """The displacement channels a decoder of ``release`` samples for each directed edge."""
    return RELEASE_CHANNELS[release]


def directed_edges() -> list[DirectedEdge]:
    """All 32 directed edges: the 16 forward ones, then the 16 backward ones."""
    return ([DirectedEdge(e, True, *POSE_CHAIN[e]) for e in range(NUM_EDGES)]
            + [DirectedEdge(e, False, *POSE_CHAIN[e][::-1]) for e in range(NUM_EDGES)])


def walk_from(root: int) -> list[DirectedEdge]:
    """The 16 directed edges that reach every keypoint from ``root``, breadth first."""
    reached, queue, walk = {root}, deque([root]), []
    while queue:
        source = queue.popleft()
        for edge in directed_edges():
            if edge.source == source and edge.target not in reached:
                reached.add(edge.target)
                walk.append(edge)
                queue.append(edge.target)
    return walk


def _subtree_heights(root: int) -> tuple[dict, dict]:
    children: dict[int, list[DirectedEdge]] = {}
    for edge in walk_from(root):
        children.setdefault(edge.source, []).append(edge)
    heights: dict[int, int] = {}

    def height(k: int) -> int:
        heights[k] = 1 + max((height(e.target) for e in children.get(k, [])), default=0)
        return heights[k]

    height(root)
    return children, heights


def walk_schedule(root: int, width: int = WALK_WIDTH) -> list[list[DirectedEdge]]:
    """The walk from ``root`` as steps of at most ``width`` edges whose sources are done.

    Highest-subtree-first list scheduling; every target comes after its source.
    """
    children, heights = _subtree_heights(root)
    ready, steps = list(children.get(root, [])), []
    while ready:
        ready.sort(key=lambda e: (-heights[e.target], e.target))
        step, ready = ready[:width], ready[width:]
        for edge in step:
            ready += children.get(edge.target, [])
        steps.append(step)
    return steps


def walk_tables(width: int = WALK_WIDTH,
                channels: Channels = displacement_channels) -> dict[str, np.ndarray]:
    """Per (step, root keypoint, slot) tables of the scheduled walk.

    Points are stored in schedule order: slot 0 is the root, step d slot s is
    ``1 + d * width + s``. ``source``: slot of the edge's source; ``target``:
    keypoint reached; ``channel_y`` / ``channel_x``: the edge's displacement channels
    (``channels(edge)``); idle slots re-walk the root (harmless, never read back).
    ``order[root, k]``: slot of keypoint k.
    """
    schedules = [walk_schedule(r, width) for r in range(K17)]
    depth = max(len(s) for s in schedules)
    source = np.zeros((depth, K17, width), np.int64)
    target = np.tile(np.arange(K17)[None, :, None], (depth, 1, width))
    channel_y = np.zeros((depth, K17, width), np.int64)
    channel_x = np.full((depth, K17, width), NUM_EDGES, np.int64)
    order = np.zeros((K17, K17), np.int64)
    for root, steps in enumerate(schedules):
        slot_of = {root: 0}
        for d, step in enumerate(steps):
            for s, e in enumerate(step):
                source[d, root, s] = slot_of[e.source]
                target[d, root, s] = e.target
                channel_y[d, root, s], channel_x[d, root, s] = channels(e)
                slot_of[e.target] = 1 + d * width + s
        order[root] = [slot_of[k] for k in range(K17)]
    return {"source": source, "target": target, "channel_y": channel_y,
            "channel_x": channel_x, "order": order}
