"""Float PoseNet in every form (SavedModel, float TFLite, TF.js) at 257x257, output stride 32.

Models are made by onnxpose.testing.posenet_models (cached under .cache/): random weights for
the three output modes, and Coral's real weights rebuilt in Keras for the real-image check.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from onnxpose import PoseSession
from onnxpose.build import build_model
from onnxpose.spec import SinglePoseSettings
from onnxpose.keypoints import KEYPOINT_NAMES
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.reference.single_pose_loop import decode_single_pose_loop
from onnxpose.testing.posenet_models import ensure_model

SIZE = (257, 257)
MODES = [("stride", "onnxpose"), ("grid", "onnxpose"), ("stride", "movenet")]


def raw_run(path, tensor):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    values = session.run(None, {session.get_inputs()[0].name: tensor})
    return dict(zip([o.name for o in session.get_outputs()], values))


def photo_tensor(session, image):
    tensor, _ = session.preprocess([image])
    return tensor


@pytest.fixture(scope="module")
def random_savedmodel():
    return ensure_model("savedmodel", SIZE, 32, "random", seed=5)


@pytest.mark.parametrize("coordinates, layout", MODES)
def test_random_savedmodel_all_output_modes(tmp_path, random_savedmodel, test_image,
                                            coordinates, layout):
    out = tmp_path / "model.onnx"
    result = build_model(random_savedmodel, out, keep_heads=True,
                         single=SinglePoseSettings(coordinates, layout))
    assert result.source_format == "savedmodel"
    assert result.heads.output_stride == 32 and result.heads.grid == (9, 9)
    tensor = photo_tensor(PoseSession(out), test_image)
    got = raw_run(out, np.concatenate([tensor, -tensor]))  # batch 2
    assert got["heatmaps"].shape == (2, 9, 9, 17) and got["short_offsets"].shape == (2, 9, 9, 34)
    expected, _ = decode_single_pose(got["heatmaps"], got["short_offsets"], 32, SIZE, coordinates)
    keypoints = got["keypoints"] if layout == "onnxpose" else \
        got["output_0"][:, 0] * np.array([257, 257, 1], np.float32)
    np.testing.assert_allclose(keypoints[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(keypoints[..., 2], expected[..., 2], atol=1e-5, rtol=0)


@pytest.fixture(scope="module", params=["savedmodel", "tflite", "tfjs"])
def real_form(request):
    return request.param, ensure_model(request.param, SIZE, 32, "real")


@pytest.fixture(scope="module")
def built_real_forms(real_form, tmp_path_factory):
    form, source = real_form
    directory = tmp_path_factory.mktemp(f"real_{form}")
    stride_model = directory / "stride.onnx"
    grid_model = directory / "grid.onnx"
    result = build_model(source, stride_model, keep_heads=True)
    build_model(source, grid_model, keep_heads=True, single=SinglePoseSettings("grid"))
    return form, result, stride_model, grid_model


def test_real_weights_heads_and_stride(built_real_forms):
    form, result, _, _ = built_real_forms
    assert result.source_format == form
    assert result.heads.grid == (9, 9) and result.heads.output_stride == 32
    assert result.heads.input.height == 257 and result.heads.input.width == 257


def test_real_weights_decode_like_the_references(built_real_forms, test_image):
    _, _, stride_model, grid_model = built_real_forms
    tensor = photo_tensor(PoseSession(stride_model), test_image)
    out = raw_run(stride_model, tensor)
    assert out["heatmaps"].shape == (1, 9, 9, 17) and out["short_offsets"].shape == (1, 9, 9, 34)
    expected, _ = decode_single_pose(out["heatmaps"], out["short_offsets"], 32, SIZE)
    np.testing.assert_allclose(out["keypoints"][..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out["keypoints"][..., 2], expected[..., 2], atol=1e-5, rtol=0)

    grid = raw_run(grid_model, tensor)
    looped = np.array(decode_single_pose_loop(grid["heatmaps"][0], grid["short_offsets"][0], 32,
                                              SIZE, coordinates="grid"), np.float32)
    np.testing.assert_allclose(grid["keypoints"][0, :, :2], looped[:, :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(grid["keypoints"][0, :, 2], looped[:, 2], atol=1e-5, rtol=0)


def test_real_weights_find_a_real_person(built_real_forms, test_image, reference):
    """Confident keypoints lie within 24 px of the same keypoint of one of Coral's poses."""
    _, _, stride_model, _ = built_real_forms
    session = PoseSession(stride_model)
    keypoints = session.run(photo_tensor(session, test_image))["keypoints"][0]
    count = int(reference["pose_count"][0])
    coral = reference["poses"][0, :count] * np.array([257 / 353, 257 / 481], np.float32)
    confident = np.flatnonzero(keypoints[:, 2] > 0.5)
    assert len(confident) >= 8, "the real model should be confident about most keypoints"
    for k in confident:
        distance = np.min(np.linalg.norm(coral[:, k] - keypoints[k, :2], axis=1))
        assert distance <= 24, f"{KEYPOINT_NAMES[k]} is {distance:.1f} px from any Coral pose"


def test_readme_try_it_model_finds_both_people_at_stride_16(tmp_path, test_image, reference):
    """The README's "try it" float model: Coral's weights at their trained stride 16 and size
    353x481 find both people of the photo, each pose close to one of Coral's; at 257x257
    stride 32 the same weights find fewer (the README says why)."""
    source = ensure_model("tflite", (353, 481), 16, "real")
    build_model(source, tmp_path / "float16.onnx", decoder="multi")
    result = PoseSession(tmp_path / "float16.onnx").predict(test_image)
    assert len(result.scores) == 2 and min(result.scores) > 0.5
    coral = reference["poses"][0, :int(reference["pose_count"][0])]
    scale = np.array([1278 / 353, 1920 / 481], np.float32)   # Coral's poses are in 353x481 px
    for pose in result.keypoints:
        confident = pose[:, 2] > 0.5
        error = np.min([np.median(np.linalg.norm(pose[confident, :2] - c[confident] * scale, axis=1))
                        for c in coral])
        assert error < 30, f"a pose lies {error:.0f} px (median) from both of Coral's poses"
    build_model(ensure_model("tflite", SIZE, 32, "real"), tmp_path / "float32.onnx",
                decoder="multi")
    assert len(PoseSession(tmp_path / "float32.onnx").predict(test_image).scores) < 2
