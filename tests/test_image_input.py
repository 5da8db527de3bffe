"""--input image: the photo as is in, keypoints and boxes in its pixels out (issue 11).

A few real builds of the shared uint8 TFLite (session fixtures); every photo variant is run
through a plain onnxruntime.InferenceSession and compared with PoseSession on the fixed-size
model (PIL resize in Python)."""

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from onnxpose.runtime.session import PoseSession
from onnxpose.spec import SinglePoseSettings


def _build(tmp_path_factory, source, name, **kw):
    from onnxpose.build import build_model
    out = tmp_path_factory.mktemp("image_input") / f"{name}.onnx"
    build_model(source, out, **kw)
    return out


@pytest.fixture(scope="session")
def fixed_multi(tmp_path_factory, quant_tflite):
    return _build(tmp_path_factory, quant_tflite, "fixed_multi", decoder="multi")


@pytest.fixture(scope="session")
def image_multi(tmp_path_factory, quant_tflite):
    return _build(tmp_path_factory, quant_tflite, "image_multi", decoder="multi", input_mode="image")


@pytest.fixture(scope="session")
def image_single(tmp_path_factory, quant_tflite):
    return _build(tmp_path_factory, quant_tflite, "image_single", input_mode="image")


@pytest.fixture(scope="session")
def image_movenet_multi(tmp_path_factory, quant_tflite):
    return _build(tmp_path_factory, quant_tflite, "image_movenet_multi", decoder="multi",
                  input_mode="image", single=SinglePoseSettings(layout="movenet"),
                  multi_overrides={"max_poses": 10})


@pytest.fixture(scope="session")
def letterbox_movenet(tmp_path_factory, quant_tflite):
    """MoveNet MultiPose's default of 6 rows, letterboxed."""
    return _build(tmp_path_factory, quant_tflite, "letterbox_movenet", decoder="multi",
                  input_mode="image", resize="letterbox", single=SinglePoseSettings(layout="movenet"))


def plain(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def photo(test_image):
    return np.asarray(Image.open(test_image).convert("RGB"))


def photo_variants(photo):
    """The photo, crops and rescalings from 64 to 4000 px a side, aspect 1:4 to 4:1."""
    pil = Image.fromarray(photo)
    return {"photo": photo,
            "wide crop 1:4": photo[300:600, 0:1200],
            "tall crop 4:1": photo[100:1278, 500:800],
            "people crop": photo[250:1100, 550:1300],
            "rescaled 4000": np.asarray(pil.resize((4000, 2663))),
            "rescaled 64": np.asarray(pil.resize((96, 64))),
            "panorama 4:1 stretch": np.asarray(pil.resize((2400, 600))),
            "portrait 1:4 stretch": np.asarray(pil.resize((400, 1600)))}


def test_image_model_equals_pose_session_on_fixed_model(image_multi, fixed_multi, photo):
    image_session, fixed = plain(image_multi), PoseSession(fixed_multi, providers="cpu")
    report = {}
    for name, variant in photo_variants(photo).items():
        variant = np.ascontiguousarray(variant)
        keypoints, scores, count, boxes = image_session.run(None, {"image": variant[None]})
        want = fixed.predict(variant)
        assert int(count[0]) == len(want.scores), name
        got = keypoints[0, :count[0]]
        close = np.abs(got[..., :2] - want.keypoints[..., :2]).max(-1) <= 0.5
        report[name] = close.mean() if close.size else 1.0
        assert report[name] >= 0.95, (name, report[name])
        np.testing.assert_allclose(scores[0, :count[0]], want.scores, atol=1e-2)
        np.testing.assert_allclose(got[..., 2], want.keypoints[..., 2], atol=1e-2)
    print(report)


def test_single_pose_image_model_equals_fixed(image_single, built_single, photo):
    image_session, fixed = plain(image_single), PoseSession(built_single, providers="cpu")
    for name, variant in photo_variants(photo).items():
        variant = np.ascontiguousarray(variant)
        keypoints, pose_score, boxes = image_session.run(None, {"image": variant[None]})
        want = fixed.predict(variant)
        close = np.abs(keypoints[0, :, :2] - want.keypoints[0, :, :2]).max(-1) <= 0.5
        assert close.mean() >= 0.95, name
        assert abs(pose_score[0] - want.scores[0]) <= 1e-2


def test_boxes_contain_counted_keypoints_and_empty_images_give_zero_rows(image_multi, photo):
    session = plain(image_multi)
    keypoints, scores, count, boxes = session.run(None, {"image": photo[None]})
    assert count[0] == 2
    for kps, box, score in zip(keypoints[0, :2], boxes[0, :2], scores[0, :2]):
        counted = kps[kps[:, 2] >= 0.2]
        assert len(counted) > 0
        assert np.all(counted[:, 0] >= box[0]) and np.all(counted[:, 0] <= box[2])
        assert np.all(counted[:, 1] >= box[1]) and np.all(counted[:, 1] <= box[3])
        assert box[4] == pytest.approx(score)
    np.testing.assert_array_equal(boxes[0, 2:], 0)
    empty = np.zeros((1, 300, 200, 3), np.uint8)
    _, _, count, boxes = session.run(None, {"image": empty})
    np.testing.assert_array_equal(boxes[0, count[0]:], 0)


def parse_movenet_multipose(output_0, height, width, min_score=0.0):
    """Parsing as written for MoveNet MultiPose (TF Hub): output_0 [1,6,56]; per person 17 x
    (y, x, score) normalized, then ymin, xmin, ymax, xmax normalized, then the score."""
    people = []
    for row in output_0[0]:
        if row[55] <= min_score:
            continue
        kps = row[:51].reshape(17, 3) * np.array([height, width, 1])
        ymin, xmin, ymax, xmax = row[51:55] * np.array([height, width, height, width])
        people.append({"keypoints": kps, "box": (ymin, xmin, ymax, xmax), "score": row[55]})
    return people


def test_movenet_multipose_layout(image_movenet_multi, image_multi, photo):
    (output_0,) = plain(image_movenet_multi).run(None, {"image": photo[None]})
    assert output_0.shape == (1, 10, 56) and output_0.dtype == np.float32
    keypoints, scores, count, boxes = plain(image_multi).run(None, {"image": photo[None]})
    people = parse_movenet_multipose(output_0, *photo.shape[:2])
    assert len(people) == count[0] == 2
    for person, kps, box, score in zip(people, keypoints[0], boxes[0], scores[0]):
        np.testing.assert_allclose(person["keypoints"], kps, atol=1e-2)
        np.testing.assert_allclose(person["box"], box[:4], atol=1e-2)
        assert person["score"] == pytest.approx(score, abs=1e-6)
    np.testing.assert_array_equal(output_0[0, 2:], 0)


def test_odd_inputs(image_multi):
    session = plain(image_multi)
    (image_input,) = session.get_inputs()
    assert image_input.name == "image" and image_input.type == "tensor(uint8)"
    assert image_input.shape[3] == 3                          # 1 or 4 channels: refused
    for channels in (1, 4):
        with pytest.raises(Exception, match="(?i)dimension|shape"):
            session.run(None, {"image": np.zeros((1, 20, 20, channels), np.uint8)})
    for shape in ((1, 0, 20, 3), (1, 20, 0, 3)):             # no pixels: a run error
        with pytest.raises(Exception, match="INVALID_ARGUMENT"):
            session.run(None, {"image": np.zeros(shape, np.uint8)})
    for shape in ((1, 1, 1, 3), (1, 8000, 50, 3)):
        outputs = session.run(None, {"image": np.full(shape, 128, np.uint8)})
        assert all(np.all(np.isfinite(o)) for o in outputs)
    pose = PoseSession(image_multi, providers="cpu")
    for hw in ((1, 1), (8000, 50)):
        result = pose.predict(np.full((*hw, 3), 128, np.uint8))
        assert result.image_size == hw and np.all(np.isfinite(result.keypoints))


def test_pose_session_runs_photo_as_is(image_multi, test_image):
    session = PoseSession(image_multi, providers="cpu")
    assert session.info.image_input and session.info.io["resize"] == "stretch"
    result = session.predict(test_image)
    assert len(result.scores) == 2 and result.boxes.shape == (2, 5)
    results = session.predict_batch([test_image, np.zeros((50, 70, 3), np.uint8)])
    assert results[1].image_size == (50, 70)


def test_letterbox_on_panorama_and_portrait(letterbox_movenet, image_multi, photo):
    """What stretch and letterbox find on a wide panorama and a tall portrait (printed)."""
    letterbox, stretch = plain(letterbox_movenet), plain(image_multi)
    (output_0,) = letterbox.run(None, {"image": photo[None]})
    assert output_0.shape == (1, 6, 56)
    assert len(parse_movenet_multipose(output_0, *photo.shape[:2], min_score=0.2)) == 2
    pil = Image.fromarray(photo)
    panorama = np.concatenate([photo, np.zeros_like(photo), photo[:, ::-1]], axis=1)
    portrait = np.concatenate([photo, photo[::-1]], axis=0)
    for name, image in (("panorama", panorama), ("portrait", portrait)):
        image = np.ascontiguousarray(image)
        (output_0,) = letterbox.run(None, {"image": image[None]})
        people = parse_movenet_multipose(output_0, *image.shape[:2], min_score=0.2)
        count = stretch.run(None, {"image": image[None]})[2][0]
        print(f"{name} {image.shape[1]}x{image.shape[0]}: letterbox {len(people)} poses "
              f"({[round(float(p['score']), 2) for p in people]}), stretch {count}")
        for person in people:  # keypoints land inside the photo, not in the padding
            counted = person["keypoints"][person["keypoints"][:, 2] >= 0.2]
            assert np.all(counted[:, 0] > -20) and np.all(counted[:, 0] < image.shape[0] + 20)
            assert np.all(counted[:, 1] > -20) and np.all(counted[:, 1] < image.shape[1] + 20)
    del pil


def test_input_size_picks_backbone_resolution(tmp_path_factory, quant_tflite, photo):
    path = _build(tmp_path_factory, quant_tflite, "image_257x353", decoder="multi",
                  input_mode="image", input_size=(257, 353))
    session = PoseSession(path, providers="cpu")
    assert (session.info.input_height, session.info.input_width) == (257, 353)
    result = session.predict(photo)
    assert len(result.scores) >= 1 and result.image_size == photo.shape[:2]


def test_predict_cli_on_image_model_lists_and_draws_boxes(image_multi, test_image, tmp_path,
                                                          capsys):
    import json
    from onnxpose.cli import main
    out = tmp_path / "overlay.png"
    assert main(["predict", str(image_multi), str(test_image), "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["poses"]) == 2 and set(printed["poses"][0]["box"]) == {
        "ymin", "xmin", "ymax", "xmax"}
    assert out.stat().st_size > 0


def test_predict_jsonl_boxes_are_in_the_photos_pixels(image_multi, test_image, photo, tmp_path,
                                                      capsys):
    """The JSONL record of an image-input model: each pose's box is the graph's box (already in
    the photo's pixels, not rescaled again) and holds the pose's counted keypoints."""
    import json
    from onnxpose.cli import main
    jsonl = tmp_path / "poses.jsonl"
    assert main(["predict", str(image_multi), str(test_image), "--jsonl", str(jsonl), "-q"]) == 0
    (record,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert record["image_size"] == {"height": photo.shape[0], "width": photo.shape[1]}
    _, _, count, boxes = plain(image_multi).run(None, {"image": photo[None]})
    assert len(record["poses"]) == int(count[0]) == 2
    for pose, box in zip(record["poses"], boxes[0]):
        np.testing.assert_allclose(pose["box"], box[:4], rtol=0, atol=1e-3)
        counted = [(k["y"], k["x"]) for k in pose["keypoints"] if k["score"] >= 0.2]
        assert counted and all(box[0] <= y <= box[2] and box[1] <= x <= box[3] for y, x in counted)
