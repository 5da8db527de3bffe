"""PoseNet MobileNetV1 0.75 test models: the real-weights rebuild against Coral's quantized TFLite,
and the SavedModel / float TFLite / TF.js forms against the Keras model they were made from."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from onnxpose.errors import OnnxPoseError
from onnxpose.testing import posenet_models as pm


# form tests: real weights at the classic 257x257 / 32, random (dilated) weights at 257x257 / 16
CONFIGS = {
    "real": dict(input_hw=(257, 257), output_stride=32, weights="real", seed=0),
    "random": dict(input_hw=(257, 257), output_stride=16, weights="random", seed=3),
}


def _assert_close(ours, ref, what, rel=1e-4):
    """max |ours - ref| <= rel * max(1, max |ref|): 1e-4, relative to the head's range."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = float(np.max(np.abs(ours.astype(np.float64) - ref)))
    tol = rel * max(1.0, float(np.max(np.abs(ref))))
    assert err <= tol, f"{what}: max abs diff {err:.3g} > {tol:.3g}"


@pytest.fixture(scope="module")
def models():
    """Keras models by config name, built on first use."""
    built = {}

    def get(name):
        if name not in built:
            cfg = CONFIGS[name]
            if cfg["weights"] == "real" and not pm.REAL_TFLITE_PATH.is_file():
                pytest.fail("shared/models PoseNet TFLite missing")
            built[name] = pm.build_posenet_mobilenet(cfg["input_hw"], cfg["output_stride"], cfg["weights"],
                                                     cfg["seed"])
        return built[name]

    return get


@pytest.fixture(scope="module")
def image_257():
    """The reference photo resized to 257x257 (a random image if shared/ is missing), normalized."""
    if pm.REFERENCE_NPZ.is_file():
        from PIL import Image

        rgb = np.load(pm.REFERENCE_NPZ)["image"][0]
        rgb = np.asarray(Image.fromarray(rgb).resize((257, 257), Image.BILINEAR))[None]
    else:
        rgb = np.random.default_rng(0).integers(0, 256, (1, 257, 257, 3), dtype=np.uint8)
    return pm.normalize_image(rgb)


@pytest.fixture(scope="module")
def keras_outputs(models, image_257):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = [np.asarray(o) for o in models(name)(image_257)]
        return cache[name]

    return get


# ------------------------------------------------------------------------------------------------
# the rebuild is Coral's network

@pytest.fixture(scope="module")
def real_353():
    if not (pm.REAL_TFLITE_PATH.is_file() and pm.REFERENCE_NPZ.is_file()):
        pytest.fail("shared/ PoseNet TFLite or reference npz missing")
    return pm.build_posenet_mobilenet((353, 481), 16, "real")


def test_every_layer_reproduces_the_quantized_tflite_layer(real_353):
    # each rebuilt layer, fed the TFLite model's own input to that layer, gives the TFLite layer's
    # output up to rounding (<= half a quantization step): weights, strides, padding, dilation,
    # activation and layer order are all exactly Coral's
    steps = pm.compare_layers_with_tflite(model=real_353)
    assert len(steps) == 27 + 4
    worst = max(steps, key=steps.get)
    assert steps[worst] <= 0.5 + 1e-2, f"{worst}: {steps[worst]:.3f} quantization steps"


def test_end_to_end_matches_coral_reference_outputs(real_353):
    stats = pm.compare_with_reference(model=real_353)
    for head, s in stats.items():  # shown with -rA / on failure
        print(f"{head:18s} max {s['max']:.4f} ({s['max_steps']:.1f} steps)  mean {s['mean']:.4f} "
              f"({s['mean_steps']:.2f} steps)")
    # The reference went through 27 layers of uint8 activations; the float rebuild did not, so the
    # outputs differ by accumulated activation rounding, not just by the output step. Measured:
    # heatmaps max 0.75 / mean 0.064, short offsets max 8.9 / mean 0.35, mid offsets max 11.2 /
    # mean 0.62 (a mis-built network, e.g. with TF.js's dilation, is 10x worse: see below).
    assert stats["heatmaps"]["mean"] < 0.1 and stats["heatmaps"]["max"] < 1.2
    assert stats["short_offsets"]["mean"] < 0.5 and stats["short_offsets"]["max"] < 12.0
    assert stats["mid_offsets"]["mean_steps"] < 0.75 and stats["mid_offsets"]["max_steps"] < 12
    for head in ("displacement_fwd", "displacement_bwd"):  # fwd = first 32 mid channels, bwd = last 32
        assert stats[head]["mean_steps"] < 0.75, head


def test_coral_model_is_not_dilated_and_the_check_would_notice():
    dilated = pm.compare_with_reference(atrous=True)  # TF.js's rate-2 Conv2d_13_depthwise at stride 16
    assert dilated["heatmaps"]["mean"] > 0.5
    assert dilated["mid_offsets"]["mean"] > 3.0


def test_input_normalization_is_what_the_quantized_input_implies():
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(pm.REAL_TFLITE_PATH))
    (inp,) = interpreter.get_input_details()
    scale, zero_point = inp["quantization"]
    assert inp["name"] == pm.INPUT_NAME and inp["dtype"] == np.uint8
    assert (scale, zero_point) == (pm.INPUT_QUANT_SCALE, pm.INPUT_QUANT_ZERO_POINT)
    assert pm.INPUT_NORMALIZATION == "minus_one_to_one"
    pixels = np.arange(256, dtype=np.uint8)
    exact = pm.normalize_image(pixels, exact_quantized=True)
    np.testing.assert_allclose(exact, scale * (pixels.astype(np.float64) - zero_point), atol=1e-7)
    assert exact.min() == -1.0 and exact.max() < 1.0
    np.testing.assert_allclose(pm.normalize_image(pixels), exact, atol=1.0 / 128)


# ------------------------------------------------------------------------------------------------
# shapes, names, the three saved forms

@pytest.mark.parametrize("weights", ["real", "random"])
def test_shapes_at_257_stride_32(weights):
    if weights == "real" and not pm.REAL_TFLITE_PATH.is_file():
        pytest.fail("shared/models PoseNet TFLite missing")
    model = pm.build_posenet_mobilenet((257, 257), 32, weights, seed=1)
    assert [tuple(o.shape) for o in model.outputs] == [(1, 9, 9, 17), (1, 9, 9, 34), (1, 9, 9, 32), (1, 9, 9, 32)]
    assert tuple(model.inputs[0].shape) == (1, 257, 257, 3)
    assert list(model.output_names) == list(pm.HEAD_NAMES)
    assert model.inputs[0].name == pm.INPUT_NAME
    assert pm.output_hw((353, 481), 16) == (23, 31) and pm.output_hw((257, 257), 32) == (9, 9)


def test_layer_plan_follows_tfjs_output_stride_rule():
    def strides_rates(os_, atrous):
        return [(layer["stride"], layer["rate"]) for layer in pm.layer_plan(os_, atrous)
                if layer["kind"] != "pointwise"]

    s32 = strides_rates(32, True)
    assert [s for s, _ in s32] == [2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1] and {r for _, r in s32} == {1}
    s16 = strides_rates(16, True)
    assert s16[12] == (1, 1) and s16[13] == (1, 2)
    s8 = strides_rates(8, True)
    assert s8[6] == (1, 1) and all(r == 2 for _, r in s8[7:13]) and s8[13] == (1, 4)
    assert {r for _, r in strides_rates(8, False)} == {1}
    with pytest.raises(OnnxPoseError):
        pm.layer_plan(12)


def test_random_weights_are_deterministic_and_sane(models, keras_outputs):
    a, b, c = (pm._random_backbone_weights(s) for s in (3, 3, 4))
    assert all(np.array_equal(a[k][0], b[k][0]) for k in a)
    assert not np.array_equal(a["Conv2d_0"][0], c["Conv2d_0"][0])
    heat, short, fwd, bwd = keras_outputs("random")
    stride = CONFIGS["random"]["output_stride"]
    assert -6 < heat.mean() < 0 and 1 < heat.std() < 6 and heat.max() > 0  # some confident keypoints
    assert abs(short.mean()) < stride and 0.1 * stride < short.std() < stride
    for disp in (fwd, bwd):
        assert abs(disp.mean()) < 2 * stride and 0.5 * stride < disp.std() < 6 * stride


def _run_form(form, path, x):
    """Outputs in the order heatmaps, offsets, disp_fwd, disp_bwd, checking the form's names."""
    import tensorflow as tf

    if form == "savedmodel":
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        out = signature(**{pm.INPUT_NAME: tf.constant(x)})
        assert sorted(out) == sorted(pm.HEAD_NAMES)
        return [out[name].numpy() for name in pm.HEAD_NAMES]
    if form == "tflite":
        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        (inp,) = interpreter.get_input_details()
        assert inp["name"] == pm.INPUT_NAME and inp["dtype"] == np.float32
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        outs = interpreter.get_output_details()
        assert [d["name"] for d in outs] == list(pm.OUTPUT_TENSOR_NAMES)
        return [interpreter.get_tensor(d["index"]) for d in outs]
    import onnxruntime as ort

    from onnxpose.convert.tfjs import convert_tfjs

    onnx_model = convert_tfjs(path)
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [f"{pm.INPUT_NAME}:0"]
    assert [o.name for o in session.get_outputs()] == [f"{n}:0" for n in pm.OUTPUT_TENSOR_NAMES]
    return session.run(None, {f"{pm.INPUT_NAME}:0": x})


@pytest.mark.parametrize("form", pm.FORMS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_saved_form_matches_keras(config, form, keras_outputs, image_257):
    path = pm.ensure_model(form, **CONFIGS[config])
    expected = keras_outputs(config)
    got = _run_form(form, path, image_257)
    assert len(got) == 4
    for name, ours, ref in zip(pm.HEAD_NAMES, got, expected):
        _assert_close(ours, ref, f"{config}/{form}/{name}")


# ------------------------------------------------------------------------------------------------
# cache, writers, CLI, errors

def test_ensure_model_reuses_the_cache():
    first = pm.ensure_model("tflite", (257, 257), 32, "real")
    mtime = first.stat().st_mtime_ns
    start = time.perf_counter()
    again = pm.ensure_model("tflite", (257, 257), 32, "real", seed=5)  # seed does not matter for real
    assert again == first and first.stat().st_mtime_ns == mtime
    assert time.perf_counter() - start < 0.5
    assert first.is_relative_to(pm.cache_dir())
    tfjs = pm.ensure_model("tfjs", (257, 257), 32, "real")
    assert tfjs.name == "model.json" and (tfjs.parent / "group1-shard1of1.bin").is_file()
    assert pm.ensure_model("savedmodel", (257, 257), 32, "real").joinpath("saved_model.pb").is_file()


def test_cache_location_and_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("ONNXPOSE_CACHE", str(tmp_path))
    assert pm.cache_dir() == tmp_path
    monkeypatch.delenv("ONNXPOSE_CACHE")
    assert pm.cache_dir().parts[-2:] == (".cache", "models")
    keys = {pm._cache_key((257, 257), 32, "random", 0, True, None),
            pm._cache_key((257, 257), 32, "random", 1, True, None),
            pm._cache_key((257, 257), 16, "random", 0, True, None),
            pm._cache_key((257, 353), 32, "random", 0, True, None),
            pm._cache_key((257, 257), 32, "random", 0, False, None)}
    assert len(keys) == 5


def test_writers_leave_no_temporaries(models, tmp_path):
    model = models("random")
    path = pm.save_tflite(model, tmp_path / "m.tflite")
    pm.save_tflite(model, path)  # overwrite
    model_json = pm.save_tfjs(model, tmp_path / "js")
    pm.save_tfjs(model, tmp_path / "js")  # replace a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["js", "m.tflite"]
    assert sorted(p.name for p in model_json.parent.iterdir()) == ["group1-shard1of1.bin", "model.json"]
    meta = json.loads(model_json.read_text())
    assert meta["format"] == "graph-model"
    assert list(meta["signature"]["outputs"]) == [f"{n}:0" for n in pm.OUTPUT_TENSOR_NAMES]
    ops = {node["op"] for node in meta["modelTopology"]["node"]}
    assert {"Conv2D", "DepthwiseConv2dNative", "BiasAdd", "Relu6", "SpaceToBatchND"} <= ops  # dilated


def test_cli_prints_the_path(capsys):
    assert pm.main(["--form", "tflite", "--size", "257x257", "--stride", "32", "--weights", "real"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == str(pm.ensure_model("tflite", (257, 257), 32, "real"))


def test_bad_arguments_raise_onnxpose_error():
    with pytest.raises(OnnxPoseError):
        pm.build_posenet_mobilenet((257, 257), 12, "random")
    with pytest.raises(OnnxPoseError):
        pm.build_posenet_mobilenet((257, 257), 32, "pretrained")
    with pytest.raises(OnnxPoseError):
        pm.ensure_model("onnx", (257, 257), 32, "random")
    with pytest.raises(OnnxPoseError, match="not found"):
        pm.build_posenet_mobilenet((257, 257), 32, "real", tflite_path="/nonexistent/posenet.tflite")


def test_convert_tfjs_errors(models, tmp_path):
    from onnxpose.convert.tfjs import convert_tfjs

    good = pm.save_tfjs(models("random"), tmp_path / "good")

    def variant(name, edit_json=None, edit_bin=None):
        d = tmp_path / name
        shutil.copytree(good.parent, d)
        if edit_json:
            meta = json.loads((d / "model.json").read_text())
            edit_json(meta)
            (d / "model.json").write_text(json.dumps(meta))
        if edit_bin:
            edit_bin(d / "group1-shard1of1.bin")
        return d / "model.json"

    def bad_op(meta):
        next(n for n in meta["modelTopology"]["node"] if n["op"] == "Relu6")["op"] = "NoSuchOp"

    cases = {
        "missing": (tmp_path / "nope" / "model.json", "not found"),
        "not json": (variant("text", edit_bin=None), None),
        "layers model": (variant("layers", edit_json=lambda m: m.update(format="layers-model")), "layers model"),
        "no shard": (variant("noshard", edit_bin=lambda p: p.unlink()), "missing"),
        "short shard": (variant("short", edit_bin=lambda p: p.write_bytes(p.read_bytes()[:-8])), "bytes"),
        "unknown op": (variant("badop", edit_json=bad_op), "NoSuchOp"),
    }
    cases["not json"][0].write_text("{this is not json")
    cases["not json"] = (cases["not json"][0], "JSON")
    for what, (path, needle) in cases.items():
        with pytest.raises(OnnxPoseError) as info:
            convert_tfjs(path)
        assert info.value.path is not None, what
        assert needle in info.value.reason, f"{what}: {info.value.reason}"
        assert "\n" not in info.value.reason
