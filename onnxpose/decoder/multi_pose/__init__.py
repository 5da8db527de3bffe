"""Multi-person (PersonLab-style) decoding appended to a graph as standard ONNX ops.

``append_multi_pose_decoder`` turns the three PoseNet heads (NHWC float32,
dynamic batch) into ``keypoints`` [N, P, 17, 3] (y, x, score in input pixels),
``pose_scores`` [N, P] and ``pose_count`` [N] int32, P = ``settings.max_poses``,
rows past the count zero (``onnxpose.spec.multi_pose_outputs``). Standard ops
only, at the builder's opset. The presets follow the numpy references
``onnxpose.reference.decode_multiple_poses_coral`` / ``decode_multiple_poses_tfjs``
(with the settings' ``tie_order``): Coral samples bilinearly in block units,
TF.js samples the nearest cell in pixels; both find and rank candidates on the
heatmap logits (for TF.js, whose part scores are sigmoids, against
``logit(score_threshold)``).

One module per phase; each is a set of pure graph-building functions
``f(gb, ctx, ...)`` over the builder ``gb`` (a Loop body is just another
``GraphBuilder``) and the frozen ``context.Context`` that ``setup.setup``
returns. Each function is named after the reference function it vectorizes, so
the graph can be read next to ``onnxpose/reference/`` step by step:

==========================================  ==============================================
graph function (``decoder/multi_pose/``)     reference function (``reference/``)
==========================================  ==============================================
coral.decode_multiple_poses_coral           decode_multiple_poses_coral.decode_multiple_poses_coral
tfjs.decode_multiple_poses_tfjs             decode_multiple_poses_tfjs.decode_multiple_poses_tfjs
setup.setup (+ finite_heads.finite_heads)   finite_heads.finite_heads
candidates.build_part_with_score_queue      build_part_with_score_queue.build_part_with_score_queue
  (tie_order heap: decoder.heap_order,        (std_priority_queue.StdPriorityQueue,
  decoder.tfjs_heap_order, queue_order)       max_heap.MaxHeap)
candidates.part_of_index                    build_part_with_score_queue.Part
candidates.logit / coral_logodds            sigmoid.logit / sigmoid.coral_logodds
skeleton.walk_from, directed_edges          pose_tree.walk_from, directed_edges
walk.walk                                   decode_pose_coral.decode_pose_coral,
                                            decode_pose_tfjs.decode_pose_tfjs
coral.follow_edges, displaced_position      decode_pose_coral.displaced_position
coral.sample_bilinear                       bilinear_sample.sample_bilinear
tfjs.traverse_to_target_keypoint            decode_pose_tfjs.traverse_to_target_keypoint
tfjs.strided_index_near_point               strided_index.strided_index_near_point
root_nms.within_nms_radius, greedy_accept   keypoint_nms.within_nms_radius
scoring.instance_score                      instance_score.instance_score
decoder.ordered_sum.summed                  soft_keypoint_nms.summed_in_decreasing_order
coral.soft_keypoint_nms                     soft_keypoint_nms.soft_keypoint_nms
scoring.pack_poses                          pack_poses.pack_poses
==========================================  ==============================================

How the sequential decoders are laid out as a few wide ops (on CPU the cost
of a graph like this is mostly per node, so the layout keeps the number of
node executions low): candidates (``candidates``), the tree walk (``walk``,
over tables from ``skeleton`` and ``head_tables``), greedy root NMS
(``root_nms``), scoring (``scoring``, ``coral``, ``tfjs``); each module's
docstring says how.

By default (``settings.candidates`` None) every candidate is tried, as Coral and
TF.js do: K is the largest number of candidates of an image of the batch.
With ``settings.candidates`` smaller than that, only the K best candidates (by
score, equal scores in scan order) are ever tried as roots. Once those are
used up (accepted, suppressed or scored too low) no further pose is found,
even where the original decoders, which try every candidate, would find more.
The numpy references given the same ``settings.candidates`` do the same.
Rows past ``min(K, max_poses)`` are always zero.

Non-finite heads: NaN heatmap logits count as -1e4 and logits are clipped to
+-1e4; non-finite offsets and displacements count as 0 (see
``onnxpose.reference.finite_heads``), so outputs are always finite. The clipping
and replacing passes always run (no ``If``), unless the caller knows the heads
are finite and within +-1e4 (``finite_heads``: dequantized 8-bit heads), where
they would change nothing.

Equal-score candidates: Coral and TF.js pop them from a binary heap
(libstdc++ ``std::priority_queue`` / TF.js ``MaxHeap``) in an order that
depends on the heap's history. By default (``tie_order="scan"``) this graph
takes them in scan order; with quantized heads that can pick another, equally
scored root for a person, which moves a few keypoints of that pose (by up to
a couple of pixels on the Coral reference image). ``tie_order="heap"``
replays the preset's heap in the graph (``onnxpose.decoder.heap_order``,
``onnxpose.decoder.tfjs_heap_order``) and takes exactly Coral's (TF.js's) roots.
With every candidate tried the candidates are walked in scan tie order and
``queue_order`` replays the heap afterwards only as far as an image's ties can
change its poses (often not at all); with a cap K the heap decides which K are
walked, so it is replayed first, at a cost that grows with the candidates.

The caller wires the returned tensors into ``graph.outputs`` and ends with
``graph.cleanup().toposort()``; ``onnxpose.decoder.decoder_only.decoder_only_model`` does all of
that for a decoder-only model.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxpose.decoder.multi_pose.context import Grid
from onnxpose.decoder.multi_pose.coral import decode_multiple_poses_coral
from onnxpose.decoder.multi_pose.skeleton import WALK_WIDTH, walk_schedule, walk_tables
from onnxpose.decoder.multi_pose.tfjs import decode_multiple_poses_tfjs
from onnxpose.decoder.ops import GraphBuilder
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.spec import OPSET, MultiPoseSettings, multi_pose_outputs

__all__ = ["OPSET", "PRESET_DECODERS", "append_multi_pose_decoder", "walk_schedule",
           "walk_tables"]

PRESET_DECODERS = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}


def append_multi_pose_decoder(graph: gs.Graph, heatmaps: gs.Variable, short_offsets: gs.Variable,
                              displacements: gs.Variable, grid: tuple[int, int],
                              output_stride: int, settings: MultiPoseSettings,
                              prefix: str = "multi_pose/",
                              finite_heads: bool = False) -> dict[str, gs.Variable]:
    """Append multi-pose decoding of the three NHWC float32 heads to ``graph``.

    ``grid``: the heads' (h, w) (``Heads.grid``); ``finite_heads``: the heads are known
    finite and the heatmaps within +-HEATMAP_LIMIT (``attach.heads_are_finite``), so no
    clipping or replacing pass runs. Returns {"keypoints": [N,P,17,3]
    (y, x, score; input pixels), "pose_scores": [N,P], "pose_count": [N] int32},
    P = ``settings.max_poses``.
    """
    h, w = grid
    cells = h * w * NUM_KEYPOINTS
    k = cells if settings.candidates is None else min(settings.candidates, cells)
    layout = Grid(h=h, w=w, stride=output_stride, k=k, m=min(settings.max_poses, k),
                  width=WALK_WIDTH)
    heads = {"heatmaps": heatmaps, "short_offsets": short_offsets,
             "displacements": displacements}
    outputs = PRESET_DECODERS[settings.preset](GraphBuilder(graph, prefix), layout, settings,
                                               heads, finite_heads)
    batch = (heatmaps.shape or ["N"])[0]
    for spec in multi_pose_outputs(settings.max_poses):
        outputs[spec.name].dtype = np.dtype(spec.dtype)
        outputs[spec.name].shape = [batch, *spec.shape[1:]]
    return outputs
