"""Decoder settings, shared by the graph builders and the numpy references."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

COORDINATES = ("stride", "grid")
LAYOUTS = ("onnxpose", "movenet")
PRESETS = ("coral", "tfjs")
TIE_ORDERS = ("scan", "heap")


@dataclass(frozen=True)
class SinglePoseSettings:
    """Single-pose decoding (argmax per keypoint).

    coordinates: ``stride`` (TF.js decodeSinglePose: ``y = row * output_stride +
    offset_y``, score = sigmoid(logit)) or ``grid`` (``y = row / (h - 1) *
    input_h + offset_y``, score = raw heatmap value).
    layout: ``onnxpose`` (``keypoints`` [N,17,3] in input pixels and
    ``pose_score`` [N]) or ``movenet`` (``output_0`` [N,1,17,3], y and x
    divided by the input height and width).
    """

    coordinates: str = "stride"
    layout: str = "onnxpose"

    def __post_init__(self):
        if self.coordinates not in COORDINATES:
            raise ValueError(f"coordinates must be one of {COORDINATES}, not {self.coordinates!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {self.layout!r}")


@dataclass(frozen=True)
class MultiPoseSettings:
    """Multi-pose (PersonLab-style) decoding.

    preset ``coral`` reproduces Coral's PosenetDecoderOp (bilinear sampling,
    soft keypoint NMS re-scoring); ``tfjs`` reproduces TF.js PoseNet's
    decodeMultiplePoses (nearest-cell sampling, sum of non-overlapping
    keypoint scores / 17). ``nms_radius`` is in input pixels. ``candidates``
    (K) bounds how many local-maximum candidates (best first) are considered
    as roots. ``tie_order``: equal-score candidates in scan order (``scan``,
    one TopK) or in the order Coral's ``std::priority_queue`` pops them
    (``heap``, coral preset only: exact Coral roots, at the cost of replaying
    the heap in the graph).
    """

    preset: str = "coral"
    max_poses: int = 10
    score_threshold: float = 0.2
    nms_radius: float = 10.0
    candidates: int = 64
    refine_steps: int = 5
    local_maximum_radius: int = 1
    tie_order: str = "scan"

    @classmethod
    def for_preset(cls, preset: str, **overrides) -> "MultiPoseSettings":
        """The preset's defaults, with ``overrides`` (None values ignored) applied."""
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, not {preset!r}")
        defaults = {
            "coral": dict(max_poses=10, score_threshold=0.2, nms_radius=10.0, refine_steps=5),
            "tfjs": dict(max_poses=5, score_threshold=0.5, nms_radius=20.0, refine_steps=2),
        }[preset]
        defaults.update({k: v for k, v in overrides.items() if v is not None})
        return cls(preset=preset, **defaults)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, not {self.preset!r}")
        if self.max_poses < 1 or self.candidates < 1:
            raise ValueError("max_poses and candidates must be at least 1")
        if self.refine_steps < 0 or self.nms_radius < 0:
            raise ValueError("refine_steps and nms_radius must not be negative")
        if self.tie_order not in TIE_ORDERS:
            raise ValueError(f"tie_order must be one of {TIE_ORDERS}, not {self.tie_order!r}")
        if self.tie_order == "heap" and self.preset != "coral":
            raise ValueError("tie_order 'heap' replays Coral's std::priority_queue: coral preset "
                             "only")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
