"""Multi-person (PersonLab-style) decoding appended to a graph as standard ONNX ops.

``append_multi_pose_decoder`` turns the three PoseNet heads (NHWC float32,
dynamic batch) into ``keypoints`` [N, P, 17, 3] (y, x, score in input pixels),
``pose_scores`` [N, P] and ``pose_count`` [N] int32, P = ``settings.max_poses``,
rows past the count zero. Opset 17, no custom ops. The presets follow the
numpy references ``onnxpose.reference.decode_multiple_poses_coral`` /
``decode_multiple_poses_tfjs`` (with ``tie_order="scan"``): Coral samples
bilinearly in block units, TF.js samples the nearest cell in pixels; both
find and rank candidates on the heatmap logits (for TF.js, whose part scores
are sigmoids, against ``logit(score_threshold)``).

How the sequential decoders are laid out as a few wide ops:

1. Candidates: a (2 * local_maximum_radius + 1)^2 MaxPool finds local maxima
   (a cell is kept when it equals its window maximum, so ties are allowed), a
   threshold keeps the good ones, ``TopK`` takes the K = ``settings.candidates``
   best over all cells and keypoints (equal scores: lower scan index
   (y, x, keypoint) first).
2. Tree walk: a pose is grown from each of the K candidates at once (the walk
   of a root does not depend on the other roots). The walk is a fixed
   schedule of 8 steps of 3 edges each (``walk_schedule``: per root keypoint,
   highest subtree first, parents before children); the per-step tables
   (source slot, target keypoint, displacement row) are constants gathered by
   root keypoint, so each step is one batch of [N * K * 3] points. The heads
   are re-laid out once as a table of rows (per cell: 17 short offsets, 32
   directed displacements, 17 heatmap values, each (y, x); Coral: at the four
   bilinear corners, neighbours clamped to the grid), so a sample is one
   ``GatherND`` plus a few same-shape element-wise ops and small 2-D GEMMs.
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
``onnxpose.reference.finite_heads``), so outputs are always finite.

Equal-score candidates: Coral and TF.js pop them from a binary heap
(libstdc++ ``std::priority_queue`` / TF.js ``MaxHeap``) in an order that
depends on the heap's history; this graph takes them in scan order. With
quantized heads that can pick another, equally scored root for a person,
which moves a few keypoints of that pose (by up to a couple of pixels on the
Coral reference image).

The caller wires the returned tensors into ``graph.outputs`` and ends with
``graph.cleanup().toposort()``; ``onnxpose.decoder.decoder_only.decoder_only_model`` does all of
that for a decoder-only model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.finite_heads import append_finite_heads
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.decoder.settings import MultiPoseSettings
from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS
from onnxpose.reference.pose_tree import DirectedEdge, walk_from

OPSET = 17
K17 = NUM_KEYPOINTS
# Row table: per cell, the short offsets (y, x) of the 17 keypoints, the displacements
# (y, x) of the 32 directed edges (forward 0..15, backward 16..31), the 17 heatmap
# values (stored twice, to keep two columns).
SHORT_ROW, MID_ROW, HEAT_ROW = 0, K17, K17 + 2 * NUM_EDGES
TABLE_ROWS = HEAT_ROW + K17
WALK_WIDTH = 3                   # edges per walk step (3 -> 8 steps, the tree's depth)
# Bilinear corner weights (TL, TR, BL, BR) = c0 + [ly, lx, ly*lx] @ M, per coordinate.
_CORNER_M = np.array([[-1, 0, 1, 0], [-1, 1, 0, 0], [1, -1, -1, 1]], np.float32)
_CORNER_C0 = np.array([1, 0, 0, 0], np.float32)


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


def directed_edge_row(edge: DirectedEdge) -> int:
    """Row of ``edge`` in the displacement table: forward e -> e, backward e -> 16 + e."""
    return edge.channel_y if edge.channel_y < NUM_EDGES else edge.channel_y - NUM_EDGES


def walk_tables(width: int = WALK_WIDTH) -> dict[str, np.ndarray]:
    """Per (step, root keypoint, slot) tables of the scheduled walk.

    Points are stored in schedule order: slot 0 is the root, step d slot s is
    ``1 + d * width + s``. ``source``: slot of the edge's source; ``target``:
    keypoint reached; ``edge``: displacement row; idle slots re-walk the root
    (harmless, never read back). ``order[root, k]``: slot of keypoint k.
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
                edge[d, root, s] = directed_edge_row(e)
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


def coordinate_major_rows(gb: GraphBuilder, heat, short, mid):
    """[N,h,w,2*66] channels: the y of the 66 table rows, then their x."""
    short_y, short_x = gb.split(short, [K17, K17], 3, "tables/short_yx")
    fwd_y, fwd_x, bwd_y, bwd_x = gb.split(mid, [NUM_EDGES] * 4, 3, "tables/mid_yx")
    return gb.concat([short_y, fwd_y, bwd_y, heat, short_x, fwd_x, bwd_x, heat], 3,
                     "tables/rows_yx")


# -- the decoder ---------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Static sizes of one decoder."""

    h: int
    w: int
    stride: int
    k: int            # candidates tried as roots
    m: int            # poses kept before padding to max_poses
    width: int        # walk edges per step


class _Decoder:
    """Graph construction shared by both presets; subclasses sample and score.

    Points are processed as 2-D row batches ([rows, 2], rows ordered image,
    candidate, slot) so that element-wise ops see equal shapes and the few
    matrix products are plain 2-D GEMMs; table lookups are one ``GatherND``
    with (image, y, x, table row) indices.
    """

    channels = 2  # floats per table row

    def __init__(self, gb: GraphBuilder, layout: Layout, settings: MultiPoseSettings):
        self.gb, self.lay, self.settings = gb, layout, settings
        self._is_root = None

    # ---- batch bookkeeping
    def batch_setup(self, heatmaps):
        """The image index [N,1] of each image (and N) for the row batches built later."""
        gb = self.gb
        n = gb.gather(gb.shape(heatmaps, "batch/shape"), gb.scalar(0, np.int64), 0, "batch/size")
        images = gb.range_(gb.scalar(0, np.int64), n, gb.scalar(1, np.int64), "batch/images")
        self.images = gb.reshape(images, [-1, 1], "batch/image_col")           # [N, 1]

    def image_column(self, per_image: int, name: str):
        """[N * per_image, 1] int64: the image of each row of a row batch."""
        gb = self.gb
        rows = gb.add(self.images, np.zeros(per_image, np.int64), f"{name}_nk")
        return gb.reshape(rows, [-1, 1], name)

    def row_offsets(self, per_image: int, name: str):
        """[N, 1]: ``n * per_image``, to address rows of [N * per_image, ...] tensors."""
        return self.gb.mul(self.images, np.int64(per_image), name)

    def upper_bounds(self, image_col, name: str):
        """[rows, 2] float (h - 1, w - 1) for a row batch (equal shapes run faster)."""
        gb = self.gb
        zeros = gb.cast(gb.mul(image_col, np.int64(0), f"{name}_zero_int"), np.float32,
                        f"{name}_zero")
        return gb.add(zeros, np.array([self.lay.h - 1, self.lay.w - 1], np.float32), name)

    def lookup(self, cell, image_col, rows, name):
        """Table rows at integer cells (y, x) [rows, 2] (float): [rows, channels]."""
        gb = self.gb
        index = gb.concat([image_col, gb.cast(cell, np.int64, f"{name}/cell_int"), rows], 1,
                          f"{name}/index")
        return gb.op("GatherND", [self.table, index], f"{name}/values")

    # ---- candidates
    def candidates(self, scores, threshold):
        """TopK local maxima: (score [N,K], flat index [N,K], valid [N,K])."""
        gb, r = self.gb, self.settings.local_maximum_radius
        nchw = gb.transpose(scores, [0, 3, 1, 2], "candidates/scores_nchw")
        pooled = gb.max_pool(nchw, [2 * r + 1] * 2, "candidates/window_max", pads=[r] * 4)
        pooled = gb.transpose(pooled, [0, 2, 3, 1], "candidates/window_max_nhwc")
        is_max = gb.greater_or_equal(scores, pooled, "candidates/is_local_max")
        above = gb.greater_or_equal(scores, np.float32(threshold), "candidates/above_threshold")
        is_candidate = gb.logical_and(is_max, above, "candidates/mask")
        masked = gb.where(is_candidate, scores, np.float32(-np.inf), "candidates/masked_scores")
        size = self.lay.h * self.lay.w * K17
        values, index = gb.topk(gb.reshape(masked, [0, size], "candidates/flat_scores"),
                                self.lay.k, 1, "candidates/topk")
        valid = gb.gather_elements(gb.reshape(is_candidate, [0, size], "candidates/flat_mask"),
                                   index, 1, "candidates/valid")
        return values, index, valid

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

    def root_lookup(self, cell_yx, keypoint, first_row: int, name):
        """Table row ``first_row + keypoint`` at each candidate's cell: [N*K, channels]."""
        gb, k = self.gb, self.lay.k
        cells = gb.reshape(cell_yx, [-1, 2], f"{name}/cells")
        rows = gb.reshape(gb.add(keypoint, np.int64(first_row), f"{name}/rows_"), [-1, 1],
                          f"{name}/rows")
        return self.lookup(cells, self.image_column(k, f"{name}/images"), rows, name)

    def is_root(self, keypoint):
        """[N,K,17] bool: keypoint t is the root's keypoint (built once)."""
        if self._is_root is None:
            self._is_root = self.gb.equal(self.gb.unsqueeze(keypoint, [-1], "roots/keypoint_col"),
                                          np.arange(K17, dtype=np.int64), "roots/is_root_keypoint")
        return self._is_root

    def keypoint_rows(self, first_row: int, name):
        """[N*K*17, 1] table rows ``first_row + t`` of every keypoint t of every candidate."""
        gb = self.gb
        pattern = np.tile(np.arange(first_row, first_row + K17, dtype=np.int64), self.lay.k)
        rows = gb.add(gb.mul(self.images, np.int64(0), f"{name}_zero"), pattern, f"{name}_nk")
        return gb.reshape(rows, [-1, 1], name)

    # ---- walk
    def step_tables(self, keypoint):
        """Per step: (source slot [N,K,W,2], short-offset table rows [R,1], displacement
        table rows [R,1]); and the (root, keypoint) -> slot table. One ``Slice`` per step
        and table: the step is the innermost axis of the row tables."""
        gb, width, tables = self.gb, self.lay.width, walk_tables(self.lay.width)
        depth = len(tables["source"])
        source = tables["source"].transpose(1, 0, 2).reshape(K17, depth * width, 1)  # [17, D*W]
        source = np.repeat(source, 2, -1)
        source = gb.gather(gb.const(source, "walk/source_table"), keypoint, 0, "walk/source")
        rows = []
        for name, table in (("short", tables["target"] + SHORT_ROW),
                            ("displacement", tables["edge"] + MID_ROW)):
            table = table.transpose(1, 2, 0)                                    # [17, W, D]
            picked = gb.gather(gb.const(table, f"walk/{name}_table"), keypoint, 0, f"walk/{name}")
            rows.append(gb.reshape(picked, [-1, depth], f"walk/{name}_rows"))  # [R, D]
        steps = []
        for d in range(depth):
            steps.append((gb.slice(source, [d * width], [(d + 1) * width], [2],
                                   f"walk/step{d}/source"),
                          gb.slice(rows[0], [d], [d + 1], [1], f"walk/step{d}/short_rows"),
                          gb.slice(rows[1], [d], [d + 1], [1], f"walk/step{d}/displacement_rows")))
        return steps, tables["order"]

    def walk(self, root_points, keypoint):
        """All 17 keypoints of every candidate pose: [N,K,17,2]."""
        gb, lay = self.gb, self.lay
        steps, order = self.step_tables(keypoint)
        self.walk_images = self.image_column(lay.k * lay.width, "walk/images")
        self.walk_upper = self.upper_bounds(self.walk_images, "walk/upper")
        slots = gb.unsqueeze(root_points, [2], "walk/slots0")              # [N,K,1,2]
        for d, (source, short_rows, mid_rows) in enumerate(steps):
            start = gb.gather_elements(slots, source, 2, f"walk/step{d}/start_")  # [N,K,W,2]
            start = gb.reshape(start, [-1, 2], f"walk/step{d}/start")
            moved = self.follow_edges(start, mid_rows, short_rows, f"walk/step{d}")
            moved = gb.reshape(moved, [-1, lay.k, lay.width, 2], f"walk/step{d}/moved")
            slots = gb.concat([slots, moved], 2, f"walk/slots{d + 1}")
        order = np.repeat(order[..., None], 2, -1)
        order = gb.gather(gb.const(order, "walk/order_table"), keypoint, 0, "walk/order")
        return gb.gather_elements(slots, order, 2, "walk/points")

    # ---- NMS and scoring
    def suppression(self, points, root_points, keypoint, squared_radius):
        """[N,K,K] float: root i lies within the radius of keypoint k_i of pose j < i."""
        gb, k = self.gb, self.lay.k
        onehot = gb.cast(self.is_root(keypoint), np.float32, "nms/root_onehot")
        by_keypoint = gb.reshape(gb.transpose(points, [0, 2, 1, 3], "nms/points_by_keypoint"),
                                 [0, K17, 2 * k], "nms/points_by_keypoint_flat")
        same_part = gb.reshape(gb.matmul(onehot, by_keypoint, "nms/same_part_flat"), [0, k, k, 2],
                               "nms/same_part_points")   # [n, i, j] = points[n, j, k_i]
        delta = gb.sub(same_part, gb.unsqueeze(root_points, [2], "nms/root_"), "nms/delta")
        squared = gb.reduce_sum(gb.mul(delta, delta, "nms/delta_sq"), [-1], "nms/squared_distance")
        close = gb.less_or_equal(squared, np.float32(squared_radius), "nms/close")
        earlier = np.tril(np.ones((k, k), bool), -1)
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
        body_graph = gs.Graph(name=gb.name("nms/greedy_body"))
        body = GraphBuilder(body_graph, gb.name("nms/greedy/"))
        iteration = gs.Variable(body.name("iteration"), dtype=np.int64, shape=[])
        cond_in = gs.Variable(body.name("cond_in"), dtype=np.bool_, shape=[])
        accepted_in = gs.Variable(body.name("accepted_in"), dtype=np.float32)
        updated, cond_out = self.greedy_pass(body, suppression, base, accepted_in, "pass")
        cond_out.dtype, cond_out.shape, updated.dtype = np.bool_, [], np.float32
        body_graph.inputs = [iteration, cond_in, accepted_in]
        body_graph.outputs = [cond_out, updated]
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
        _, order = gb.topk(gb.where(mask, key, np.float32(-np.inf), f"{name}/key"), self.lay.m, 1,
                           f"{name}/topk")
        rows = gb.add(order, batch_rows, f"{name}/rows")
        picked = [gb.gather(gb.reshape(t, [-1, *rest], f"{name}/flat{i}"), rows, 0,
                            f"{name}/gathered{i}")
                  for i, (t, rest) in enumerate(tensors)]
        return gb.gather_elements(mask, order, 1, f"{name}/mask"), picked

    def overlap_score(self, poses, valid, squared_radius, name):
        """Sum of keypoint scores not within the radius of an earlier valid pose, / 17: [N,m]."""
        gb, m = self.gb, self.lay.m
        points, scores = gb.split(poses, [2, 1], -1, f"{name}/split")
        delta = gb.sub(gb.unsqueeze(points, [2], f"{name}/points_i"),
                       gb.unsqueeze(points, [1], f"{name}/points_j"), f"{name}/delta")
        squared = gb.reduce_sum(gb.mul(delta, delta, f"{name}/delta_sq"), [-1],
                                f"{name}/squared_distance")                  # [N, i, j, 17]
        close = gb.less_or_equal(squared, np.float32(squared_radius), f"{name}/close")
        earlier = np.tril(np.ones((m, m), bool), -1)[:, :, None]
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
        gb, pad = self.gb, self.settings.max_poses - self.lay.m
        keypoints = gb.mul(poses, np.array([scale, scale, 1], np.float32), "out/scaled")
        keypoints = gb.where(gb.unsqueeze(valid, [2, 3], "out/valid_4d"), keypoints,
                             np.float32(0), "out/keypoints_m")
        scores = gb.where(valid, scores, np.float32(0), "out/pose_scores_m")
        if pad:
            keypoints = gb.pad(keypoints, [0, 0, 0, 0, 0, pad, 0, 0], "out/keypoints_padded")
            scores = gb.pad(scores, [0, 0, 0, pad], "out/pose_scores_padded")
        count = gb.reduce_sum(gb.cast(valid, np.int32, "out/valid_i32"), [1], "out/count")
        return {"keypoints": gb.identity(keypoints, "keypoints"),
                "pose_scores": gb.identity(scores, "pose_scores"),
                "pose_count": gb.identity(count, "pose_count")}


class _CoralDecoder(_Decoder):
    """Bilinear sampling in block units; logits rank the candidates."""

    channels = 8  # (corner, y/x): TL, TR, BL, BR

    def tables(self, heatmaps, short_offsets, displacements):
        """[N,h,w,66,8]: per cell and table row, the (y, x) values at the cell's TL, TR, BL and
        BR neighbours (clamped to the grid). Offsets in blocks."""
        gb, h, w = self.gb, self.lay.h, self.lay.w
        stride = np.float32(self.lay.stride)
        short = gb.div(short_offsets, stride, "tables/short_blocks")
        yx = coordinate_major_rows(gb, heatmaps, short,
                                   gb.div(displacements, stride, "tables/mid_blocks"))

        # one more row and column, copies of the last ones: a cell's neighbours, clamped
        padded = gb.op("Pad", [yx, np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64)], "tables/padded",
                       {"mode": "edge"})
        corners = [gb.slice(padded, [y, x], [y + h, x + w], [1, 2], f"tables/corner_{name}")
                   for name, (y, x) in (("tl", (0, 0)), ("tr", (0, 1)), ("bl", (1, 0)),
                                        ("br", (1, 1)))]
        corners = gb.concat(corners, 3, "tables/corners")                     # [N,h,w,4*132]
        corners = gb.reshape(corners, [-1, 4, 2, TABLE_ROWS], "tables/corners_by_cell")
        # Einsum, not Transpose: onnxruntime's multi-threaded CPU Transpose of this shape is
        # ~6x slower (benchmarks/results: 460 us vs 75 us at 2 threads)
        by_row = gb.einsum(corners, "cpyr->crpy", "tables/rows_by_corner")    # [N*h*w,66,4,2]
        return gb.reshape(by_row, [-1, h, w, TABLE_ROWS, self.channels], "tables/rows")

    def sample(self, points, image_col, rows, name, plus=None):
        """Bilinear samples (y, x) at points [R,2] (inside the grid) of table ``rows`` [R,1],
        plus ``plus`` [R,2] if given: [R,2]."""
        gb = self.gb
        cell = gb.floor(points, f"{name}/floor")
        frac = gb.sub(points, cell, f"{name}/frac")
        values = self.lookup(cell, image_col, rows, name)                      # [R, 8]
        features = gb.concat([frac, gb.reduce_attr("ReduceProd", frac, [1], f"{name}/frac_yx",
                                                   keepdims=True)], 1, f"{name}/features")
        weights = gb.gemm(features, np.repeat(_CORNER_M, 2, 1), np.repeat(_CORNER_C0, 2),
                          f"{name}/weights")
        weighted = gb.mul(values, weights, f"{name}/weighted")
        corner_sum = np.tile(np.eye(2, dtype=np.float32), (4, 1))
        if plus is None:
            return gb.matmul(weighted, corner_sum, f"{name}/value")
        return gb.gemm(weighted, corner_sum, plus, f"{name}/value_plus")

    def move(self, points, rows, name):
        moved = self.sample(points, self.walk_images, rows, name, plus=points)
        low = self.gb.relu(moved, f"{name}/clamped_lo")   # max(., 0); fuses into the Gemm
        return self.gb.minimum(low, self.walk_upper, f"{name}/clamped")

    def follow_edges(self, start, mid_rows, short_rows, name):
        """Points [R,2] (blocks) moved along their edges."""
        points = self.move(start, mid_rows, f"{name}/mid")
        for s in range(self.settings.refine_steps):
            points = self.move(points, short_rows, f"{name}/refine{s}")
        return points

    def decode(self, heatmaps, short_offsets, displacements):
        gb, lay, st = self.gb, self.lay, self.settings
        radius = np.float32(np.float32(st.nms_radius) / np.float32(lay.stride))
        squared_radius = np.float32(radius * radius)
        self.table = self.tables(heatmaps, short_offsets, displacements)
        self.batch_setup(heatmaps)

        _, index, valid = self.candidates(heatmaps, coral_logodds(st.score_threshold))
        keypoint, cell_yx = self.split_index(index)
        offsets = self.root_lookup(cell_yx, keypoint, SHORT_ROW, "roots/short")   # TL corner
        offsets = gb.reshape(gb.slice(offsets, [0], [2], [1], "roots/short_tl"), [-1, lay.k, 2],
                             "roots/short_offsets")
        hi = np.array([lay.h - 1, lay.w - 1], np.float32)
        roots = gb.minimum(gb.maximum(gb.add(cell_yx, offsets, "roots/refined"), np.float32(0),
                                      "roots/points_lo"), hi, "roots/points")

        points = self.walk(roots, keypoint)
        logits = self.sample(gb.reshape(points, [-1, 2], "score/points"),
                             self.image_column(lay.k * K17, "score/images"),
                             self.keypoint_rows(HEAT_ROW, "score/table_rows"), "score/sample")
        logits = gb.reshape(gb.slice(logits, [0], [1], [1], "score/logit"), [-1, lay.k, K17],
                            "score/logits")
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
            self.row_offsets(lay.k, "batch/candidate_rows"), "by_instance")
        rescored = self.overlap_score(poses, by_instance, squared_radius, "rescore")
        still_good = gb.greater_or_equal(rescored, np.float32(st.score_threshold), "final/score_ok")
        final, (poses, rescored) = self.select(
            rescored, gb.logical_and(by_instance, still_good, "final/mask"),
            [(poses, [K17, 3]), (rescored, [])],
            self.row_offsets(lay.m, "batch/pose_rows"), "by_rescored")
        return self.outputs(poses, rescored, final, np.float32(lay.stride))


class _TfjsDecoder(_Decoder):
    """Nearest-cell sampling in pixels; part scores are sigmoids of the logits."""

    def tables(self, scores, short_offsets, displacements):
        """[N,h,w,66,2]: short offsets, displacements, part scores (twice), in pixels."""
        gb, h, w = self.gb, self.lay.h, self.lay.w
        yx = coordinate_major_rows(gb, scores, short_offsets, displacements)
        yx = gb.reshape(yx, [-1, 2, TABLE_ROWS], "tables/rows_yx_by_cell")
        rows = gb.einsum(yx, "cyr->cry", "tables/rows_by_cell")  # [N*h*w, 66, 2]; see Coral's
        return gb.reshape(rows, [-1, h, w, TABLE_ROWS, 2], "tables/rows")

    def nearest_cell(self, points, upper, name):
        """``getStridedIndexNearPoint`` as float (row, col): [R,2]."""
        gb = self.gb
        scaled = gb.div(points, np.float32(self.lay.stride), f"{name}/scaled")
        rounded = gb.floor(gb.add(scaled, np.float32(0.5), f"{name}/half_up"), f"{name}/rounded")
        low = gb.maximum(rounded, np.float32(0), f"{name}/clamp_lo")
        return gb.minimum(low, upper, f"{name}/cell")

    def follow_edges(self, start, mid_rows, short_rows, name):
        """Points [R,2] (pixels) moved along their edges."""
        gb = self.gb
        cell = self.nearest_cell(start, self.walk_upper, f"{name}/mid")
        displacement = self.lookup(cell, self.walk_images, mid_rows, f"{name}/mid")
        points = gb.add(start, displacement, f"{name}/displaced")
        for s in range(self.settings.refine_steps):
            cell = self.nearest_cell(points, self.walk_upper, f"{name}/refine{s}")
            offsets = self.lookup(cell, self.walk_images, short_rows, f"{name}/refine{s}")
            points = gb.gemm(cell, np.float32(self.lay.stride) * np.eye(2, dtype=np.float32),
                             offsets, f"{name}/refine{s}/points")      # cell * stride + offsets
        return points

    def decode(self, heatmaps, short_offsets, displacements):
        gb, lay, st = self.gb, self.lay, self.settings
        squared_radius = np.float32(np.float32(st.nms_radius) ** 2)
        scores = gb.sigmoid(heatmaps, "tables/part_scores")
        self.table = self.tables(scores, short_offsets, displacements)
        self.batch_setup(heatmaps)

        _, index, valid = self.candidates(heatmaps, logit(st.score_threshold))
        keypoint, cell_yx = self.split_index(index)
        offsets = gb.reshape(self.root_lookup(cell_yx, keypoint, SHORT_ROW, "roots/short"),
                             [-1, lay.k, 2], "roots/short_offsets")
        roots = gb.add(gb.mul(cell_yx, np.float32(lay.stride), "roots/cell_px"), offsets,
                       "roots/points")
        root_scores = self.root_lookup(cell_yx, keypoint, HEAT_ROW, "roots/score")
        root_scores = gb.reshape(gb.slice(root_scores, [0], [1], [1], "roots/score_"),
                                 [-1, lay.k, 1], "roots/scores")

        points = self.walk(roots, keypoint)
        score_images = self.image_column(lay.k * K17, "score/images")
        flat = gb.reshape(points, [-1, 2], "score/points")
        cell = self.nearest_cell(flat, self.upper_bounds(score_images, "score/upper"), "score")
        sampled = self.lookup(cell, score_images, self.keypoint_rows(HEAT_ROW, "score/table_rows"),
                              "score")
        sampled = gb.reshape(gb.slice(sampled, [0], [1], [1], "score/sampled_"), [-1, lay.k, K17],
                             "score/sampled")
        keypoint_scores = gb.where(self.is_root(keypoint), root_scores, sampled,
                                   "score/keypoint_scores")

        base = gb.cast(gb.unsqueeze(valid, [-1], "nms/base_3d"), np.float32, "nms/base")
        suppression = self.suppression(points, roots, keypoint, squared_radius)
        keep = self.keep_first(self.greedy_accept(suppression, base))
        decode_order = gb.const(-np.arange(lay.k, dtype=np.float32), "poses/decode_order")
        kept, (poses,) = self.select(decode_order, keep,
                                     [(self.poses_tensor(points, keypoint_scores), [K17, 3])],
                                     self.row_offsets(lay.k, "batch/candidate_rows"), "kept")
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
    outputs = decoder.decode(*append_finite_heads(builder, heatmaps, short_offsets, displacements))
    batch = (heatmaps.shape or ["N"])[0]
    p = settings.max_poses
    for name, dtype, shape in (("keypoints", np.float32, [batch, p, K17, 3]),
                               ("pose_scores", np.float32, [batch, p]),
                               ("pose_count", np.int32, [batch])):
        outputs[name].dtype, outputs[name].shape = dtype, shape
    return outputs

