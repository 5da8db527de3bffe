"""The setup step both presets start with: clip the heatmaps, set up the batch, lay out
the head tables, find the candidates and read their short offsets. Returns the
``Context`` every later phase reads and the candidate ``Roots``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.finite_heads import clipped_heatmaps
from onnxpose.decoder.multi_pose.candidates import (Queue, build_part_with_score_queue,
                                                    part_of_index)
from onnxpose.decoder.multi_pose.context import Batch, Context, Grid, batch_context, batch_shape
from onnxpose.decoder.multi_pose.head_tables import (SHORT_X, by_root_keypoint, head_tables,
                                                     lookup)
from onnxpose.decoder.multi_pose.skeleton import edge_channels
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import MultiPoseSettings

K17 = NUM_KEYPOINTS


@dataclass(frozen=True)
class Roots:
    """The K candidates: ``valid`` [N,K] bool, ``keypoint`` [N,K] int64, ``cell_yx``
    [N,K,2] float (grid cell), ``offsets`` [N,K,2] (the short offset of the candidate's
    keypoint at its cell, pixels), ``index`` [N,K] (flat scan index); ``queue``: the heap
    still to be applied (``candidates.Queue``, see ``queue_order``) or None."""

    valid: gs.Variable
    keypoint: gs.Variable
    cell_yx: gs.Variable
    offsets: gs.Variable
    index: gs.Variable
    queue: Queue | None = None


def setup(gb: GraphBuilder, grid: Grid, settings: MultiPoseSettings, heads: dict, threshold,
          heat_values, corners: tuple, finite: bool = False) -> tuple[Context, Roots]:
    """``heads``: heatmaps, short_offsets, displacements (NHWC float32); candidates are
    logits at least ``threshold``; ``heat_values(gb, heatmaps)``: what keypoint scores are
    sampled from; ``finite``: the heads are known finite and within +-HEATMAP_LIMIT (no
    clipping, no replacing passes: ``onnxpose.decoder.attach.heads_are_finite``)."""
    clipped = heads["heatmaps"] if finite else clipped_heatmaps(gb, heads["heatmaps"])
    batch: Batch = batch_context(gb, clipped)
    heatmaps, short, mid, heat = head_tables(gb, batch.per_image, grid.w, clipped,
                                             heads["short_offsets"], heads["displacements"],
                                             heat_values, len(corners) > 1, finite)
    index, valid, k, m, queue = build_part_with_score_queue(
        gb, heatmaps, threshold, grid.h, grid.w, grid.k, grid.m, settings)
    ctx = Context(grid, settings, corners, batch, short, mid, heat, k, m,
                  edge_channels(settings.coral_release))
    keypoint, cell_yx = part_of_index(gb, index, grid.w)
    base = by_root_keypoint(gb, np.arange(K17)[:, None] + np.array([0, SHORT_X]), keypoint,
                            "roots/short_base")
    offsets = lookup(gb, short, gb.reshape(cell_yx, [-1, 2], "roots/cells"), base, 2,
                     "roots/short")
    offsets = gb.reshape(offsets, batch_shape(gb, batch, 2), "roots/short_offsets")
    return ctx, Roots(valid, keypoint, cell_yx, offsets, index, queue)
