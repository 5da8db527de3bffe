"""The heads as flat per-image lookup tables, and lookups in them.

The heads are looked up where they lie, as flat per-image lookup tables, one per
head (short offsets, displacements, heat values). Bilinear sampling (Coral) reads
a cell's right and lower neighbours, so its tables are padded by one edge row and
column (the neighbours clamped to the grid); nearest-cell reads (TF.js) take the
heads as they are (a reshape, no copy). A lookup is one ``GatherElements`` per
image at flat indices computed by one GEMM. No table is re-laid out. (The
references read ``heads[y, x, channel]``; these are the vectorized reads behind
``sample_bilinear`` and TF.js's nearest-cell reads.)

A pass over a whole head costs far more inside a model than its one node suggests
(it runs on the caches the backbone has just evicted), so the tables take as few
passes as they can: the offset heads are not concatenated, nearest-cell tables are
not padded, and no finite-value pass runs when the heads are known finite
(``finite``: dequantized 8-bit heads, ``onnxpose.decoder.attach.heads_are_finite``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.finite_heads import finite_field, finite_heatmaps
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS

K17 = NUM_KEYPOINTS
SHORT_CHANNELS = 2 * K17                     # short offsets: y of keypoint t at t, x at t + 17
DISPLACEMENT_CHANNELS = 4 * NUM_EDGES        # displacements (channels: ``skeleton``)
SHORT_X = K17                                # short offset x of keypoint t: channel t + 17


@dataclass(frozen=True)
class HeadTable:
    """A head as a flat per-image lookup table: ``flat`` [N, rows * cols * channels].

    The value of channel c at cell (y, x) is ``flat[n, (y * cols + x) * channels + c]``;
    ``per_image`` is the shape [N, -1] lookups reshape their indices to.
    """

    flat: gs.Variable
    per_image: gs.Variable
    cols: int
    channels: int

    def offsets(self, channel_offsets, corners=((0, 0),)) -> np.ndarray:
        """Flat offsets of (corner, channel offset) pairs from a cell's first value of this
        head, corner-major: [len(corners) * len(channel_offsets)] float32."""
        return self.offsets_at(np.asarray(channel_offsets)[None], corners)[0]

    def offsets_at(self, channels: np.ndarray, corners=((0, 0),)) -> np.ndarray:
        """``offsets`` per row of ``channels`` [..., c]: [..., len(corners) * c] float32."""
        corner = np.array([(dy * self.cols + dx) * self.channels for dy, dx in corners])
        flat = corner[:, None] + np.asarray(channels)[..., None, :]        # [..., corners, c]
        return flat.reshape(*flat.shape[:-2], -1).astype(np.float32)


def pad_edge(gb: GraphBuilder, head, name: str):
    """[N,h,w,C] -> [N,h+1,w+1,C]: the last row and column repeated."""
    return gb.pad(head, np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64), f"{name}_padded",
                  value=None, mode="edge")


def head_tables(gb: GraphBuilder, per_image, w: int, clipped, short_offsets, displacements,
                heat_values, padded: bool, finite: bool):
    """The heads laid out as flat lookup tables: (the finite heatmaps, short-offset table,
    displacement table, heat table). ``clipped``: the clipped heatmaps;
    ``heat_values(gb, heatmaps)``: what keypoint scores are sampled from (the preset's);
    ``padded``: every table padded by an edge row and column (bilinear reads);
    ``finite``: the heads are known finite (no replacing passes)."""
    heatmaps = clipped if finite else finite_heatmaps(gb, clipped)
    cols = w + 1 if padded else w

    def table(head, channels: int, name: str) -> HeadTable:
        if padded:
            head = pad_edge(gb, head, f"tables/{name}")
        # Flatten, not Reshape: onnxruntime 1.31's QDQ propagation aborts the process when a
        # DequantizeLinear -> Reshape output is read inside a Loop body (tests/test_layers.py)
        flat = gb.op("Flatten", [head], f"tables/{name}_flat", {"axis": 1})
        return HeadTable(flat, per_image, cols, channels)

    def field(head, name: str):
        return head if finite else finite_field(gb, head, name)

    return (heatmaps, table(field(short_offsets, "short_offsets"), SHORT_CHANNELS, "short"),
            table(field(displacements, "displacements"), DISPLACEMENT_CHANNELS, "displacements"),
            table(heat_values(gb, heatmaps), K17, "heat"))


def lookup(gb: GraphBuilder, table: HeadTable, cell, base, k: int, name):
    """Table values at integer cells (y, x) [R,2] (float) plus flat offsets ``base``
    [R,k] (float: channel and corner): [R,k]."""
    to_index = np.array([[table.cols * table.channels] * k, [table.channels] * k], np.float32)
    index = gb.cast(gb.gemm(cell, to_index, base, f"{name}/index_f"), np.int32,
                    f"{name}/index")                       # int32: cheaper than int64
    values = gb.gather_elements(table.flat, gb.reshape(index, table.per_image,
                                                       f"{name}/index_per_image"), 1,
                                f"{name}/values_per_image")
    return gb.reshape(values, [-1, k], f"{name}/values")


def by_root_keypoint(gb: GraphBuilder, table: np.ndarray, keypoint, name):
    """``table`` [17, ..., k] (float flat offsets per root keypoint) gathered for every
    candidate: [N * K * ..., k]."""
    picked = gb.gather(gb.const(table.astype(np.float32), f"{name}_table"), keypoint, 0,
                       f"{name}_nk")
    return gb.reshape(picked, [-1, table.shape[-1]], name)


def per_keypoint(gb: GraphBuilder, offsets: np.ndarray, keypoint, name):
    """Flat offsets ``t + offsets`` of every keypoint t of every candidate:
    [N * K * 17, len(offsets)] float (the same for every root keypoint)."""
    pattern = np.arange(K17, dtype=np.float32)[:, None] + offsets
    return by_root_keypoint(gb, np.broadcast_to(pattern, (K17, *pattern.shape)), keypoint, name)
