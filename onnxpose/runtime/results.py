"""Typed results: arrays plus named keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onnxpose.keypoints import KEYPOINT_NAMES


@dataclass(frozen=True)
class Keypoint:
    name: str
    x: float
    y: float
    score: float


@dataclass(frozen=True)
class Pose:
    score: float
    keypoints: tuple[Keypoint, ...]

    def __getitem__(self, name: str) -> Keypoint:
        for keypoint in self.keypoints:
            if keypoint.name == name:
                return keypoint
        raise KeyError(name)


@dataclass(frozen=True)
class PoseResult:
    """Poses found in one image.

    ``keypoints`` float32 [P,17,3] (y, x, score) in the pixels of the original
    image; ``scores`` float32 [P]; ``image_size`` (height, width).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int]
    #: float32 [P,5] (ymin, xmin, ymax, xmax, score) in the original image's pixels, when
    #: the model outputs boxes (built by onnxpose >= the ``--input image`` release)
    boxes: np.ndarray | None = None

    @property
    def poses(self) -> list[Pose]:
        return [Pose(float(score), tuple(Keypoint(name, float(x), float(y), float(s))
                                         for name, (y, x, s) in zip(KEYPOINT_NAMES, kps)))
                for kps, score in zip(self.keypoints, self.scores)]

    def to_dict(self, min_score: float | None = None) -> dict:
        """JSON-ready: ``{"image_size": {"height", "width"}, "poses": [{"score", "keypoints":
        [{"name", "y", "x", "score"}]}]}``, y and x in image pixels; keypoints scoring below
        ``min_score`` (if given) are left out."""
        poses = [{"score": p.score,
                  "keypoints": [{"name": k.name, "y": k.y, "x": k.x, "score": k.score}
                                for k in p.keypoints if min_score is None or k.score >= min_score]}
                 for p in self.poses]
        if self.boxes is not None:
            for pose, box in zip(poses, self.boxes):
                pose["box"] = dict(zip(("ymin", "xmin", "ymax", "xmax"), map(float, box[:4])))
        return {"image_size": {"height": self.image_size[0], "width": self.image_size[1]},
                "poses": poses}


def _movenet_multi(output_0: np.ndarray):
    """MoveNet MultiPose's [N,P,56] -> keypoints [N,P,17,3], boxes [N,P,5], scores, counts
    (y, x normalized; rows past the count are zeros, so they score 0)."""
    keypoints = output_0[..., :51].reshape(*output_0.shape[:2], 17, 3).astype(np.float32)
    boxes = np.concatenate([output_0[..., 51:55], output_0[..., 55:56]], -1).astype(np.float32)
    scores = output_0[..., 55].astype(np.float32)
    return keypoints, boxes, scores, (scores > 0).sum(axis=1)


def results_from_outputs(outputs: dict[str, np.ndarray], info, image_sizes) -> list[PoseResult]:
    """Turn a batch of model outputs into one PoseResult per image (original pixels)."""
    boxes = outputs.get("boxes")
    in_image_pixels = getattr(info, "image_input", False)
    if "output_0" in outputs and outputs["output_0"].ndim == 3:  # MoveNet MultiPose [N,P,56]
        keypoints, boxes, scores, counts = _movenet_multi(outputs["output_0"])
        unit = (1.0, 1.0)
    elif "output_0" in outputs:  # movenet layout: [N,1,17,3], y and x in 0..1
        keypoints = outputs["output_0"].astype(np.float32)
        scores = keypoints[..., 2].mean(axis=2)
        counts = np.ones(len(keypoints), int)
        unit = (1.0, 1.0)
    elif "pose_count" in outputs:
        keypoints, scores = outputs["keypoints"], outputs["pose_scores"]
        counts = outputs["pose_count"].astype(int)
        unit = None if in_image_pixels else (info.input_height, info.input_width)
    else:
        keypoints, scores = outputs["keypoints"][:, None], outputs["pose_score"][:, None]
        boxes = None if boxes is None else boxes[:, None]
        counts = np.ones(len(keypoints), int)
        unit = None if in_image_pixels else (info.input_height, info.input_width)
    results = []
    for i, (kps, sc, count, (height, width)) in enumerate(zip(keypoints, scores, counts,
                                                             image_sizes)):
        fy, fx = (1.0, 1.0) if unit is None else (height / unit[0], width / unit[1])
        kps = np.array(kps[:count], dtype=np.float32)
        kps[..., 0] *= fy
        kps[..., 1] *= fx
        box = None
        if boxes is not None:
            box = np.array(boxes[i][:count], dtype=np.float32)
            box[..., [0, 2]] *= fy
            box[..., [1, 3]] *= fx
        results.append(PoseResult(kps, np.asarray(sc[:count], np.float32), (height, width), box))
    return results
