"""Models that are almost PoseNet: detected correctly (and their decoding checked against an
independent dequantize + numpy decode of the raw model's own heads) or refused with the reason."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxpose import PoseSession
from onnxpose.build import build_model
from onnxpose.cli import main
from onnxpose.errors import OnnxPoseError
from onnxpose.heads import HeadOverrides
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.testing.toy_models import toy_posenet_onnx

SCALE = 0.05
ZERO_POINT = {"uint8": 128, "int8": -3}


def save(tmp_path, name, **toy):
    path = tmp_path / f"{name}.onnx"
    onnx.save(toy_posenet_onnx(**toy), path)
    return path


def independent_keypoints(raw_path, image, heatmaps="heatmaps", offsets="offsets",
                          layout="NHWC", head_dtype="float32", stride=16, input_hw=(65, 65)):
    """Run the raw model, dequantize / transpose its heads by hand, decode with numpy."""
    session = ort.InferenceSession(str(raw_path), providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in session.get_outputs()],
                      session.run(None, {session.get_inputs()[0].name: image})))
    heads = []
    for name in (heatmaps, offsets):
        value = values[name]
        if head_dtype in ZERO_POINT:
            value = (value.astype(np.float32) - ZERO_POINT[head_dtype]) * np.float32(SCALE)
        value = value.astype(np.float32)
        if layout == "NCHW":
            value = value.transpose(0, 2, 3, 1)
        heads.append(value)
    return decode_single_pose(heads[0], heads[1], stride, input_hw)[0]


def built_keypoints(built_path, image):
    session = ort.InferenceSession(str(built_path), providers=["CPUExecutionProvider"])
    return session.run(["keypoints"], {session.get_inputs()[0].name: image})[0]


def random_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=shape)
    return pixels.astype(np.uint8) if dtype == "uint8" else (pixels / 127.5 - 1).astype(np.float32)


def refused(tmp_path, capsys, source, *extra):
    output = tmp_path / "out.onnx"
    code = main(["build", str(source), "-o", str(output), "-q", *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("onnxpose: error: "), err
    assert "Traceback" not in err and not output.exists()
    return lines[0]


# ------------------------------------------------------------------------------ detected

@pytest.mark.parametrize("layout, head_dtype, input_dtype", [
    ("NHWC", "int8", "float32"),   # int8, not uint8: signed zero point
    ("NHWC", "uint8", "uint8"),
    ("NCHW", "float32", "float32"),
    ("NCHW", "uint8", "float32"),
    ("NCHW", "int8", "uint8"),
    ("NHWC", "float16", "float32"),
])
def test_layouts_and_quantizations_decode_like_an_independent_dequantize(
        tmp_path, layout, head_dtype, input_dtype):
    raw = save(tmp_path, "raw", layout=layout, head_dtype=head_dtype, input_dtype=input_dtype,
               batch=2)
    result = build_model(raw, tmp_path / "built.onnx")
    assert result.heads.layout == layout and result.heads.output_stride == 16
    assert result.heads.grid == (5, 5)
    if head_dtype in ZERO_POINT:
        q = result.heads.quantization["heatmaps"]
        assert (q.dtype, q.zero_point) == (head_dtype, ZERO_POINT[head_dtype])
        assert q.scale == pytest.approx(SCALE)
    else:
        assert result.heads.quantization == {}
    shape = (2, 65, 65, 3) if layout == "NHWC" else (2, 3, 65, 65)
    image = random_image(shape, input_dtype)
    expected = independent_keypoints(raw, image, layout=layout, head_dtype=head_dtype)
    got = built_keypoints(tmp_path / "built.onnx", image)
    np.testing.assert_allclose(got[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    tolerance = 2e-3 if head_dtype == "float16" else 1e-5
    np.testing.assert_allclose(got[..., 2], expected[..., 2], atol=tolerance, rtol=0)


def test_nchw_model_through_pose_session(tmp_path):
    raw = save(tmp_path, "raw", layout="NCHW", head_dtype="uint8", input_dtype="uint8")
    build_model(raw, tmp_path / "built.onnx")
    session = PoseSession(tmp_path / "built.onnx", providers=["cpu"])
    assert session.info.input_layout == "NCHW"
    image = random_image((65, 65, 3), "uint8", seed=3)
    tensor, _ = session.preprocess([image])
    assert tensor.shape == (1, 3, 65, 65)
    np.testing.assert_array_equal(tensor[0], image.transpose(2, 0, 1))
    expected = independent_keypoints(raw, tensor, layout="NCHW", head_dtype="uint8")
    np.testing.assert_allclose(session.predict(image).keypoints, expected, atol=1e-3)


@pytest.mark.parametrize("size", [(65, 65), (97, 129)])
def test_dynamic_spatial_dims_need_input_size(tmp_path, capsys, size):
    raw = save(tmp_path, "dynamic", dynamic_input=True)
    line = refused(tmp_path, capsys, raw)
    assert "dynamic spatial size" in line and "--input-size" in line
    height, width = size
    result = build_model(raw, tmp_path / "built.onnx", input_size=size)
    assert (result.heads.input.height, result.heads.input.width) == size
    assert result.heads.grid == (-(-height // 16), -(-width // 16))
    image = random_image((1, height, width, 3), "float32")
    expected = independent_keypoints(raw, image, input_hw=size)
    np.testing.assert_allclose(built_keypoints(tmp_path / "built.onnx", image), expected, atol=1e-3)


def test_several_candidate_heatmaps(tmp_path, capsys):
    heads = [("a", 17, 16), ("b", 17, 16), ("offsets", 34, 16)]
    raw = save(tmp_path, "two", heads=heads)
    line = refused(tmp_path, capsys, raw)
    assert "several candidate heatmaps heads" in line and "a [1x5x5x17], b [1x5x5x17]" in line
    assert "--heatmaps" in line
    build_model(raw, tmp_path / "built.onnx", overrides=HeadOverrides(heatmaps="b"))
    image = random_image((1, 65, 65, 3), "float32")
    expected = independent_keypoints(raw, image, heatmaps="b")
    np.testing.assert_allclose(built_keypoints(tmp_path / "built.onnx", image), expected, atol=1e-3)
    # a name hint picks one of two candidates without an override
    hinted = save(tmp_path, "hinted", heads=[("a", 17, 16), ("heatmap_b", 17, 16), ("offsets", 34, 16)])
    assert build_model(hinted, None).heads.heatmaps == "heatmap_b"


def test_extra_two_d_outputs_are_ignored(tmp_path):
    raw = save(tmp_path, "extra", heads=[("heatmaps", 17, 16), ("offsets", 34, 16), ("scores", 17, 16)],
               flatten=("scores",))
    result = build_model(raw, tmp_path / "built.onnx")
    assert (result.heads.heatmaps, result.heads.short_offsets) == ("heatmaps", "offsets")
    image = random_image((1, 65, 65, 3), "float32")
    np.testing.assert_allclose(built_keypoints(tmp_path / "built.onnx", image),
                               independent_keypoints(raw, image), atol=1e-3)


def test_unusual_stride_with_override(tmp_path, capsys):
    raw = save(tmp_path, "s12", input_hw=(60, 60), heads=[("heatmaps", 17, 12), ("offsets", 34, 12)])
    line = refused(tmp_path, capsys, raw)
    assert "cannot infer the output stride" in line and "--output-stride" in line
    result = build_model(raw, tmp_path / "built.onnx", overrides=HeadOverrides(output_stride=12))
    assert result.heads.output_stride == 12
    image = random_image((1, 60, 60, 3), "float32")
    np.testing.assert_allclose(built_keypoints(tmp_path / "built.onnx", image),
                               independent_keypoints(raw, image, stride=12, input_hw=(60, 60)),
                               atol=1e-3)


# ------------------------------------------------------------------------------ refused

@pytest.mark.parametrize("heads, flatten, extra, expected", [
    ([("heatmaps", 18, 16), ("offsets", 34, 16)], (), (), "no output has 17 heatmap channels"),
    ([("heatmaps", 17, 16), ("offsets", 32, 16)], (), (), "no short-offset output with 34 channels"),
    ([("heatmaps", 16, 16), ("offsets", 34, 16), ("hm", 17, 16)], (), ("--heatmaps", "heatmaps"),
     "heatmaps head heatmaps [1x5x5x16] has 16 channels, expected 17"),
    ([("heatmaps", 17, 16), ("offsets", 34, 8)], (), (), "inconsistent head shapes"),
    ([("heatmaps", 17, 16), ("offsets", 34, 16), ("displacements", 64, 32)], (),
     ("--decoder", "multi"), "inconsistent head shapes"),  # single-pose leaves them out
    ([("heatmaps", 17, 16), ("offsets", 34, 16)], ("heatmaps",), (),
     "no output has 17 heatmap channels (outputs: heatmaps [1x425]"),
    ([("heatmaps", 17, 16), ("offsets", 34, 16)], ("heatmaps",), ("--heatmaps", "heatmaps"),
     "heatmaps head heatmaps [1x425] is not 4-D"),
    ([("heatmaps", 17, 16), ("offsets", 34, 16)], (), ("--offsets", "nope"), "no output named 'nope'"),
    ([("heatmaps", 17, 16), ("offsets", 34, 16)], (), ("--heatmaps", "offsets"),
     "has 34 channels, expected 17"),
])
def test_wrong_heads_are_refused_with_the_reason(tmp_path, capsys, heads, flatten, extra, expected):
    raw = save(tmp_path, "almost", heads=heads, flatten=flatten)
    line = refused(tmp_path, capsys, raw, *extra)
    assert "almost.onnx" in line and expected in line


@pytest.mark.parametrize("channels", [1, 4])
def test_non_rgb_input_is_refused(tmp_path, capsys, channels):
    raw = save(tmp_path, f"c{channels}", input_channels=channels)
    line = refused(tmp_path, capsys, raw)
    assert f"[1x65x65x{channels}] has no 3-channel (RGB) axis" in line


def test_per_channel_quantized_heads_are_refused(tmp_path, capsys):
    raw = save(tmp_path, "pc", head_dtype="uint8", per_channel=True)
    line = refused(tmp_path, capsys, raw)
    assert "per-channel quantized heads are not supported" in line


def test_ambiguous_layout_is_refused(tmp_path, capsys):
    raw = save(tmp_path, "amb", input_hw=(3, 64), layout="NCHW",
               heads=[("heatmaps", 17, 1), ("offsets", 34, 1)])
    model = onnx.load(raw)  # make the input [1, 3, 3, 3]-like: 3 on both candidate axes
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[3].dim_value = 3
    onnx.save(model, raw)
    line = refused(tmp_path, capsys, raw)
    assert "could be NHWC or NCHW" in line


def test_ambiguous_stride_is_refused(tmp_path, capsys):
    # input 2x2, grid 1x1: ceil(2/s) == 1 for every stride >= 2
    raw = save(tmp_path, "tiny", input_hw=(2, 2), heads=[("heatmaps", 17, 2), ("offsets", 34, 2)])
    line = refused(tmp_path, capsys, raw)
    assert "ambiguous output stride" in line


def test_grid_coordinates_need_two_cells(tmp_path, capsys):
    raw = save(tmp_path, "row", input_hw=(16, 65), heads=[("heatmaps", 17, 16), ("offsets", 34, 16)])
    line = refused(tmp_path, capsys, raw, "--coordinates", "grid")
    assert "1x5 grid is too small" in line
    build_model(raw, tmp_path / "ok.onnx")  # stride coordinates work on a one-row grid


def test_oversized_input_is_refused(tmp_path, capsys):
    raw = save(tmp_path, "dyn", dynamic_input=True)
    line = refused(tmp_path, capsys, raw, "--input-size", "9000x64")
    assert "too large" in line


def test_built_model_is_not_rebuilt(tmp_path, capsys):
    raw = save(tmp_path, "raw")
    build_model(raw, tmp_path / "built.onnx")
    line = refused(tmp_path, capsys, tmp_path / "built.onnx")
    assert "already built by onnxpose" in line


def test_inconsistent_metadata_is_refused_by_pose_session(tmp_path):
    from onnxpose.metadata import PREFIX
    raw = save(tmp_path, "raw")
    build_model(raw, tmp_path / "built.onnx")
    model = onnx.load(tmp_path / "built.onnx")
    for prop in model.metadata_props:
        if prop.key == PREFIX + "input":
            prop.value = prop.value.replace('"NHWC"', '"NWHC"')
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(OnnxPoseError, match="unknown input layout 'NWHC'"):
        PoseSession(tmp_path / "bad.onnx")
    for prop in model.metadata_props:
        if prop.key == PREFIX + "input":
            prop.value = "{not json"
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(OnnxPoseError, match="corrupt onnxpose metadata"):
        PoseSession(tmp_path / "bad.onnx")


def test_heads_that_lie_about_their_shape_are_refused_in_one_line(tmp_path):
    """Declared output shapes that differ from what the graph computes (or a graph that cannot
    run): validation refuses it, in one line even on the real stderr (no onnxruntime log)."""
    import subprocess
    import sys
    from onnx import numpy_helper
    liar = toy_posenet_onnx(input_hw=(33, 33), heads=[("heatmaps", 17, 16), ("offsets", 34, 16)])
    for node in liar.graph.node:
        if node.op_type == "Conv" and node.output[0].startswith("offsets"):
            next(a for a in node.attribute if a.name == "strides").ints[:] = [8, 8]  # 5x5, says 3x3
    onnx.save(liar, tmp_path / "liar.onnx")
    broken = toy_posenet_onnx(input_hw=(33, 33), heads=[("heatmaps", 17, 16), ("offsets", 34, 16)])
    for init in broken.graph.initializer:
        if init.name == "heatmaps_w":  # 4 input channels for a 3-channel image
            init.CopyFrom(numpy_helper.from_array(np.ones((17, 4, 1, 1), np.float32), "heatmaps_w"))
    onnx.save(broken, tmp_path / "broken.onnx")
    for name in ("liar.onnx", "broken.onnx"):
        proc = subprocess.run([sys.executable, "-m", "onnxpose", "build", str(tmp_path / name), "-o",
                               str(tmp_path / "out.onnx"), "-q"], capture_output=True, text=True,
                              timeout=300)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"onnxpose: error: {tmp_path / name}: built model does not run")
        assert not (tmp_path / "out.onnx").exists()
