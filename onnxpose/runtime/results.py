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

    @property
    def poses(self) -> list[Pose]:
        return [Pose(float(score), tuple(Keypoint(name, float(x), float(y), float(s))
                                         for name, (y, x, s) in zip(KEYPOINT_NAMES, kps)))
                for kps, score in zip(self.keypoints, self.scores)]

    def to_dict(self, min_score: float | None = None) -> dict:
        """JSON-ready: ``{"image_size": {"height", "width"}, "poses": [{"score", "keypoints":
        [{"name", "y", "x", "score"}]}]}``, y and x in image pixels; keypoints scoring below
        ``min_score`` (if given) are left out."""
        return {"image_size": {"height": self.image_size[0], "width": self.image_size[1]},
                "poses": [{"score": p.score,
                           "keypoints": [{"name": k.name, "y": k.y, "x": k.x, "score": k.score}
                                         for k in p.keypoints
                                         if min_score is None or k.score >= min_score]}
                          for p in self.poses]}


def results_from_outputs(outputs: dict[str, np.ndarray], info, image_sizes) -> list[PoseResult]:
    """Turn a batch of model outputs into one PoseResult per image (original pixels)."""
    if "output_0" in outputs:  # movenet layout: [N,1,17,3], y and x in 0..1
        keypoints = outputs["output_0"].astype(np.float32)
        scores = keypoints[..., 2].mean(axis=2)
        counts = np.ones(len(keypoints), int)
        unit = (1.0, 1.0)
    elif "pose_count" in outputs:
        keypoints, scores = outputs["keypoints"], outputs["pose_scores"]
        counts = outputs["pose_count"].astype(int)
        unit = (info.input_height, info.input_width)
    else:
        keypoints, scores = outputs["keypoints"][:, None], outputs["pose_score"][:, None]
        counts = np.ones(len(keypoints), int)
        unit = (info.input_height, info.input_width)
    results = []
    for kps, sc, count, (height, width) in zip(keypoints, scores, counts, image_sizes):
        kps = np.array(kps[:count], dtype=np.float32)
        kps[..., 0] *= height / unit[0]
        kps[..., 1] *= width / unit[1]
        results.append(PoseResult(kps, np.asarray(sc[:count], np.float32), (height, width)))
    return results
