"""The real uint8 PoseNet from ../shared, built and run end to end."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxpose.build import build_model
from onnxpose.spec import SinglePoseSettings
from onnxpose.keypoints import KEYPOINT_NAMES
from onnxpose.reference.single_pose import decode_single_pose


def run(path, image):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    values = session.run(None, {session.get_inputs()[0].name: image})
    return dict(zip([o.name for o in session.get_outputs()], values))


def test_keypoints_equal_numpy_reference_on_the_real_image(built_single, reference):
    out = run(built_single, reference["image"])
    keypoints, pose_score = decode_single_pose(out["heatmaps"], out["short_offsets"], 16, (353, 481))
    assert out["keypoints"].shape == (1, 17, 3)
    np.testing.assert_allclose(out["keypoints"][..., :2], keypoints[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out["keypoints"][..., 2], keypoints[..., 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["pose_score"], pose_score, atol=1e-5, rtol=0)


@pytest.mark.parametrize("head, key", [("heatmaps", "heatmaps"), ("short_offsets", "short_offsets"),
                                       ("displacements", "mid_offsets")])
def test_raw_heads_match_tflite_within_one_quantization_step(built_single, reference, head, key):
    out = run(built_single, reference["image"])
    step = float(reference[f"{key}_scale"])
    assert out[head].shape == reference[key].shape
    assert np.max(np.abs(out[head] - reference[key])) <= step + 1e-6


def test_batch_is_dynamic_and_images_are_independent(built_single, reference):
    image = reference["image"]
    batch = np.concatenate([image, image[:, ::-1].copy(), np.zeros_like(image)])
    out = run(built_single, batch)
    assert out["keypoints"].shape == (3, 17, 3)
    single = run(built_single, image)
    np.testing.assert_array_equal(out["keypoints"][0], single["keypoints"][0])


def test_metadata_describes_the_model(built_single):
    model = onnx.load(str(built_single))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["onnxpose.keypoint_names"] == list(KEYPOINT_NAMES)
    assert len(meta["onnxpose.skeleton"]) == 16
    assert meta["onnxpose.output_stride"] == 16
    assert meta["onnxpose.input"] == {"name": "sub_2", "layout": "NHWC", "height": 353, "width": 481,
                                      "dtype": "uint8", "normalization": "none", "color": "RGB",
                                      "resize": "stretch, bilinear"}
    assert meta["onnxpose.decoder"] == {"type": "single", "coordinates": "stride", "layout": "onnxpose"}
    assert meta["onnxpose.version"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


@pytest.mark.parametrize("coordinates, layout", [("grid", "onnxpose"), ("stride", "movenet")])
def test_output_modes_on_the_real_image(tmp_path, quant_tflite, reference, built_single,
                                        coordinates, layout):
    out_path = tmp_path / "model.onnx"
    build_model(quant_tflite, out_path, single=SinglePoseSettings(coordinates, layout))
    heads = run(built_single, reference["image"])
    expected, _ = decode_single_pose(heads["heatmaps"], heads["short_offsets"], 16, (353, 481),
                                     coordinates)
    out = run(out_path, reference["image"])
    if layout == "movenet":
        assert list(out) == ["output_0"] and out["output_0"].shape == (1, 1, 17, 3)
        got = out["output_0"][:, 0] * np.array([353, 481, 1], np.float32)
    else:
        got = out["keypoints"]
    np.testing.assert_allclose(got[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(got[..., 2], expected[..., 2], atol=1e-5, rtol=0)
