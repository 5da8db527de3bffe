"""Compare a model's decoded outputs with the numpy reference decoders."""

from __future__ import annotations

import numpy as np

from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.single_pose import decode_single_pose

POSITION_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-5


class ReferenceMismatch(Exception):
    pass


def reference_outputs(heads: dict, info) -> dict[str, np.ndarray]:
    """What the model should output for these raw heads, by the numpy reference."""
    decoder = info.decoder
    input_hw = (info.input_height, info.input_width)
    if decoder["type"] == "single":
        keypoints, pose_score = decode_single_pose(heads["heatmaps"], heads["short_offsets"],
                                                   info.output_stride, input_hw,
                                                   decoder["coordinates"])
        if decoder["layout"] == "movenet":
            scaled = keypoints / np.array([input_hw[0], input_hw[1], 1], np.float32)
            return {"output_0": scaled[:, None]}
        return {"keypoints": keypoints, "pose_score": pose_score}
    from onnxpose.reference.multi_pose import decode_multiple_poses
    settings = MultiPoseSettings(**decoder["settings"])
    keypoints, pose_scores, pose_count = decode_multiple_poses(
        heads["heatmaps"], heads["short_offsets"], heads["displacements"], info.output_stride,
        settings)
    return {"keypoints": keypoints, "pose_scores": pose_scores, "pose_count": pose_count}


def compare_with_reference(outputs: dict, heads: dict, info) -> tuple[float, float, int]:
    """Max position error (px), max score error, poses compared; raises ReferenceMismatch."""
    expected = reference_outputs(heads, info)
    if "pose_count" in expected and not np.array_equal(outputs["pose_count"], expected["pose_count"]):
        raise ReferenceMismatch("pose count "
                            f"{outputs['pose_count'].tolist()} differs from the numpy reference "
                            f"{expected['pose_count'].tolist()}")
    name = "output_0" if "output_0" in expected else "keypoints"
    got, want = outputs[name], expected[name]
    scale = np.ones(3, np.float32)
    if name == "output_0":
        scale[:2] = [info.input_height, info.input_width]
    error_px = float(np.max(np.abs((got - want) * scale)[..., :2], initial=0.0))
    error_score = float(np.max(np.abs(got - want)[..., 2], initial=0.0))
    if error_px > POSITION_TOLERANCE_PX or error_score > SCORE_TOLERANCE or not np.isfinite(error_px):
        raise ReferenceMismatch(f"decoded {name} differ from the numpy reference "
                            f"by {error_px:.3g} px / {error_score:.3g} in score")
    return error_px, error_score, int(np.prod(got.shape[:-2]))
