"""Sums over the keypoints added one at a time, in a fixed order (``summed``).

The pose scores are sums of 17 keypoint scores. ReduceSum and ReduceMean add in an order
of the runtime's own: onnxruntime's differs between two rows of one batch, so an image's
scores could change by an ulp with its place in the batch, and two equal poses could score
apart and swap places. ``summed`` adds from 0, one value at a time (a CumSum, whose last
value is the total), in the order the references add: keypoint order (TF.js's
``getInstanceScore`` and single-pose score) or decreasing order (Coral's
``summed_in_decreasing_order``).
"""

from __future__ import annotations

import numpy as np

from onnxpose.decoder.ops import GraphBuilder


def summed(gb: GraphBuilder, values, count: int, decreasing: bool, name):
    """Sum over the last axis of ``values`` [..., count], added one at a time from 0: in
    index order, or in decreasing order when ``decreasing``: [...]."""
    if decreasing:
        values, _ = gb.topk(values, count, -1, f"{name}/decreasing")
    running = gb.cumsum(values, -1, f"{name}/running")
    return gb.gather(running, gb.scalar(count - 1, np.int64), -1, f"{name}/total")
