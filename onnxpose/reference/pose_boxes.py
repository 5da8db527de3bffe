"""The numpy reference of what a built model does around its decoder
(``onnxpose.decoder.image_input`` is the graph form, same function names):
the letterbox geometry, keypoints mapped back to the input image, one box per pose, and the
MoveNet layouts."""

from __future__ import annotations

import numpy as np


def letterbox_geometry(image_hw, backbone_hw, resize: str):
    """(resized_h, resized_w, top, left): where the resized image sits in the backbone input.
    ``stretch``: the whole input. ``letterbox``: scale ``min(bh / H, bw / W)``, sizes rounded
    half up (at least 1), centered (padding split floor / ceil)."""
    (height, width), (bh, bw) = image_hw, backbone_hw
    if resize == "stretch":
        return bh, bw, 0, 0
    scale = min(bh / height, bw / width)
    new_h = int(min(max(np.floor(height * scale + 0.5), 1), bh))
    new_w = int(min(max(np.floor(width * scale + 0.5), 1), bw))
    return new_h, new_w, (bh - new_h) // 2, (bw - new_w) // 2


def map_keypoints_to_image(keypoints, image_hw, geometry):
    """[..., 17, 3] (y, x, score) in backbone pixels -> in the input image's pixels:
    ``y = (y - top) * H / resized_h`` (same for x)."""
    new_h, new_w, top, left = geometry
    out = np.array(keypoints, dtype=np.float32, copy=True)
    out[..., 0] = (out[..., 0] - np.float32(top)) * np.float32(image_hw[0] / new_h)
    out[..., 1] = (out[..., 1] - np.float32(left)) * np.float32(image_hw[1] / new_w)
    return out


def pose_boxes(keypoints, pose_scores, valid, box_threshold: float):
    """[..., 5] (ymin, xmin, ymax, xmax, score): the extent of each pose's keypoints scoring at
    least ``box_threshold``, and the pose's score; zeros for rows not ``valid`` (past the pose
    count) and for poses with no such keypoint."""
    counted = keypoints[..., 2] >= box_threshold
    y, x = keypoints[..., 0], keypoints[..., 1]
    big = np.float32(np.inf)
    box = np.stack([np.where(counted, y, big).min(-1), np.where(counted, x, big).min(-1),
                    np.where(counted, y, -big).max(-1), np.where(counted, x, -big).max(-1),
                    np.asarray(pose_scores, np.float32)], axis=-1)
    keep = (counted.any(-1) & valid)[..., None]
    return np.where(keep, box, np.float32(0)).astype(np.float32)


def movenet_multi_layout(keypoints, boxes, image_hw):
    """MoveNet MultiPose's ``output_0`` [N,P,56]: 17 x (y / H, x / W, score), then ymin / H,
    xmin / W, ymax / H, xmax / W, the pose score."""
    height, width = np.float32(image_hw[0]), np.float32(image_hw[1])
    kps = keypoints / np.array([height, width, 1], np.float32)
    box = boxes / np.array([height, width, height, width, 1], np.float32)
    return np.concatenate([kps.reshape(*kps.shape[:-2], 51), box], axis=-1).astype(np.float32)


def model_outputs_reference(decoded: dict, multi: bool, io, image_hw, backbone_hw) -> dict:
    """A built model's outputs from its decoder's outputs (onnxpose layout, backbone pixels)."""
    geometry = letterbox_geometry(image_hw, backbone_hw, io.resize)
    if multi:
        count = decoded["pose_count"]
        scores = decoded["pose_scores"]
        valid = np.arange(scores.shape[1])[None, :] < count[:, None]
        keypoints = map_keypoints_to_image(decoded["keypoints"], image_hw, geometry)
        keypoints = np.where(valid[..., None, None], keypoints, np.float32(0))
    else:
        scores = decoded.get("pose_score", np.mean(decoded["keypoints"][..., 2], axis=-1))
        valid = np.ones(scores.shape, bool)
        keypoints = map_keypoints_to_image(decoded["keypoints"], image_hw, geometry)
    boxes = pose_boxes(keypoints, scores, valid, io.box_threshold)
    if io.layout == "movenet":
        if multi:
            return {"output_0": movenet_multi_layout(keypoints, boxes, image_hw)}
        return {"output_0": (keypoints / np.array([*image_hw, 1], np.float32))[:, None]}
    if multi:
        return {"keypoints": keypoints, "pose_scores": scores, "pose_count": count, "boxes": boxes}
    return {"keypoints": keypoints, "pose_score": scores, "boxes": boxes}
