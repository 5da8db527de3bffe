"""Compare a model's decoded outputs with the numpy reference decoders."""

from __future__ import annotations

import numpy as np

from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.spec import decoder_outputs

POSITION_TOLERANCE_PX = 1e-3
SCORE_TOLERANCE = 1e-5


class ReferenceMismatch(Exception):
    pass


def reference_outputs(heads: dict, info) -> dict[str, np.ndarray]:
    """What the model should output for these raw heads, by the numpy reference, named as
    the spec names the decoder's outputs."""
    settings = info.settings()
    names = [spec.name for spec in decoder_outputs(settings)]
    input_hw = (info.input_height, info.input_width)
    if not info.multi_pose:
        keypoints, pose_score = decode_single_pose(heads["heatmaps"], heads["short_offsets"],
                                                   info.output_stride, input_hw,
                                                   settings.coordinates)
        if settings.layout == "movenet":
            scaled = keypoints / np.array([input_hw[0], input_hw[1], 1], np.float32)
            return dict(zip(names, [scaled[:, None]]))
        return dict(zip(names, [keypoints, pose_score]))
    from onnxpose.reference.multi_pose import decode_multiple_poses
    return dict(zip(names, decode_multiple_poses(
        heads["heatmaps"], heads["short_offsets"], heads["displacements"], info.output_stride,
        settings)))


def compare_with_reference(outputs: dict, heads: dict, info) -> tuple[float, float, int]:
    """Max position error (px), max score error, poses compared; raises ReferenceMismatch."""
    expected = reference_outputs(heads, info)
    if "pose_count" in expected and not np.array_equal(outputs["pose_count"], expected["pose_count"]):
        raise ReferenceMismatch("pose count "
                            f"{outputs['pose_count'].tolist()} differs from the numpy reference "
                            f"{expected['pose_count'].tolist()}")
    name = next(iter(expected))  # the keypoints: the first output of every decoder
    got, want = outputs[name], expected[name]
    scale = np.ones(3, np.float32)
    if len(expected) == 1:  # movenet layout: y and x divided by the input size
        scale[:2] = [info.input_height, info.input_width]
    error_px = float(np.max(np.abs((got - want) * scale)[..., :2], initial=0.0))
    error_score = float(np.max(np.abs(got - want)[..., 2], initial=0.0))
    if error_px > POSITION_TOLERANCE_PX or error_score > SCORE_TOLERANCE or not np.isfinite(error_px):
        raise ReferenceMismatch(f"decoded {name} differ from the numpy reference "
                            f"by {error_px:.3g} px / {error_score:.3g} in score")
    return error_px, error_score, int(np.prod(got.shape[:-2]))
