"""The decoder spec, on the ground floor: what every layer agrees on.

Settings (``SinglePoseSettings``, ``MultiPoseSettings``), the ONNX opsets the
package builds (``OPSET`` by default, up to ``MAX_OPSET``), and each decoder's
outputs (``decoder_outputs``: name, dtype, shape). The graph builders
(``onnxpose.decoder``), the numpy references (``onnxpose.reference``), the
validation (``onnxpose.validate``), the runtime (``onnxpose.runtime``) and the
metadata read it; it imports nothing from them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

#: The opset models are built at by default, and the newest one that builds and runs
#: in onnxruntime (tests build both decoders at every opset in between).
OPSET = 17
MAX_OPSET = 22   # onnxruntime 1.31 runs newer ones; 22 is the newest tested from every source
OPSETS = tuple(range(OPSET, MAX_OPSET + 1))

#: The symbolic batch dimension of inputs and outputs.
BATCH = "N"
#: Heatmap logits are clipped to +-HEATMAP_LIMIT before multi-pose decoding (the numpy
#: reference, ``onnxpose.reference.finite_heads``, has its own copy; a test checks both).
HEATMAP_LIMIT = 1e4

COORDINATES = ("stride", "grid")
LAYOUTS = ("onnxpose", "movenet")
PRESETS = ("coral", "tfjs")
TIE_ORDERS = ("scan", "heap")
CORAL_RELEASES = ("frogfish", "grouper")
#: ``loop``: the walk, the rare NMS passes and the heap replays as ``Loop``s and the
#: finite-heads cleaning behind an ``If``; ``none``: no control flow at all (static K)
CONTROL_FLOWS = ("loop", "none")
#: upper bound of ``refine_steps`` (each step is unrolled in the graph; Coral uses 5, TF.js 2)
MAX_REFINE_STEPS = 16
#: Coral's ``Logodds`` (-log(1 / (p + 1e-6) - 1)) is finite only below this threshold
CORAL_MAX_SCORE_THRESHOLD = 1.0 - 1e-6


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
    (K): None (the default) tries every local-maximum candidate as a root, as
    Coral and TF.js do; a number bounds how many (best first) are tried, which
    is faster on crowded images but loses the poses only a later candidate
    would have started. ``tie_order``: equal-score candidates in scan order (``scan``,
    one TopK) or in the order the original decoder's heap pops them (``heap``:
    Coral's ``std::priority_queue`` or TF.js's ``MaxHeap``, exact roots at the
    cost of replaying the heap in the graph). ``coral_release`` (coral preset only): which
    libcoral walk of the backward edge leftEye -> nose: ``grouper`` (libcoral's
    Grouper release, displacement channels 32 and 48) or ``frogfish`` (the
    ``posenet_decoder.so`` that google-coral/project-posenet ships, built from
    Frogfish: channels 16 and 32, because its BacktrackDecodePose tests
    ``edge_id > kNumEdges``); only poses whose walk crosses that edge (rooted at
    leftEye or leftEar) differ. ``control_flow``: ``loop`` (the default) or ``none``: no
    ``Loop`` or ``If`` (the walk unrolled, root NMS as K unrolled passes, the finite-heads
    cleaning always applied, a constant TopK K), the form TensorRT's ONNX parser, CoreML
    and NNAPI take; it needs ``candidates`` (the static K) and ``tie_order`` scan (the heap
    replays are Loops).
    """

    preset: str = "coral"
    max_poses: int = 10
    score_threshold: float = 0.2
    nms_radius: float = 10.0
    candidates: int | None = None
    refine_steps: int = 5
    local_maximum_radius: int = 1
    tie_order: str = "scan"
    coral_release: str = "grouper"
    control_flow: str = "loop"

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
        if self.max_poses < 1 or (self.candidates is not None and self.candidates < 1):
            raise ValueError("max_poses and candidates must be at least 1")
        for name in ("score_threshold", "nms_radius"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, not {getattr(self, name)!r}")
        if not 0.0 <= self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in [0, 1), not {self.score_threshold!r}")
        if self.preset == "coral" and self.score_threshold >= CORAL_MAX_SCORE_THRESHOLD:
            raise ValueError(f"score_threshold {self.score_threshold!r} is too close to 1: Coral's "
                             f"log-odds need it below {CORAL_MAX_SCORE_THRESHOLD}")
        if self.nms_radius < 0:
            raise ValueError(f"nms_radius must not be negative, not {self.nms_radius!r}")
        if not 0 <= self.refine_steps <= MAX_REFINE_STEPS:
            raise ValueError(f"refine_steps must be in 0..{MAX_REFINE_STEPS}, not "
                             f"{self.refine_steps!r}")
        if self.tie_order not in TIE_ORDERS:
            raise ValueError(f"tie_order must be one of {TIE_ORDERS}, not {self.tie_order!r}")
        if self.coral_release not in CORAL_RELEASES:
            raise ValueError(f"coral_release must be one of {CORAL_RELEASES}, "
                             f"not {self.coral_release!r}")
        if self.coral_release != "grouper" and self.preset != "coral":
            raise ValueError(f"coral_release {self.coral_release!r} is a Coral decoder's walk: "
                             "coral preset only")

        if self.control_flow not in CONTROL_FLOWS:
            raise ValueError(f"control_flow must be one of {CONTROL_FLOWS}, "
                             f"not {self.control_flow!r}")
        if self.control_flow == "none" and self.candidates is None:
            raise ValueError("control_flow none needs --candidates K: a graph without control "
                             "flow has a static number of candidates")
        if self.control_flow == "none" and self.tie_order != "scan":
            raise ValueError("control_flow none needs tie_order scan: the heap replays are "
                             "Loops")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: ``--input``: the backbone's own input tensor, or any-size uint8 photos resized in the graph
INPUT_MODES = ("tensor", "image")
RESIZE_MODES = ("stretch", "letterbox")
#: the name of an image-input model's input, uint8 [N, H, W, 3] RGB
IMAGE_INPUT_NAME = "image"
#: MoveNet MultiPose's number of rows (``--layout movenet --decoder multi`` without --max-poses)
MOVENET_MAX_POSES = 6


@dataclass(frozen=True)
class ModelIOSettings:
    """What the model takes in and gives out around the decoder.

    input: ``tensor`` (the backbone's input, resized by the caller) or ``image`` (uint8
    [N,H,W,3] RGB of any H, W >= 1, resized in the graph as PIL's BILINEAR resize, keypoints
    in its pixels). resize (image input only): ``stretch`` to the backbone size, or
    ``letterbox`` (keep the aspect ratio, pad with the backbone's zero value).
    layout: ``onnxpose`` or ``movenet`` (single: ``output_0`` [N,1,17,3]; multi:
    ``output_0`` [N,P,56], MoveNet MultiPose's). box_threshold: a keypoint counts towards
    its pose's box when its score is at least this.
    """

    input: str = "tensor"
    resize: str = "stretch"
    layout: str = "onnxpose"
    box_threshold: float = 0.2

    def __post_init__(self):
        if self.input not in INPUT_MODES:
            raise ValueError(f"input must be one of {INPUT_MODES}, not {self.input!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, not {self.resize!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {self.layout!r}")
        if not (isinstance(self.box_threshold, (int, float)) and 0.0 <= self.box_threshold <= 1.0):
            raise ValueError(f"box_threshold must be in [0, 1], not {self.box_threshold!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# -- outputs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OutputSpec:
    """One decoder output: name, numpy dtype name and shape (``BATCH`` symbolic)."""

    name: str
    dtype: str
    shape: tuple


def single_pose_outputs(layout: str = "onnxpose") -> tuple[OutputSpec, ...]:
    if layout == "movenet":
        return (OutputSpec("output_0", "float32", (BATCH, 1, 17, 3)),)
    return (OutputSpec("keypoints", "float32", (BATCH, 17, 3)),
            OutputSpec("pose_score", "float32", (BATCH,)))


def multi_pose_outputs(max_poses: int | str = "P") -> tuple[OutputSpec, ...]:
    return (OutputSpec("keypoints", "float32", (BATCH, max_poses, 17, 3)),
            OutputSpec("pose_scores", "float32", (BATCH, max_poses)),
            OutputSpec("pose_count", "int32", (BATCH,)))


def model_outputs(settings: "SinglePoseSettings | MultiPoseSettings",
                  io: ModelIOSettings) -> tuple[OutputSpec, ...]:
    """A built model's outputs: the decoder's in ``io.layout``, with ``boxes`` (ymin, xmin,
    ymax, xmax, score; input pixels) in the onnxpose layout."""
    multi = isinstance(settings, MultiPoseSettings)
    if io.layout == "movenet":
        if multi:
            return (OutputSpec("output_0", "float32", (BATCH, settings.max_poses, 56)),)
        return single_pose_outputs("movenet")
    if multi:
        return multi_pose_outputs(settings.max_poses) + (
            OutputSpec("boxes", "float32", (BATCH, settings.max_poses, 5)),)
    return single_pose_outputs("onnxpose") + (OutputSpec("boxes", "float32", (BATCH, 5)),)


def decoder_outputs(settings: "SinglePoseSettings | MultiPoseSettings",
                    io: ModelIOSettings | None = None) -> tuple[OutputSpec, ...]:
    """The outputs a decoder with these settings adds, in graph output order; with ``io``,
    the built model's outputs (``model_outputs``: layout and boxes)."""
    if io is not None:
        return model_outputs(settings, io)
    if isinstance(settings, MultiPoseSettings):
        return multi_pose_outputs(settings.max_poses)
    return single_pose_outputs(settings.layout)


#: Every set of output names an onnxpose model can have (the runtime's check).
OUTPUT_NAME_SETS = tuple(frozenset(o.name for o in outputs) for outputs in (
    single_pose_outputs("movenet"), single_pose_outputs("onnxpose"), multi_pose_outputs()))
#: Every decoder output name.
OUTPUT_NAMES = frozenset().union(*OUTPUT_NAME_SETS) | {"boxes"}
#: Head names a build with keep-heads adds as outputs.
HEAD_NAMES = ("heatmaps", "short_offsets", "displacements")


def output_dtype(name: str) -> str:
    """The dtype of a decoder output or kept head."""
    return "int32" if name == "pose_count" else "float32"
