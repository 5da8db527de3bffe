"""Coral's decoder model (PosenetDecoderOp inside) built by onnxpose and run without Coral's library."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from onnxpose import PoseSession
from onnxpose.build import build_model
from onnxpose.cli import main
from onnxpose.spec import MultiPoseSettings


@pytest.fixture(scope="module")
def coral_model(tmp_path_factory, decoder_tflite):
    out = tmp_path_factory.mktemp("coral") / "coral.onnx"
    result = build_model(decoder_tflite, out, keep_heads=True)
    return out, result


def run(path, image):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    values = session.run(None, {session.get_inputs()[0].name: image})
    return dict(zip([o.name for o in session.get_outputs()], values))


def test_decoder_op_is_detected_and_its_options_used(coral_model):
    _, result = coral_model
    assert result.coral_decoder_op["max_detections"] == 10
    assert result.decoder["type"] == "multi"
    settings = result.decoder["settings"]
    assert settings["preset"] == "coral" and settings["max_poses"] == 10
    assert settings["tie_order"] == "heap"  # Coral's own root order
    assert settings["coral_release"] == "frogfish"  # the walk of Coral's shipped decoder
    assert settings["score_threshold"] == pytest.approx(0.2)
    assert settings["nms_radius"] == pytest.approx(10.0)
    assert result.heads.output_stride == 16


def test_heads_equal_what_coral_decoder_received(coral_model, reference):
    out = run(coral_model[0], reference["image"])
    for head, key in [("heatmaps", "decoder_in_heatmaps"), ("short_offsets", "decoder_in_short_offsets"),
                      ("displacements", "decoder_in_mid_offsets")]:
        np.testing.assert_allclose(out[head], reference[key], atol=1e-4, rtol=0)


def test_end_to_end_matches_coral(coral_model, reference):
    out = run(coral_model[0], reference["image"])
    count = int(reference["pose_count"][0])
    assert out["pose_count"].tolist() == [count]
    np.testing.assert_allclose(out["pose_scores"], reference["pose_scores"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out["keypoints"][..., 2], reference["keypoint_scores"], atol=1e-3, rtol=0)
    # per keypoint: max(|dy|, |dx|) against Coral's decoded poses; a model with Coral's op is
    # built with Coral's heap tie order, so all 34 keypoints are Coral's
    errors = np.abs(out["keypoints"][0, :count, :, :2] - reference["poses"][0, :count]).max(axis=-1)
    assert errors.max() <= 0.01
    assert not out["keypoints"][0, count:].any() and not out["pose_scores"][0, count:].any()


def test_end_to_end_matches_corals_shipped_op_on_a_left_eye_pose(coral_model):
    """Coral's own output (its shipped, Frogfish op) for a face crop whose one pose is rooted
    at leftEye: the walk crosses leftEye -> nose, the edge Frogfish reads at channels 16/32."""
    from conftest import SHARED
    with np.load(SHARED / "reference" / "face_couple_353x481.npz") as data:
        face = {k: data[k] for k in data.files}
    out = run(coral_model[0], face["image"])
    for head, key in [("heatmaps", "decoder_in_heatmaps"),
                      ("short_offsets", "decoder_in_short_offsets"),
                      ("displacements", "decoder_in_mid_offsets")]:
        np.testing.assert_allclose(out[head], face[key], atol=1e-4, rtol=0)
    count = int(face["pose_count"][0])
    assert out["pose_count"].tolist() == [count] == [1]
    np.testing.assert_allclose(out["pose_scores"], face["pose_scores"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out["keypoints"][..., 2], face["keypoint_scores"], atol=1e-3, rtol=0)
    errors = np.abs(out["keypoints"][0, :count, :, :2] - face["poses"][0, :count]).max(axis=-1)
    assert errors.max() <= 0.01


def test_scan_tie_order_keeps_the_op_options(tmp_path, decoder_tflite, reference):
    """--tie-order scan: the op's options stay; 32 of the 34 keypoints are Coral's, the two
    others move (0.32 and 1.55 px) because seven candidates tie on the top logit and scan
    order grows the second person from another of them."""
    out = tmp_path / "scan.onnx"
    result = build_model(decoder_tflite, out, multi_overrides={"tie_order": "scan"})
    settings = result.decoder["settings"]
    assert settings["tie_order"] == "scan" and settings["max_poses"] == 10
    assert settings["score_threshold"] == pytest.approx(0.2)
    got = run(out, reference["image"])
    count = int(reference["pose_count"][0])
    assert got["pose_count"].tolist() == [count]
    errors = np.abs(got["keypoints"][0, :count, :, :2] - reference["poses"][0, :count]).max(axis=-1)
    assert (errors <= 0.01).sum() == 32 and errors.max() <= 2.0


def test_batch_equals_one_by_one(coral_model, reference):
    image = reference["image"]
    mirrored = image[:, :, ::-1].copy()
    batch = run(coral_model[0], np.concatenate([image, mirrored, np.full_like(image, 128)]))
    for index, single in enumerate([image, mirrored, np.full_like(image, 128)]):
        alone = run(coral_model[0], single)
        for name in ("keypoints", "pose_scores", "pose_count"):
            np.testing.assert_allclose(batch[name][index], alone[name][0], atol=1e-4, rtol=0)
    assert batch["pose_count"][2] == 0  # a plain grey image holds nobody


def test_flags_override_the_op_options(tmp_path, decoder_tflite, reference):
    out = tmp_path / "one.onnx"
    build_model(decoder_tflite, out, multi=MultiPoseSettings.for_preset("coral", max_poses=1))
    result = run(out, reference["image"])
    assert result["keypoints"].shape == (1, 1, 17, 3) and result["pose_count"].tolist() == [1]


def test_session_and_predict_draw_every_pose(tmp_path, capsys, coral_model, test_image):
    session = PoseSession(coral_model[0])
    assert session.multi_pose
    result = session.predict(test_image)
    assert len(result.poses) == 2 and result.scores[0] >= result.scores[1]
    overlay = tmp_path / "poses.png"
    assert main(["predict", str(coral_model[0]), str(test_image), "--json", "--out", str(overlay)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["poses"]) == 2
    with Image.open(overlay) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    from onnxpose.runtime.draw import POSE_COLOURS
    for colour in POSE_COLOURS[:2]:  # both poses drawn, each in its own colour
        assert (pixels == np.array(colour)).all(axis=1).sum() > 50
