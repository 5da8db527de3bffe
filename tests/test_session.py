"""PoseSession and `onnxpose predict` on the real image."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from onnxpose import PoseSession
from onnxpose.cli import main
from onnxpose.errors import OnnxPoseError
from onnxpose.reference.single_pose import decode_single_pose


@pytest.fixture(scope="module")
def session(built_single):
    return PoseSession(built_single, providers=["cpu"])


def test_preprocessing_reproduces_the_reference_input(session, test_image, reference):
    tensor, sizes = session.preprocess([test_image])
    np.testing.assert_array_equal(tensor, reference["image"])
    with Image.open(test_image) as im:
        assert sizes == [(im.height, im.width)]


def test_keypoints_are_mapped_to_the_original_image(session, test_image, reference):
    result = session.predict(test_image)
    raw = ort.InferenceSession(str(session.model_path), providers=["CPUExecutionProvider"])
    heads = dict(zip([o.name for o in raw.get_outputs()], raw.run(None, {"sub_2": reference["image"]})))
    expected, score = decode_single_pose(heads["heatmaps"], heads["short_offsets"], 16, (353, 481))
    height, width = result.image_size
    expected[0, :, 0] *= height / 353
    expected[0, :, 1] *= width / 481
    assert result.keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(result.keypoints[0], expected[0], atol=2e-3, rtol=1e-5)
    pose = result.poses[0]
    assert pose["nose"].x == pytest.approx(expected[0, 0, 1], abs=2e-3)
    assert pose.score == pytest.approx(float(score[0]), abs=1e-5)


def test_plain_inference_session_stays_reachable(session):
    assert isinstance(session.session, ort.InferenceSession)
    assert session.providers == ["CPUExecutionProvider"]


def test_unavailable_provider_is_an_error(built_single):
    from onnxpose.runtime.providers import provider_loads
    if provider_loads("TensorrtExecutionProvider"):
        pytest.skip("TensorRT loads here")
    with pytest.raises(OnnxPoseError, match="TensorrtExecutionProvider is not usable"):
        PoseSession(built_single, providers=["tensorrt", "cpu"])


def test_model_without_metadata_is_refused(tmp_path):
    from onnxpose.testing.toy_models import toy_posenet_onnx
    import onnx
    onnx.save(toy_posenet_onnx(), tmp_path / "raw.onnx")
    with pytest.raises(OnnxPoseError, match="not an onnxpose model"):
        PoseSession(tmp_path / "raw.onnx")


def test_predict_cli_json_and_overlay(tmp_path, capsys, built_single, test_image):
    overlay = tmp_path / "overlay.png"
    assert main(["predict", str(built_single), str(test_image), "--json", "--out", str(overlay)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["providers"] == ["CPUExecutionProvider"]
    assert len(payload["poses"]) == 1 and len(payload["poses"][0]["keypoints"]) == 17
    with Image.open(overlay) as im, Image.open(test_image) as original:
        assert im.format == "PNG" and im.size == original.size
        # the drawing changed pixels around the nose
        nose = payload["poses"][0]["keypoints"][0]
        x, y = int(nose["x"]), int(nose["y"])
        drawn = np.asarray(im.convert("RGB"))[y - 3:y + 4, x - 3:x + 4].astype(int)
        plain = np.asarray(original.convert("RGB"))[y - 3:y + 4, x - 3:x + 4].astype(int)
        assert np.abs(drawn - plain).sum() > 0


def test_provider_probe_model_loads_in_this_onnxruntime():
    """The probe behind provider_loads must load everywhere; were it refused (e.g. an IR
    version newer than onnxruntime knows), every GPU provider would count as unusable."""
    import onnxruntime as ort
    from onnxpose.runtime.providers import _tiny_model
    session = ort.InferenceSession(_tiny_model(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([-2.0], np.float32)})
    assert y.tolist() == [0.0]
