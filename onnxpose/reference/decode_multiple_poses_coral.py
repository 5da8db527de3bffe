"""Coral's ``DecodeAllPoses`` (PosenetDecoderOp), in numpy.

PersonLab-style decoding, in block units (pixels / output stride) inside:

1. candidates: local maxima of the heatmap logits at least
   ``logit(score_threshold)`` (Coral's ``Logodds``), best first
   (``build_part_with_score_queue``; only the ``settings.candidates`` best are
   tried as roots); a root's position is its cell refined once by its short
   offset and clamped into the grid;
2. greedy roots: a root within ``nms_radius`` of the same keypoint of an
   already accepted pose is skipped;
3. the pose is grown from the root (``decode_pose_coral``),
   as ``settings.coral_release`` walks it (``grouper`` or ``frogfish``, the
   shipped ``posenet_decoder.so``; see ``coral_displacement_channels``);
4. instance score = mean of the 17 keypoint scores; the pose is accepted if it
   is at least ``score_threshold``; stop after ``max_poses`` accepted poses;
5. soft keypoint NMS re-scoring (``soft_keypoint_nms``), sort by the new
   score (stable), drop poses below the threshold, coordinates times stride.

``tie_order="heap"`` (default) takes equal-score candidates in the order of
Coral's libstdc++ ``std::priority_queue`` (reproduces Coral exactly);
``"scan"`` takes them in scan order, like the ONNX graph's default
(``MultiPoseSettings.tie_order``; the graph's ``"heap"`` replays the same queue).
"""

from __future__ import annotations

import numpy as np

from onnxpose.spec import MultiPoseSettings
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.reference.build_part_with_score_queue import Part, build_part_with_score_queue
from onnxpose.reference.decode_pose_coral import clamp_to_grid, decode_pose_coral
from onnxpose.reference.keypoint_nms import within_nms_radius
from onnxpose.reference.pack_poses import pack_poses, stack_batch
from onnxpose.reference.sigmoid import coral_logodds
from onnxpose.reference.soft_keypoint_nms import (decreasing_order, soft_keypoint_nms,
                                                  summed_in_decreasing_order)


def refined_root(part: Part, short_offsets: np.ndarray) -> tuple[np.float32, np.float32]:
    h, w = short_offsets.shape[:2]
    dy = short_offsets[part.y, part.x, part.keypoint]
    dx = short_offsets[part.y, part.x, NUM_KEYPOINTS + part.keypoint]
    return clamp_to_grid(np.float32(part.y) + dy, np.float32(part.x) + dx, h, w)


def decode_image(heatmaps, short_offsets, displacements, output_stride: int,
                 settings: MultiPoseSettings, tie_order: str):
    """One image: heatmaps [h, w, 17] logits, offsets in pixels."""
    stride = np.float32(output_stride)
    short_offsets = (short_offsets / stride).astype(np.float32)
    displacements = (displacements / stride).astype(np.float32)
    radius = np.float32(np.float32(settings.nms_radius) / stride)
    squared_radius = np.float32(radius * radius)
    threshold = np.float32(settings.score_threshold)

    roots = build_part_with_score_queue(
        heatmaps, coral_logodds(settings.score_threshold), settings.local_maximum_radius,
        settings.candidates, tie_order, queue="std")
    points, keypoint_scores, instance_scores = [], [], []
    for part in roots:
        if len(points) >= settings.max_poses:
            break
        root = refined_root(part, short_offsets)
        if within_nms_radius(points, squared_radius, root, part.keypoint):
            continue
        coords, scores = decode_pose_coral(root, part.keypoint, heatmaps, short_offsets,
                                           displacements, settings.refine_steps,
                                           settings.coral_release)
        instance_score = np.float32(summed_in_decreasing_order(scores) / np.float32(NUM_KEYPOINTS))
        if instance_score >= threshold:
            points.append(coords)
            keypoint_scores.append(scores)
            instance_scores.append(instance_score)

    rescored = soft_keypoint_nms(points, keypoint_scores, instance_scores, squared_radius)
    poses = [(points[i] * stride, keypoint_scores[i], rescored[i])
             for i in decreasing_order(rescored) if rescored[i] >= threshold]
    return pack_poses(poses, settings.max_poses)


def decode_multiple_poses_coral(heatmaps, short_offsets, displacements, output_stride: int,
                                settings: MultiPoseSettings, *, tie_order: str = "heap"):
    """Batched Coral decoding.

    heatmaps [N, h, w, 17] logits, short_offsets [N, h, w, 34] and
    displacements [N, h, w, 64] in pixels. Returns keypoints [N, P, 17, 3]
    (y, x, score; input pixels), pose_scores [N, P], pose_count [N] int32,
    with P = ``settings.max_poses`` and rows past the count zero.
    """
    per_image = [decode_image(np.asarray(hm, np.float32), np.asarray(so, np.float32),
                              np.asarray(dp, np.float32), output_stride, settings, tie_order)
                 for hm, so, dp in zip(heatmaps, short_offsets, displacements)]
    return stack_batch(per_image)
