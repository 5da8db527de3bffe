"""The decoder's context: static sizes, the batch bookkeeping, and the tables and
candidate counts every phase reads. ``setup.setup`` builds it once; every graph
function takes it (and the builder ``gb``) explicitly and never changes it.

Points are processed as 2-D row batches ([rows, 2], rows ordered image,
candidate, slot) so that element-wise ops see equal shapes and the few matrix
products are plain 2-D GEMMs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.multi_pose.head_tables import HeadTable
from onnxpose.decoder.multi_pose.skeleton import DirectedEdge, displacement_channels
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.spec import MultiPoseSettings


@dataclass(frozen=True)
class Grid:
    """Static sizes of one decoder."""

    h: int
    w: int
    stride: int
    k: int            # at most this many candidates tried as roots (fewer at run time when
                      # no image of the batch has that many: ``Context.k``)
    m: int            # at most this many poses kept before padding to max_poses
    width: int        # walk edges per step


@dataclass(frozen=True)
class Batch:
    """``images`` [N,1] image index; ``size`` [1] N; ``per_image`` the shape [N, -1]."""

    images: gs.Variable
    size: gs.Variable
    per_image: gs.Variable


@dataclass(frozen=True)
class Context:
    """What every phase after the setup reads (see ``setup.setup``)."""

    grid: Grid
    settings: MultiPoseSettings
    corners: tuple        # sampled corners as (down, right) steps: 4 (Coral) or 1 (TF.js)
    batch: Batch
    short: HeadTable      # short offsets (y at t, x at t + 17)
    mid: HeadTable        # displacements (channels from ``edge_channels``)
    heat: HeadTable       # what keypoint scores are sampled from
    k: gs.Variable        # [1] int64: candidates tried (at most grid.k)
    m: gs.Variable        # [1] int64: min(k, max_poses)
    edge_channels: Callable[[DirectedEdge], tuple[int, int]] = displacement_channels


def batch_context(gb: GraphBuilder, heatmaps) -> Batch:
    """The image index [N,1] of each image, N, and the shape [N, -1] of per-image rows."""
    n = gb.gather(gb.shape(heatmaps, "batch/shape"), gb.scalar(0, np.int64), 0, "batch/size")
    # (heatmaps: already clipped, so that each dequantized head has one consumer and
    # onnxruntime's QDQ optimizer does not duplicate its DequantizeLinear)
    images = gb.range_(gb.scalar(0, np.int64), n, gb.scalar(1, np.int64), "batch/images")
    images = gb.reshape(images, [-1, 1], "batch/image_col")                    # [N, 1]
    size = gb.unsqueeze(n, [0], "batch/size_1d")
    return Batch(images, size, _shape(gb, size, ()))


def _shape(gb: GraphBuilder, size, rest: tuple):
    name = "_".join(map(str, rest)) or "rows"
    return gb.concat([size, np.array([-1, *rest], np.int64)], 0, f"batch/shape_{name}")


def batch_shape(gb: GraphBuilder, batch: Batch, *rest: int):
    """The shape tensor [N, -1, *rest] (each ``rest`` is asked for once per graph)."""
    return batch.per_image if not rest else _shape(gb, batch.size, rest)


def row_offsets(gb: GraphBuilder, batch: Batch, per_image, name: str):
    """[N, 1]: ``n * per_image`` ([1] int64), to address rows of [N * per_image, ...]."""
    return gb.mul(batch.images, per_image, name)


def upper_bounds(gb: GraphBuilder, grid: Grid, like, columns: int, name: str):
    """[rows, 2] float (h - 1, w - 1), as many rows as ``like`` [rows, columns] (equal
    shapes run faster than broadcasting)."""
    return gb.gemm(like, np.zeros((columns, 2), np.float32),
                   np.array([grid.h - 1, grid.w - 1], np.float32), name)


def earlier(gb: GraphBuilder, size, name: str):
    """[s, s] bool, s = ``size`` ([1] int64): entry (i, j) is j < i."""
    r = gb.range_(gb.scalar(0, np.int64), gb.squeeze(size, [0], f"{name}_size"),
                  gb.scalar(1, np.int64), f"{name}_range")
    return gb.less(gb.unsqueeze(r, [0], f"{name}_j"), gb.unsqueeze(r, [1], f"{name}_i"), name)
