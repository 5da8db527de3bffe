"""Multi-person (PersonLab-style) decoding appended to a graph as standard ONNX ops.

``append_multi_pose_decoder`` turns the three PoseNet heads (NHWC float32,
dynamic batch) into ``keypoints`` [N, P, 17, 3] (y, x, score in input pixels),
``pose_scores`` [N, P] and ``pose_count`` [N] int32, P = ``settings.max_poses``,
rows past the count zero. Opset 17, no custom ops. The presets follow the
numpy references ``onnxpose.reference.decode_multiple_poses_coral`` /
``decode_multiple_poses_tfjs`` (with the settings' ``tie_order``): Coral samples
bilinearly in block units, TF.js samples the nearest cell in pixels; both
find and rank candidates on the heatmap logits (for TF.js, whose part scores
are sigmoids, against ``logit(score_threshold)``).

How the sequential decoders are laid out as a few wide ops (on CPU the cost
of a graph like this is mostly per node, so the layout keeps the number of
node executions low):

1. Candidates: a (2 * local_maximum_radius + 1)^2 MaxPool (3-D, over
   y, x and a window of one keypoint, so NHWC needs no transposes) finds local
   maxima (a cell is kept when it equals its window maximum, so ties are
   allowed), a threshold keeps the good ones, ``TopK`` takes the K best over
   all cells and keypoints (equal scores: lower scan index (y, x, keypoint)
   first). K = min(``settings.candidates``, the largest number of candidates
   of an image in the batch), at least 1: every later tensor has K rows, so
   an image with few candidates costs less.
2. Tree walk: a pose is grown from each of the K candidates at once (the walk
   of a root does not depend on the other roots). The walk is a fixed
   schedule of 8 steps of 3 edges each (``walk_schedule``: per root keypoint,
   highest subtree first, parents before children), run as one ``Loop`` whose
   body is one step (so the graph holds a step's nodes once); the per-step
   tables (source slot, target keypoint, displacement channel) are constants
   gathered by root keypoint, so each step is one batch of [N * K * 3] points.
   The heads are looked up where they lie, as flat per-image tables padded by
   one edge row and column (a cell's right and lower neighbours, clamped to
   the grid): one table holds both offset heads, one the heat values. A sample
   is one ``GatherElements`` of the values it needs (Coral: the four bilinear
   corners, y and x) at indices computed by one GEMM, plus a few same-shape
   element-wise ops and small 2-D GEMMs. No table is re-laid out.
3. Greedy root NMS: candidate i is accepted when it is valid (Coral: and its
   instance score reaches the threshold) and its root is not within
   ``nms_radius`` of the same keypoint of an accepted candidate j < i. This
   triangular recurrence is solved as the fixed point of
   ``accepted = base & !(suppression @ accepted)`` over a K x K suppression
   matrix: each pass settles at least one more leading candidate. Three passes
   run as plain nodes (they usually reach the fixed point); a ``Loop`` then
   runs further passes until nothing changes (zero iterations in the usual
   case, never more than K + 1). The first ``max_poses`` accepted candidates
   are kept.
4. Scoring: Coral re-scores by soft keypoint NMS in decreasing instance score
   order, sorts again and drops poses below the threshold; TF.js scores each
   pose against the poses accepted before it and keeps decoding order.

K smaller than the number of candidates: only the K best candidates (by
score, equal scores in scan order) are ever tried as roots. Once those are
used up (accepted, suppressed or scored too low) no further pose is found,
even where the original decoders, which try every candidate, would find more.
The numpy references given the same ``settings.candidates`` do the same.
Rows past ``min(K, max_poses)`` are always zero.

Non-finite heads: NaN heatmap logits count as -1e4 and logits are clipped to
+-1e4; non-finite offsets and displacements count as 0 (see
``onnxpose.reference.finite_heads``), so outputs are always finite. The
replacing passes run behind an ``If`` only when the sum of the heads is not
finite (``onnxpose.decoder.finite_heads``).

Equal-score candidates: Coral and TF.js pop them from a binary heap
(libstdc++ ``std::priority_queue`` / TF.js ``MaxHeap``) in an order that
depends on the heap's history. By default (``tie_order="scan"``) this graph
takes them in scan order; with quantized heads that can pick another, equally
scored root for a person, which moves a few keypoints of that pose (by up to
a couple of pixels on the Coral reference image). ``tie_order="heap"``
(coral preset) replays Coral's heap in the graph
(``onnxpose.decoder.heap_order``) and takes exactly Coral's roots, at a cost
that grows with the number of candidates.

The caller wires the returned tensors into ``graph.outputs`` and ends with
``graph.cleanup().toposort()``; ``onnxpose.decoder.decoder_only.decoder_only_model`` does all of
that for a decoder-only model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.finite_heads import clipped_heatmaps, finite_heads
from onnxpose.decoder.heap_order import heap_order
from onnxpose.decoder.ops import GraphBuilder, LoopBody
from onnxpose.spec import MultiPoseSettings
from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS
from onnxpose.reference.pose_tree import DirectedEdge, walk_from

OPSET = 17
K17 = NUM_KEYPOINTS
WALK_WIDTH = 3                   # edges per walk step (3 -> 8 steps, the tree's depth)
# Head channels: short offsets y of keypoint t at t, x at t + 17; displacements y of a
# directed edge at DirectedEdge.channel_y, x 16 channels later; heatmap logit of t at t.
SHORT_X, MID_X = K17, NUM_EDGES
# Bilinear corners, in table column order: top-left, top-right, bottom-left, bottom-right,
# as (down, right) steps from the cell. Weights: (1 - ly, ly)[down] * (1 - lx, lx)[right].
CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


# -- skeleton as data --------------------------------------------------------------

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


def walk_tables(width: int = WALK_WIDTH) -> dict[str, np.ndarray]:
    """Per (step, root keypoint, slot) tables of the scheduled walk.

    Points are stored in schedule order: slot 0 is the root, step d slot s is
    ``1 + d * width + s``. ``source``: slot of the edge's source; ``target``:
    keypoint reached; ``edge``: the edge's y channel in the displacement head;
    idle slots re-walk the root (harmless, never read back). ``order[root, k]``:
    slot of keypoint k.
    """
    schedules = [walk_schedule(r, width) for r in range(K17)]
    depth = max(len(s) for s in schedules)
    source = np.zeros((depth, K17, width), np.int64)
    target = np.tile(np.arange(K17)[None, :, None], (depth, 1, width))
    edge = np.zeros((depth, K17, width), np.int64)
    order = np.zeros((K17, K17), np.int64)
    for root, steps in enumerate(schedules):
        slot_of = {root: 0}
        for d, step in enumerate(steps):
            for s, e in enumerate(step):
                source[d, root, s] = slot_of[e.source]
                target[d, root, s] = e.target
                edge[d, root, s] = e.channel_y
                slot_of[e.target] = 1 + d * width + s
        order[root] = [slot_of[k] for k in range(K17)]
    return {"source": source, "target": target, "edge": edge, "order": order}


def logit(probability: float) -> np.float32:
    """``log(p / (1 - p))`` (double arithmetic, stored as float32; -inf at 0, inf at 1)."""
    p = float(np.float32(probability))
    if p <= 0.0 or p >= 1.0:
        return np.float32(-np.inf if p <= 0.0 else np.inf)
    return np.float32(math.log(p / (1.0 - p)))


def coral_logodds(probability: float) -> np.float32:
    """Coral's ``Logodds`` (double arithmetic, stored as float32)."""
    return np.float32(-math.log(1.0 / (float(np.float32(probability)) + 1e-6) - 1.0))


# -- the decoder ---------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Static sizes of one decoder."""

    h: int
    w: int
    stride: int
    k: int            # at most this many candidates tried as roots (fewer at run time when
                      # no image of the batch has that many: ``_Decoder.k_eff``)
    m: int            # at most this many poses kept before padding to max_poses
    width: int        # walk edges per step


def _pad_edge(gb: GraphBuilder, head, name: str):
    """[N,h,w,C] -> [N,h+1,w+1,C]: the last row and column repeated."""
    return gb.op("Pad", [head, np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64)], f"{name}_padded",
                 {"mode": "edge"})


@dataclass(frozen=True)
class HeadTable:
    """A head as a flat per-image lookup table: ``flat`` [N, rows * cols * channels].

    The value of channel c at cell (y, x) is ``flat[n, (y * cols + x) * channels + c]``.
    """

    flat: gs.Variable
    cols: int
    channels: int
    first_channel: int = 0  # where this head's channels start (heads can share a table)

    def offsets(self, channel_offsets, corners=((0, 0),)) -> np.ndarray:
        """Flat offsets of (corner, channel offset) pairs from a cell's first value of this
        head, corner-major: [len(corners) * len(channel_offsets)] float32."""
        return np.array([(dy * self.cols + dx) * self.channels + self.first_channel + c
                         for dy, dx in corners for c in channel_offsets], np.float32)


class _Decoder:
    """Graph construction shared by both presets; subclasses sample and score.

    Points are processed as 2-D row batches ([rows, 2], rows ordered image,
    candidate, slot) so that element-wise ops see equal shapes and the few
    matrix products are plain 2-D GEMMs; a table lookup is one
    ``GatherElements`` per image at flat indices computed by one GEMM.
    """

    def __init__(self, gb: GraphBuilder, layout: Layout, settings: MultiPoseSettings):
        self.gb, self.lay, self.settings = gb, layout, settings
        self._is_root = None
        self._shapes = {}

    # ---- batch bookkeeping
    def batch_setup(self, heatmaps):
        """The image index [N,1] of each image, and the shape [N, -1] of per-image rows."""
        gb = self.gb
        n = gb.gather(gb.shape(heatmaps, "batch/shape"), gb.scalar(0, np.int64), 0, "batch/size")
        # (heatmaps: already clipped, so that each dequantized head has one consumer and
        # onnxruntime's QDQ optimizer does not duplicate its DequantizeLinear)
        images = gb.range_(gb.scalar(0, np.int64), n, gb.scalar(1, np.int64), "batch/images")
        self.images = gb.reshape(images, [-1, 1], "batch/image_col")           # [N, 1]
        self.batch_size = gb.unsqueeze(n, [0], "batch/size_1d")
        self.per_image = self.batch_shape()

    def batch_shape(self, *rest: int):
        """The shape tensor [N, -1, *rest] (made once per ``rest``)."""
        if rest not in self._shapes:
            name = "_".join(map(str, rest)) or "rows"
            self._shapes[rest] = self.gb.concat(
                [self.batch_size, np.array([-1, *rest], np.int64)], 0, f"batch/shape_{name}")
        return self._shapes[rest]

    def row_offsets(self, per_image, name: str):
        """[N, 1]: ``n * per_image`` ([1] int64), to address rows of [N * per_image, ...]."""
        return self.gb.mul(self.images, per_image, name)

    def upper_bounds(self, like, columns: int, name: str):
        """[rows, 2] float (h - 1, w - 1), as many rows as ``like`` [rows, columns] (equal
        shapes run faster than broadcasting)."""
        return self.gb.gemm(like, np.zeros((columns, 2), np.float32),
                            np.array([self.lay.h - 1, self.lay.w - 1], np.float32), name)

    def earlier(self, size, name: str):
        """[s, s] bool, s = ``size`` ([1] int64): entry (i, j) is j < i."""
        gb = self.gb
        r = gb.range_(gb.scalar(0, np.int64), gb.squeeze(size, [0], f"{name}_size"),
                      gb.scalar(1, np.int64), f"{name}_range")
        return gb.less(gb.unsqueeze(r, [0], f"{name}_j"), gb.unsqueeze(r, [1], f"{name}_i"), name)

    def head_tables(self, clipped, short_offsets, displacements):
        """The heads made finite and laid out as padded flat lookup tables (one more row and
        column, copies of the last ones: a cell's right and lower neighbours, clamped to the
        grid): one table of the two offset heads (34 + 64 channels), one of the heat values.
        ``clipped``: the clipped heatmaps. Returns the finite heatmaps."""
        gb = self.gb
        offsets = gb.concat([short_offsets, displacements], 3, "tables/offsets")

        def finish(g: GraphBuilder, head, name):
            return g.identity(head, name) if name == "heatmaps" else _pad_edge(g, head, name)

        heatmaps, offsets = finite_heads(gb, {"heatmaps": clipped, "offsets": offsets}, finish)
        channels = 2 * K17 + 4 * NUM_EDGES
        offsets = gb.reshape(offsets, self.per_image, "tables/offsets_flat")
        self.short = HeadTable(offsets, self.lay.w + 1, channels)
        self.mid = HeadTable(offsets, self.lay.w + 1, channels, first_channel=2 * K17)
        heat = _pad_edge(gb, self.heat_values(heatmaps), "tables/heat")
        self.heat = HeadTable(gb.reshape(heat, self.per_image, "tables/heat_flat"),
                              self.lay.w + 1, K17)
        return heatmaps

    def lookup(self, table: HeadTable, cell, base, k: int, name):
        """Table values at integer cells (y, x) [R,2] (float) plus flat offsets ``base``
        [R,k] (float: channel and corner): [R,k]."""
        gb = self.gb
        to_index = np.array([[table.cols * table.channels] * k, [table.channels] * k], np.float32)
        index = gb.cast(gb.gemm(cell, to_index, base, f"{name}/index_f"), np.int32,
                        f"{name}/index")                       # int32: cheaper than int64
        values = gb.gather_elements(table.flat, gb.reshape(index, self.per_image,
                                                           f"{name}/index_per_image"), 1,
                                    f"{name}/values_per_image")
        return gb.reshape(values, [-1, k], f"{name}/values")

    def by_root_keypoint(self, table: np.ndarray, keypoint, name):
        """``table`` [17, ..., k] (float flat offsets per root keypoint) gathered for every
        candidate: [N * K * ..., k]."""
        gb = self.gb
        picked = gb.gather(gb.const(table.astype(np.float32), f"{name}_table"), keypoint, 0,
                           f"{name}_nk")
        return gb.reshape(picked, [-1, table.shape[-1]], name)

    def per_keypoint(self, offsets: np.ndarray, keypoint, name):
        """Flat offsets ``t + offsets`` of every keypoint t of every candidate:
        [N * K * 17, len(offsets)] float (the same for every root keypoint)."""
        pattern = np.arange(K17, dtype=np.float32)[:, None] + offsets
        return self.by_root_keypoint(np.broadcast_to(pattern, (K17, *pattern.shape)), keypoint,
                                     name)

    # ---- candidates
    def candidates(self, scores, threshold):
        """TopK local maxima: (flat index [N,K], valid [N,K]).

        K = ``self.k_eff`` ([1] int64) = min(settings.candidates, the largest number of
        candidates of an image of the batch), at least 1: the graph does work for the
        candidates that exist, not for ``settings.candidates``. ``self.m_eff`` = min(K,
        max_poses) rows are kept before padding to ``max_poses``.
        """
        gb, r = self.gb, self.settings.local_maximum_radius
        # a 3-D MaxPool over (y, x, keypoint) with a window of 1 keypoint: NHWC as it is
        volume = gb.unsqueeze(scores, [1], "candidates/scores_volume")           # [N,1,h,w,17]
        pooled = gb.max_pool(volume, [2 * r + 1, 2 * r + 1, 1], "candidates/window_max",
                             pads=[r, r, 0, r, r, 0])
        pooled = gb.squeeze(pooled, [1], "candidates/window_max_nhwc")
        is_max = gb.greater_or_equal(scores, pooled, "candidates/is_local_max")
        above = gb.greater_or_equal(scores, np.float32(threshold), "candidates/above_threshold")
        is_candidate = gb.logical_and(is_max, above, "candidates/mask")
        masked = gb.where(is_candidate, scores, np.float32(-np.inf), "candidates/masked_scores")
        size = self.lay.h * self.lay.w * K17
        flat_mask = gb.reshape(is_candidate, [0, size], "candidates/flat_mask")
        count = gb.reduce_sum(gb.cast(flat_mask, np.int64, "candidates/mask_int"), [1],
                              "candidates/count")                                    # [N]
        most = gb.reduce_attr("ReduceMax", count, [0], "candidates/most", keepdims=True)
        self.k_eff = gb.maximum(gb.minimum(most, np.array([self.lay.k], np.int64),
                                           "candidates/k_capped"), np.array([1], np.int64),
                                "candidates/k")
        self.m_eff = gb.minimum(self.k_eff, np.array([self.lay.m], np.int64), "candidates/m")
        flat_scores = gb.reshape(masked, [0, size], "candidates/flat_scores")
        if self.settings.tie_order == "heap":
            index, valid = heap_order(gb, flat_scores, flat_mask, count, self.k_eff, size,
                                      "candidates/heap")
            return index, valid
        _, index = gb.topk(flat_scores, self.k_eff, 1, "candidates/topk")
        valid = gb.gather_elements(flat_mask, index, 1, "candidates/valid")
        return index, valid

    def split_index(self, index):
        """(keypoint [N,K], cell (y, x) float [N,K,2]) of flat candidate indices."""
        gb = self.gb
        keypoint = gb.mod(index, np.int64(K17), "roots/keypoint")
        cell = gb.div(index, np.int64(K17), "roots/cell")
        row = gb.div(cell, np.int64(self.lay.w), "roots/row")
        col = gb.mod(cell, np.int64(self.lay.w), "roots/col")
        yx = gb.concat([gb.unsqueeze(row, [-1], "roots/row_"),
                        gb.unsqueeze(col, [-1], "roots/col_")], -1, "roots/cell_yx_int")
        return keypoint, gb.cast(yx, np.float32, "roots/cell_yx")

    def roots(self, heatmaps, short_offsets, displacements, threshold):
        """What both presets start with: clip the heatmaps, set up the batch, lay out the
        tables and find the candidates (logits at least ``threshold``). Returns (valid
        [N,K], keypoint [N,K], cell (y, x) float [N,K,2], the short offset (y, x) of each
        candidate's keypoint at its cell [N,K,2], in pixels)."""
        gb = self.gb
        clipped = clipped_heatmaps(gb, heatmaps)
        self.batch_setup(clipped)
        heatmaps = self.head_tables(clipped, short_offsets, displacements)
        index, valid = self.candidates(heatmaps, threshold)
        keypoint, cell_yx = self.split_index(index)
        base = self.by_root_keypoint(np.arange(K17)[:, None] + np.array([0, SHORT_X]), keypoint,
                                     "roots/short_base")
        offsets = self.lookup(self.short, gb.reshape(cell_yx, [-1, 2], "roots/cells"), base, 2,
                              "roots/short")
        offsets = gb.reshape(offsets, self.batch_shape(2), "roots/short_offsets")
        return valid, keypoint, cell_yx, offsets

    def is_root(self, keypoint):
        """[N,K,17] bool: keypoint t is the root's keypoint (built once)."""
        if self._is_root is None:
            self._is_root = self.gb.equal(self.gb.unsqueeze(keypoint, [-1], "roots/keypoint_col"),
                                          np.arange(K17, dtype=np.int64), "roots/is_root_keypoint")
        return self._is_root

    # ---- walk
    def step_tables(self, keypoint):
        """The walk's per-step tables for every candidate, step axis kept for the loop:
        source positions in the slot buffer [N,K,D,W,2], short-offset and displacement
        lookup offsets [R,D,k] (R = N*K*W rows, k = 2 * corners); the (root, keypoint) ->
        slot table [17,17]; and the number of steps D."""
        gb, width, tables = self.gb, self.lay.width, walk_tables(self.lay.width)
        depth = len(tables["source"])
        # before step d the buffer holds (D - d) * W idle slots, then slots 0 .. d * W
        source = tables["source"] + ((depth - np.arange(depth)) * width)[:, None, None]
        source = np.repeat(source.transpose(1, 0, 2)[..., None], 2, -1)          # [17,D,W,2]
        source = gb.gather(gb.const(source, "walk/source_table"), keypoint, 0, "walk/source")
        k = 2 * len(self.corners)
        bases = []
        for name, channel, table in (
                ("short", tables["target"], self.short.offsets([0, SHORT_X], self.corners)),
                ("displacement", tables["edge"], self.mid.offsets([0, MID_X], self.corners))):
            per_root = (channel[..., None] + table).transpose(1, 2, 0, 3)      # [17, W, D, k]
            bases.append(gb.reshape(self.by_root_keypoint(per_root, keypoint, f"walk/{name}_base_"),
                                    [-1, depth, k], f"walk/{name}_base"))
        return source, bases[0], bases[1], tables["order"], depth

    def walk(self, root_points, keypoint):
        """All 17 keypoints of every candidate pose: [N,K,17,2].

        The walk's steps run as one ``Loop``, so the graph holds one copy of a step's
        nodes. A step's points are grown from points of earlier steps, kept in a slot
        buffer of fixed size [N,K,1+D*W,2] that each step shifts by W slots (drops W idle
        ones at the front, appends its own), so that after the last step it holds the
        root and the D steps' slots in schedule order.
        """
        gb, lay = self.gb, self.lay
        source, short_base, mid_base, order, depth = self.step_tables(keypoint)
        self.walk_upper = self.upper_bounds(
            gb.gather(short_base, gb.scalar(0, np.int64), 1, "walk/rows"), 2 * len(self.corners),
            "walk/upper")
        moved_shape = self.batch_shape(lay.width, 2)
        slots = gb.pad(gb.unsqueeze(root_points, [2], "walk/root_slot"),
                       [0, 0, depth * lay.width, 0, 0, 0, 0, 0], "walk/slots0")  # [N,K,S,2]

        body = LoopBody(gb, "walk/step", [("slots", np.float32)])
        step, (slots_in,) = body.step, body.carried
        self.gb = body.b
        try:
            b = body.b
            start = b.gather_elements(slots_in, b.gather(source, step, 2, "source"), 2,
                                      "start_")                                 # [N,K,W,2]
            moved = self.follow_edges(b.reshape(start, [-1, 2], "start"),
                                      b.gather(mid_base, step, 1, "displacement_base"),
                                      b.gather(short_base, step, 1, "short_base"), "")
            moved = b.reshape(moved, moved_shape, "moved")
            kept = b.slice(slots_in, [lay.width], [1 + depth * lay.width], [2], "kept")
            slots_out = b.concat([kept, moved], 2, "slots_out")
        finally:
            self.gb = gb
        body_graph = body.finish([slots_out], [np.float32])
        (slots,) = gb.loop(body_graph, gb.scalar(depth, np.int64, "walk/steps"),
                           gb.scalar(True, np.bool_, "walk/always"), [slots], "walk/loop")
        order = np.repeat(order[..., None], 2, -1)
        order = gb.gather(gb.const(order, "walk/order_table"), keypoint, 0, "walk/order")
        return gb.gather_elements(slots, order, 2, "walk/points")

    # ---- NMS and scoring
    def suppression(self, points, root_points, keypoint, squared_radius):
        """[N,K,K] float: root i lies within the radius of keypoint k_i of pose j < i."""
        gb = self.gb
        onehot = gb.cast(self.is_root(keypoint), np.float32, "nms/root_onehot")
        by_keypoint = gb.reshape(gb.transpose(points, [0, 2, 3, 1], "nms/points_by_keypoint"),
                                 [0, K17, -1], "nms/points_by_keypoint_flat")  # [N,17,(yx,j)]
        same_part = gb.reshape(gb.matmul(onehot, by_keypoint, "nms/same_part_flat"), [0, 0, 2, -1],
                               "nms/same_part_points")   # [n, i, :, j] = points[n, j, k_i]
        # [N,K,2,1]: a scalar broadcast along the contiguous j axis (fast in onnxruntime)
        delta = gb.sub(same_part, gb.unsqueeze(root_points, [3], "nms/root_"), "nms/delta")
        squared = gb.reduce_sum(gb.mul(delta, delta, "nms/delta_sq"), [2], "nms/squared_distance")
        close = gb.less_or_equal(squared, np.float32(squared_radius), "nms/close")
        earlier = self.earlier(self.k_eff, "nms/earlier")
        return gb.cast(gb.logical_and(close, earlier, "nms/close_earlier"), np.float32,
                       "nms/suppression")

    def greedy_pass(self, gb: GraphBuilder, suppression, base, accepted, name):
        """One pass: (new accepted [N,K,1], whether anything changed (bool scalar))."""
        hits = gb.matmul(suppression, accepted, f"{name}/suppressed_by")
        updated = gb.where(gb.greater(hits, np.float32(0.5), f"{name}/is_suppressed"),
                           np.float32(0), base, f"{name}/accepted")
        delta = gb.op("Abs", [gb.sub(updated, accepted, f"{name}/delta")], f"{name}/abs_delta")
        change = gb.reduce_attr("ReduceMax", delta, [0, 1, 2], f"{name}/max_change")
        return updated, gb.greater(change, gb.scalar(0.5, np.float32), f"{name}/changed")

    def greedy_accept(self, suppression, base, unrolled: int = 3):
        """Fixed point of ``accepted = base & !(suppression @ accepted)``: [N,K,1] float.

        ``unrolled`` passes run as plain nodes; a ``Loop`` runs the rare further passes
        (zero iterations when the unrolled ones already reached the fixed point).
        """
        gb = self.gb
        accepted = base
        for i in range(unrolled):
            accepted, changed = self.greedy_pass(gb, suppression, base, accepted, f"nms/pass{i}")
        body = LoopBody(gb, "nms/greedy", [("accepted", np.float32)])
        updated, cond_out = self.greedy_pass(body.b, suppression, base, body.carried[0], "pass")
        body_graph = body.finish([updated], [np.float32], cond=cond_out)
        (final,) = gb.loop(body_graph, gb.scalar(self.lay.k + 1, np.int64, "nms/max_passes"),
                           changed, [accepted], "nms/greedy")
        return final

    def keep_first(self, accepted):
        """The first ``max_poses`` accepted candidates: [N,K] bool."""
        gb = self.gb
        rank = gb.cumsum(accepted, 1, "nms/accepted_rank")
        under_cap = gb.less_or_equal(rank, np.float32(self.settings.max_poses), "nms/under_cap")
        is_accepted = gb.greater(accepted, np.float32(0.5), "nms/is_accepted")
        return gb.squeeze(gb.logical_and(is_accepted, under_cap, "nms/keep_"), [2], "nms/keep")

    def select(self, key, mask, tensors, batch_rows, name):
        """The ``m`` best rows by ``key`` among ``mask`` [N,rows]: (mask [N,m], gathered tensors).

        ``tensors``: (tensor [N,rows,*rest], rest); equal keys keep their order.
        """
        gb = self.gb
        _, order = gb.topk(gb.where(mask, key, np.float32(-np.inf), f"{name}/key"), self.m_eff,
                           1, f"{name}/topk")
        rows = gb.add(order, batch_rows, f"{name}/rows")
        picked = [gb.gather(gb.reshape(t, [-1, *rest], f"{name}/flat{i}"), rows, 0,
                            f"{name}/gathered{i}")
                  for i, (t, rest) in enumerate(tensors)]
        return gb.gather_elements(mask, order, 1, f"{name}/mask"), picked

    def overlap_score(self, poses, valid, squared_radius, name):
        """Sum of keypoint scores not within the radius of an earlier valid pose, / 17: [N,m]."""
        gb = self.gb
        points, scores = gb.split(poses, [2, 1], -1, f"{name}/split")
        delta = gb.sub(gb.unsqueeze(points, [2], f"{name}/points_i"),
                       gb.unsqueeze(points, [1], f"{name}/points_j"), f"{name}/delta")
        squared = gb.reduce_sum(gb.mul(delta, delta, f"{name}/delta_sq"), [-1],
                                f"{name}/squared_distance")                  # [N, i, j, 17]
        close = gb.less_or_equal(squared, np.float32(squared_radius), f"{name}/close")
        earlier = gb.unsqueeze(self.earlier(self.m_eff, f"{name}/earlier_"), [2],
                               f"{name}/earlier")
        earlier_valid = gb.logical_and(earlier, gb.unsqueeze(valid, [1, 3], f"{name}/valid_j"),
                                       f"{name}/earlier_valid")
        hidden = gb.cast(gb.logical_and(close, earlier_valid, f"{name}/hidden_by_j"), np.float32,
                         f"{name}/hidden_by_j_f")
        hidden = gb.reduce_attr("ReduceMax", hidden, [2], f"{name}/hidden")   # [N, i, 17]
        counted = gb.mul(gb.squeeze(scores, [3], f"{name}/scores"),
                         gb.sub(np.float32(1), hidden, f"{name}/visible"), f"{name}/counted")
        return gb.div(gb.reduce_sum(counted, [-1], f"{name}/sum"), np.float32(K17),
                      f"{name}/score")

    def poses_tensor(self, points, keypoint_scores):
        return self.gb.concat([points, self.gb.unsqueeze(keypoint_scores, [-1], "poses/scores_")],
                              -1, "poses/all")                               # [N,K,17,3]

    def outputs(self, poses, scores, valid, scale):
        """Zero the invalid rows, pad to max_poses, count."""
        gb = self.gb
        keypoints = gb.mul(poses, np.array([scale, scale, 1], np.float32), "out/scaled")
        keypoints = gb.where(gb.unsqueeze(valid, [2, 3], "out/valid_4d"), keypoints,
                             np.float32(0), "out/keypoints_m")
        scores = gb.where(valid, scores, np.float32(0), "out/pose_scores_m")
        pad = gb.sub(np.array([self.settings.max_poses], np.int64), self.m_eff, "out/pad")
        zeros = np.zeros(5, np.int64)
        keypoints = gb.op("Pad", [keypoints, gb.concat([zeros, pad, zeros[:2]], 0,
                                                        "out/keypoints_pads")],
                          "out/keypoints_padded")
        scores = gb.op("Pad", [scores, gb.concat([zeros[:3], pad], 0, "out/pose_scores_pads")],
                       "out/pose_scores_padded")
        count = gb.reduce_sum(gb.cast(valid, np.int32, "out/valid_i32"), [1], "out/count")
        return {"keypoints": gb.identity(keypoints, "keypoints"),
                "pose_scores": gb.identity(scores, "pose_scores"),
                "pose_count": gb.identity(count, "pose_count")}


class _CoralDecoder(_Decoder):
    """Bilinear sampling in block units; logits rank the candidates."""

    corners = CORNERS

    def heat_values(self, heatmaps):
        """What keypoint scores are sampled from: the logits (sigmoid after sampling)."""
        return heatmaps

    def sample(self, points, table, base, coordinates: int, scale, name, plus=None):
        """Bilinear samples (``coordinates`` values each, times ``scale``) of ``table`` at
        points [R,2] (inside the grid), at flat offsets ``base`` [R, 4 * coordinates], plus
        ``plus`` [R, coordinates] if given: [R, coordinates]."""
        gb = self.gb
        cell = gb.floor(points, f"{name}/floor")
        frac = gb.sub(points, cell, f"{name}/frac")
        k = 4 * coordinates
        values = self.lookup(table, cell, base, k, name)                       # [R, k]
        # corner weights (1 - ly, ly)[down] * (1 - lx, lx)[right], one column per value
        down = np.repeat([dy for dy, _ in self.corners], coordinates)
        right = np.repeat([dx for _, dx in self.corners], coordinates)
        weight_y = gb.gemm(frac, np.stack([2 * down - 1, 0 * down]).astype(np.float32),
                           (1 - down).astype(np.float32), f"{name}/weight_y")
        weight_x = gb.gemm(frac, np.stack([0 * right, 2 * right - 1]).astype(np.float32),
                           (1 - right).astype(np.float32), f"{name}/weight_x")
        weights = gb.mul(weight_y, weight_x, f"{name}/weights")
        weighted = gb.mul(values, weights, f"{name}/weighted")
        corner_sum = np.float32(scale) * np.tile(np.eye(coordinates, dtype=np.float32), (4, 1))
        if plus is None:
            return gb.matmul(weighted, corner_sum, f"{name}/value")
        return gb.gemm(weighted, corner_sum, plus, f"{name}/value_plus")

    def move(self, points, table, base, name):
        moved = self.sample(points, table, base, 2, 1 / np.float32(self.lay.stride), name,
                            plus=points)
        low = self.gb.relu(moved, f"{name}/clamped_lo")   # max(., 0)
        return self.gb.minimum(low, self.walk_upper, f"{name}/clamped")

    def follow_edges(self, start, mid_base, short_base, name):
        """Points [R,2] (blocks) moved along their edges."""
        points = self.move(start, self.mid, mid_base, f"{name}mid")
        for s in range(self.settings.refine_steps):
            points = self.move(points, self.short, short_base, f"{name}refine{s}")
        return points

    def decode(self, heatmaps, short_offsets, displacements):
        gb, lay, st = self.gb, self.lay, self.settings
        radius = np.float32(np.float32(st.nms_radius) / np.float32(lay.stride))
        squared_radius = np.float32(radius * radius)
        valid, keypoint, cell_yx, offsets = self.roots(
            heatmaps, short_offsets, displacements, coral_logodds(st.score_threshold))
        refined = gb.add(cell_yx, gb.div(offsets, np.float32(lay.stride), "roots/short_blocks"),
                         "roots/refined")
        hi = np.array([lay.h - 1, lay.w - 1], np.float32)
        roots = gb.minimum(gb.maximum(refined, np.float32(0), "roots/points_lo"), hi,
                           "roots/points")

        points = self.walk(roots, keypoint)
        logits = self.sample(gb.reshape(points, [-1, 2], "score/points"), self.heat,
                             self.per_keypoint(self.heat.offsets([0], self.corners), keypoint,
                                               "score/heat_base"), 1, 1, "score/sample")
        logits = gb.reshape(logits, self.batch_shape(K17), "score/logits")
        keypoint_scores = gb.sigmoid(logits, "score/keypoint_scores")
        instance = gb.reduce_attr("ReduceMean", keypoint_scores, [-1], "score/instance")

        good = gb.greater_or_equal(instance, np.float32(st.score_threshold), "nms/score_ok")
        base = gb.cast(gb.unsqueeze(gb.logical_and(valid, good, "nms/base_mask"), [-1],
                                    "nms/base_3d"), np.float32, "nms/base")
        suppression = self.suppression(points, roots, keypoint, squared_radius)
        keep = self.keep_first(self.greedy_accept(suppression, base))

        by_instance, (poses, instance) = self.select(
            instance, keep,
            [(self.poses_tensor(points, keypoint_scores), [K17, 3]), (instance, [])],
            self.row_offsets(self.k_eff, "batch/candidate_rows"), "by_instance")
        rescored = self.overlap_score(poses, by_instance, squared_radius, "rescore")
        still_good = gb.greater_or_equal(rescored, np.float32(st.score_threshold), "final/score_ok")
        final, (poses, rescored) = self.select(
            rescored, gb.logical_and(by_instance, still_good, "final/mask"),
            [(poses, [K17, 3]), (rescored, [])],
            self.row_offsets(self.m_eff, "batch/pose_rows"), "by_rescored")
        return self.outputs(poses, rescored, final, np.float32(lay.stride))


class _TfjsDecoder(_Decoder):
    """Nearest-cell sampling in pixels; part scores are sigmoids of the logits."""

    corners = ((0, 0),)

    def heat_values(self, heatmaps):
        """What keypoint scores are sampled from: the part scores (sigmoids)."""
        return self.gb.sigmoid(heatmaps, "tables/part_scores")

    def nearest_cell(self, points, upper, name):
        """``getStridedIndexNearPoint`` as float (row, col): [R,2]."""
        gb = self.gb
        scaled = gb.div(points, np.float32(self.lay.stride), f"{name}/scaled")
        rounded = gb.floor(gb.add(scaled, np.float32(0.5), f"{name}/half_up"), f"{name}/rounded")
        low = gb.maximum(rounded, np.float32(0), f"{name}/clamp_lo")
        return gb.minimum(low, upper, f"{name}/cell")

    def follow_edges(self, start, mid_base, short_base, name):
        """Points [R,2] (pixels) moved along their edges."""
        gb = self.gb
        cell = self.nearest_cell(start, self.walk_upper, f"{name}mid")
        displacement = self.lookup(self.mid, cell, mid_base, 2, f"{name}mid")
        points = gb.add(start, displacement, f"{name}displaced")
        for s in range(self.settings.refine_steps):
            cell = self.nearest_cell(points, self.walk_upper, f"{name}refine{s}")
            offsets = self.lookup(self.short, cell, short_base, 2, f"{name}refine{s}")
            points = gb.gemm(cell, np.float32(self.lay.stride) * np.eye(2, dtype=np.float32),
                             offsets, f"{name}refine{s}/points")      # cell * stride + offsets
        return points

    def decode(self, heatmaps, short_offsets, displacements):
        gb, lay, st = self.gb, self.lay, self.settings
        squared_radius = np.float32(np.float32(st.nms_radius) ** 2)
        valid, keypoint, cell_yx, offsets = self.roots(
            heatmaps, short_offsets, displacements, logit(st.score_threshold))
        roots = gb.add(gb.mul(cell_yx, np.float32(lay.stride), "roots/cell_px"), offsets,
                       "roots/points")
        root_scores = self.lookup(self.heat, gb.reshape(cell_yx, [-1, 2], "roots/score_cells"),
                                  self.by_root_keypoint(np.arange(K17)[:, None], keypoint,
                                                        "roots/score_base"), 1, "roots/score")
        root_scores = gb.reshape(root_scores, self.batch_shape(1), "roots/scores")

        points = self.walk(roots, keypoint)
        flat = gb.reshape(points, [-1, 2], "score/points")
        cell = self.nearest_cell(flat, self.upper_bounds(flat, 2, "score/upper"), "score")
        sampled = self.lookup(self.heat, cell, self.per_keypoint(np.zeros(1, np.float32), keypoint,
                                                                 "score/part_base"), 1, "score")
        sampled = gb.reshape(sampled, self.batch_shape(K17), "score/sampled")
        keypoint_scores = gb.where(self.is_root(keypoint), root_scores, sampled,
                                   "score/keypoint_scores")

        base = gb.cast(gb.unsqueeze(valid, [-1], "nms/base_3d"), np.float32, "nms/base")
        suppression = self.suppression(points, roots, keypoint, squared_radius)
        keep = self.keep_first(self.greedy_accept(suppression, base))
        rank = gb.range_(gb.scalar(0, np.int64), gb.squeeze(self.k_eff, [0], "poses/k"),
                         gb.scalar(1, np.int64), "poses/rank")
        decode_order = gb.neg(gb.cast(rank, np.float32, "poses/rank_f"), "poses/decode_order")
        kept, (poses,) = self.select(decode_order, keep,
                                     [(self.poses_tensor(points, keypoint_scores), [K17, 3])],
                                     self.row_offsets(self.k_eff, "batch/candidate_rows"),
                                     "kept")
        pose_scores = self.overlap_score(poses, kept, squared_radius, "instance")
        return self.outputs(poses, pose_scores, kept, np.float32(1))


PRESET_DECODERS = {"coral": _CoralDecoder, "tfjs": _TfjsDecoder}


def _grid_hw(heatmaps: gs.Variable, input_hw, output_stride: int) -> tuple[int, int]:
    shape = list(heatmaps.shape or [])
    if len(shape) == 4 and all(isinstance(d, int) for d in shape[1:3]):
        return shape[1], shape[2]
    return tuple((int(s) - 1) // output_stride + 1 for s in input_hw)


def append_multi_pose_decoder(graph: gs.Graph, heatmaps: gs.Variable, short_offsets: gs.Variable,
                              displacements: gs.Variable, input_hw: tuple[int, int],
                              output_stride: int, settings: MultiPoseSettings,
                              prefix: str = "multi_pose/") -> dict[str, gs.Variable]:
    """Append multi-pose decoding of the three NHWC float32 heads to ``graph``.

    Returns {"keypoints": [N,P,17,3] (y, x, score; input pixels),
    "pose_scores": [N,P], "pose_count": [N] int32}, P = ``settings.max_poses``.
    The grid size comes from the heads' static shape, else from ``input_hw``
    (``(size - 1) // output_stride + 1``).
    """
    h, w = _grid_hw(heatmaps, input_hw, output_stride)
    k = min(settings.candidates, h * w * K17)
    layout = Layout(h=h, w=w, stride=output_stride, k=k, m=min(settings.max_poses, k),
                    width=WALK_WIDTH)
    builder = GraphBuilder(graph, prefix)
    decoder = PRESET_DECODERS[settings.preset](builder, layout, settings)
    outputs = decoder.decode(heatmaps, short_offsets, displacements)
    batch = (heatmaps.shape or ["N"])[0]
    p = settings.max_poses
    for name, dtype, shape in (("keypoints", np.float32, [batch, p, K17, 3]),
                               ("pose_scores", np.float32, [batch, p]),
                               ("pose_count", np.int32, [batch])):
        outputs[name].dtype, outputs[name].shape = dtype, shape
    return outputs

