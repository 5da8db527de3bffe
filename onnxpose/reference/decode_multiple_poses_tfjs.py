"""TF.js PoseNet's ``decodeMultiplePoses``, in numpy (float32).

1. part scores = sigmoid(heatmaps); candidates: local maxima with score at
   least ``score_threshold``, best first (``build_part_with_score_queue``;
   only the ``settings.candidates`` best are tried as roots). Candidates are
   found and ranked on the logits (threshold ``logit(score_threshold)``): the
   same as on the scores, except where a float32 sigmoid rounds different
   logits to equal or 1-ulp-apart scores (near saturation), whose outcome
   depends on the sigmoid implementation anyway;
2. a root whose image position (cell * stride + short offset) lies within
   ``nms_radius`` pixels (squared distance <= radius^2) of the same keypoint
   of an already decoded pose is skipped;
3. the pose is grown from the root (``decode_pose_tfjs``);
4. its score is ``getInstanceScore`` against the poses decoded before it;
   every decoded pose is kept (no pose score threshold) until ``max_poses``.

Poses come out in decoding order. ``tie_order="heap"`` (default) takes
equal-score candidates in the order of TF.js's ``MaxHeap``; ``"scan"`` takes
them in scan order, like the ONNX graph by default (its ``tie_order="heap"``
replays the ``MaxHeap``: ``onnxpose.decoder.tfjs_heap_order``).
"""

from __future__ import annotations

import numpy as np

from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.build_part_with_score_queue import build_part_with_score_queue
from onnxpose.reference.decode_pose_tfjs import decode_pose_tfjs, image_coords
from onnxpose.reference.instance_score import instance_score
from onnxpose.reference.keypoint_nms import within_nms_radius
from onnxpose.reference.pack_poses import pack_poses, stack_batch
from onnxpose.reference.sigmoid import logit, sigmoid


def decode_image(heatmaps, short_offsets, displacements, output_stride: int,
                 settings: MultiPoseSettings, tie_order: str):
    """One image: heatmaps [h, w, 17] logits, offsets in pixels."""
    scores = sigmoid(heatmaps)
    squared_radius = np.float32(np.float32(settings.nms_radius) ** 2)
    roots = build_part_with_score_queue(
        heatmaps, logit(settings.score_threshold), settings.local_maximum_radius,
        settings.candidates, tie_order, queue="tfjs")
    poses, points_so_far = [], []
    for part in roots:
        if len(poses) >= settings.max_poses:
            break
        root = image_coords(part, output_stride, short_offsets)
        if within_nms_radius(points_so_far, squared_radius, root, part.keypoint):
            continue
        points, keypoint_scores = decode_pose_tfjs(part, scores, short_offsets, displacements,
                                                   output_stride, settings.refine_steps)
        score = instance_score(points_so_far, squared_radius, points, keypoint_scores)
        points_so_far.append(points)
        poses.append((points, keypoint_scores, score))
    return pack_poses(poses, settings.max_poses)


def decode_multiple_poses_tfjs(heatmaps, short_offsets, displacements, output_stride: int,
                               settings: MultiPoseSettings, *, tie_order: str = "heap"):
    """Batched TF.js decoding; same arrays in and out as ``decode_multiple_poses_coral``."""
    per_image = [decode_image(np.asarray(hm, np.float32), np.asarray(so, np.float32),
                              np.asarray(dp, np.float32), output_stride, settings, tie_order)
                 for hm, so, dp in zip(heatmaps, short_offsets, displacements)]
    return stack_batch(per_image)
