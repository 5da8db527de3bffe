"""Images at runtime (PoseSession, `onnxpose predict`) and non-finite heads in the decoder.

Every image gives a result or a one-line error: odd modes are converted, EXIF orientation is
honoured (keypoints turn with the picture), broken or oversized files are refused. NaN/Inf or
all-zero heads give defined outputs (see onnxpose.decoder.single_pose).
"""

from __future__ import annotations

import functools
import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from onnxpose import PoseSession
from onnxpose.cli import main
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import SinglePoseSettings
from onnxpose.errors import OnnxPoseError
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.runtime.images import MAX_IMAGE_PIXELS, load_image
from onnxpose.testing import toy_models as tm


@pytest.fixture(scope="module")
def session(built_single):
    return PoseSession(built_single, providers=["cpu"])


@pytest.fixture(scope="module")
def upright(test_image):
    with Image.open(test_image) as im:
        return im.convert("RGB").resize((480, 320), Image.BILINEAR)


@pytest.fixture(scope="module")
def toy_session(tmp_path_factory):
    from onnxpose.build import build_model
    directory = tmp_path_factory.mktemp("toy")
    onnx.save(tm.toy_posenet_onnx(input_hw=(33, 33), head_dtype="uint8", input_dtype="uint8"),
              directory / "raw.onnx")
    build_model(directory / "raw.onnx", directory / "built.onnx")
    return PoseSession(directory / "built.onnx", providers=["cpu"])


def predict_cli(capsys, model, image):
    code = main(["predict", str(model), str(image), "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, model, image):
    code, _, err = predict_cli(capsys, model, image)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("onnxpose: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------ modes

def test_grayscale_and_16_bit_equal_the_gray_rgb_image(tmp_path, session, upright):
    gray = upright.convert("L")
    gray.save(tmp_path / "gray.png")
    sixteen = (np.asarray(gray).astype(np.uint16) * 257)
    Image.fromarray(sixteen).save(tmp_path / "gray16.png")
    with Image.open(tmp_path / "gray16.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    expected = session.predict(np.stack([np.asarray(gray)] * 3, axis=-1)).keypoints
    np.testing.assert_array_equal(session.predict(tmp_path / "gray.png").keypoints, expected)
    np.testing.assert_array_equal(session.predict(tmp_path / "gray16.png").keypoints, expected)


def test_rgba_and_palette_images(tmp_path, session, upright):
    rgba = upright.convert("RGBA")
    rgba.save(tmp_path / "rgba.png")
    expected = session.predict(upright).keypoints
    np.testing.assert_array_equal(session.predict(tmp_path / "rgba.png").keypoints, expected)
    half = np.asarray(rgba).copy()
    half[..., 3] = 128  # translucent: composited on black, still a result
    Image.fromarray(half, "RGBA").save(tmp_path / "translucent.png")
    upright.convert("P").save(tmp_path / "palette.gif")
    for name in ("translucent.png", "palette.gif"):
        result = session.predict(tmp_path / name)
        assert result.keypoints.shape == (1, 17, 3) and np.all(np.isfinite(result.keypoints))


def test_cmyk_jpeg(tmp_path, capsys, built_single, upright):
    upright.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
    code, out, err = predict_cli(capsys, built_single, tmp_path / "cmyk.jpg")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["image_size"] == {"height": 320, "width": 480} and len(payload["poses"]) == 1


@pytest.mark.parametrize("mode", ["1", "I", "F", "LA", "La", "RGBa", "YCbCr", "LAB", "HSV", "I;16B"])
def test_every_pil_mode_gives_a_result(session, upright, mode):
    try:
        image = upright.convert(mode)
    except ValueError:
        image = Image.new(mode, upright.size)
    result = session.predict(image)
    assert result.keypoints.shape == (1, 17, 3) and np.all(np.isfinite(result.keypoints))
    assert result.image_size == (320, 480)


# ------------------------------------------------------------------------------ EXIF

# stored pixels = upright.transpose(STORE[orientation]); viewers (and onnxpose) undo it
STORE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
         6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
UNDO = {2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1),
        8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", sorted(STORE))
def test_exif_orientation_is_honoured(tmp_path, capsys, session, built_single, upright, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    upright.transpose(STORE[orientation]).save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as stored:
        decoded = np.asarray(stored.convert("RGB"))  # the pixels as stored, sideways
        assert stored.getexif()[0x0112] == orientation
    by_hand = np.ascontiguousarray(UNDO[orientation](decoded))
    result = session.predict(path)
    assert result.image_size == (320, 480)  # upright size
    np.testing.assert_array_equal(result.keypoints, session.predict(by_hand).keypoints)
    # the keypoints turned with the picture: they match the upright original's
    original = session.predict(upright).keypoints[0]
    confident = (original[:, 2] > 0.5) & (result.keypoints[0, :, 2] > 0.5)
    assert confident.sum() >= 5
    distance = np.hypot(*(result.keypoints[0, confident, :2] - original[confident, :2]).T)
    assert np.median(distance) < 12, distance
    # the command line reads the file the same way (and does not rotate it twice)
    code, out, _ = predict_cli(capsys, built_single, path)
    assert code == 0
    payload = json.loads(out)
    assert payload["image_size"] == {"height": 320, "width": 480}
    nose = payload["poses"][0]["keypoints"][0]
    assert (nose["y"], nose["x"]) == pytest.approx(tuple(result.keypoints[0, 0, :2]), abs=1e-3)


def test_broken_exif_is_ignored(tmp_path, session, upright):
    path = tmp_path / "bad_exif.jpg"
    upright.save(path, quality=95, exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\xff\xff")
    result = session.predict(path)
    assert result.image_size == (320, 480)


# ------------------------------------------------------------------------------ sizes

def test_one_pixel_image(tmp_path, capsys, session, built_single):
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "dot.png")
    result = session.predict(tmp_path / "dot.png")
    assert result.image_size == (1, 1) and np.all(np.isfinite(result.keypoints))
    code, out, _ = predict_cli(capsys, built_single, tmp_path / "dot.png")
    assert code == 0 and json.loads(out)["image_size"] == {"height": 1, "width": 1}


def test_large_image_is_accepted(tmp_path, session):
    big = Image.new("RGB", (4000, 3000), (90, 120, 150))
    result = session.predict(big)
    assert result.image_size == (3000, 4000) and np.all(np.isfinite(result.keypoints))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height (grayscale) and holds one tiny, incomplete IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [12_000, 30_000])  # 144 MP (> our limit), 900 MP (> Pillow's)
def test_decompression_bomb_is_refused_before_decoding(tmp_path, capsys, built_single, side):
    assert side * side > MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    line = one_line_error(capsys, built_single, path)
    assert "bomb.png" in line and "too large" in line
    with pytest.raises(OnnxPoseError, match="too large"):
        load_image(path)
    # a real process: exactly one stderr line (no DecompressionBombWarning printed before it)
    proc = subprocess.run([sys.executable, "-m", "onnxpose", "predict", str(built_single), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [line], proc.stderr


# ------------------------------------------------------------------------------ broken files

@pytest.fixture(scope="module")
def jpeg_bytes(upright):
    buffer = io.BytesIO()
    upright.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("name, make, reason", [
    ("empty.jpg", lambda jpeg: b"", "image file is empty"),
    ("half.jpg", lambda jpeg: jpeg[: len(jpeg) // 2], "cannot read image"),
    ("head.jpg", lambda jpeg: jpeg[:200], "cannot read image"),
    ("notes.png", lambda jpeg: b"these are not pixels\n" * 20, "not an image"),
    ("header.png", lambda jpeg: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ("cut.png", lambda jpeg: png_header_only(64, 64)[:-12], "cannot read image"),
])
def test_broken_image_files(tmp_path, capsys, built_single, session, jpeg_bytes, name, make, reason):
    path = tmp_path / name
    path.write_bytes(make(jpeg_bytes))
    line = one_line_error(capsys, built_single, path)
    assert name in line and reason in line
    with pytest.raises(OnnxPoseError):
        session.predict(path)


def test_directory_and_missing_file(tmp_path, capsys, built_single):
    # a directory is a folder input now (predict over many inputs): --json is for one image
    assert "use --jsonl FILE for many inputs" in one_line_error(capsys, built_single, tmp_path)
    assert "no such image file" in one_line_error(capsys, built_single, tmp_path / "nope.jpg")


def test_bad_arrays_and_objects(session):
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4), np.uint8),
                np.zeros((4, 4, 3), np.float32), 42):
        with pytest.raises(OnnxPoseError):
            session.predict(bad)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["JPEG", "PNG"]),
       edits=st.lists(st.tuples(st.sampled_from(tm.BYTE_MUTATIONS), st.integers(0, 2**20),
                                st.integers(0, 2**32 - 1), st.sampled_from((1, 4, 16))),
                      min_size=1, max_size=3))
def test_mutated_image_files(tmp_path_factory, toy_session, fmt, edits):
    rng = np.random.default_rng(len(edits))
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    data = buffer.getvalue()
    for op, position, value, length in edits:
        data = tm.mutate_bytes(data, op, position, value, length)
    path = tmp_path_factory.mktemp("img") / f"mutated.{fmt.lower()}"
    path.write_bytes(data)
    try:
        result = toy_session.predict(path)
    except OnnxPoseError as exc:
        assert "\n" not in str(exc) and exc.path == str(path)
    else:
        assert np.all(np.isfinite(result.keypoints))


# ------------------------------------------------------------------------------ non-finite heads

@functools.lru_cache(maxsize=None)
def decoder(coordinates, layout="onnxpose"):
    model = decoder_only_model((9, 9), 32, SinglePoseSettings(coordinates, layout))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def decode(coordinates, heatmaps, offsets, layout="onnxpose"):
    return decoder(coordinates, layout).run(None, {"heatmaps": heatmaps, "short_offsets": offsets})


def test_all_nan_heads():
    heatmaps = np.full((2, 9, 9, 17), np.nan, np.float32)
    offsets = np.full((2, 9, 9, 34), np.nan, np.float32)
    keypoints, pose_score = decode("stride", heatmaps, offsets)
    np.testing.assert_array_equal(keypoints, np.zeros((2, 17, 3), np.float32))  # cell 0, score 0
    np.testing.assert_array_equal(pose_score, [0, 0])
    keypoints, pose_score = decode("grid", heatmaps, offsets)
    np.testing.assert_array_equal(keypoints[..., :2], 0)
    assert np.all(keypoints[..., 2] == -np.inf) and np.all(pose_score == -np.inf)
    (output,) = decode("stride", heatmaps, offsets, layout="movenet")
    np.testing.assert_array_equal(output, np.zeros((2, 1, 17, 3), np.float32))


def test_all_zero_heads():
    zeros_h, zeros_o = np.zeros((1, 9, 9, 17), np.float32), np.zeros((1, 9, 9, 34), np.float32)
    keypoints, pose_score = decode("stride", zeros_h, zeros_o)
    np.testing.assert_array_equal(keypoints[..., :2], 0)  # first cell wins every tie
    np.testing.assert_array_equal(keypoints[..., 2], 0.5)
    assert pose_score[0] == 0.5


def test_nan_cell_never_beats_a_number():
    heatmaps = np.full((1, 9, 9, 17), np.nan, np.float32)
    heatmaps[0, 4, 6, :] = -50.0  # the only number, and a very low one
    offsets = np.zeros((1, 9, 9, 34), np.float32)
    offsets[0, 4, 6, :17], offsets[0, 4, 6, 17:] = np.inf, np.nan  # non-finite offsets: 0
    keypoints, _ = decode("stride", heatmaps, offsets)
    np.testing.assert_array_equal(keypoints[0, :, 0], 4 * 32.0)
    np.testing.assert_array_equal(keypoints[0, :, 1], 6 * 32.0)
    assert np.all(keypoints[0, :, 2] >= 0) and np.all(np.isfinite(keypoints))


special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30])


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2**31), fraction=st.sampled_from([0.01, 0.2, 0.9, 1.0]),
       value=special, offset_value=special, coordinates=st.sampled_from(["stride", "grid"]))
def test_non_finite_heads_match_the_reference(seed, fraction, value, offset_value, coordinates):
    rng = np.random.default_rng(seed)
    heatmaps = rng.normal(0, 3, (2, 9, 9, 17)).astype(np.float32)
    offsets = rng.normal(0, 10, (2, 9, 9, 34)).astype(np.float32)
    heatmaps[rng.random(heatmaps.shape) < fraction] = value
    offsets[rng.random(offsets.shape) < fraction] = offset_value
    keypoints, pose_score = decode(coordinates, heatmaps, offsets)
    expected, expected_score = decode_single_pose(heatmaps, offsets, 32, (257, 257), coordinates)
    assert np.all(np.isfinite(keypoints[..., :2]))  # y and x always finite
    assert not np.any(np.isnan(keypoints))
    np.testing.assert_allclose(keypoints[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(keypoints[..., 2], expected[..., 2], atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(pose_score, expected_score, atol=1e-5, rtol=1e-6)
    if coordinates == "stride":
        assert np.all((keypoints[..., 2] >= 0) & (keypoints[..., 2] <= 1))


def test_nan_input_through_a_built_model(tmp_path):
    from onnxpose.build import build_model
    onnx.save(tm.toy_posenet_onnx(input_hw=(33, 33)), tmp_path / "raw.onnx")
    build_model(tmp_path / "raw.onnx", tmp_path / "built.onnx", keep_heads=True)
    session = PoseSession(tmp_path / "built.onnx", providers=["cpu"])
    image = np.zeros((2, 33, 33, 3), np.float32)
    image[0] = np.nan
    image[1, :10] = np.inf
    outputs = session.run(image)
    assert np.isnan(outputs["heatmaps"][0]).all()  # the model's own heads are broken ...
    assert not np.isnan(outputs["keypoints"]).any()  # ... the decoded keypoints are not
    np.testing.assert_array_equal(outputs["keypoints"][0], np.zeros((17, 3), np.float32))
