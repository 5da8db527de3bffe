"""The multi-pose decoder in OpenVINO's CPU plugin (``openvino``, pinned in the test extra):
decoder-only models load and, fed onnxruntime's heads, give onnxruntime's poses (same
counts, within 1e-3 px) with the f32 precision hint. Without the hint OpenVINO uses bf16
on CPUs with AVX512-BF16/AMX, which breaks the decoder (see README)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.synthetic_heads import synthetic_heads

ov = pytest.importorskip("openvino")

GRID, STRIDE = (23, 31), 16
NAMES = ("heatmaps", "short_offsets", "displacements")
F32 = {"INFERENCE_PRECISION_HINT": "f32"}
CASES = [dict(preset="coral"), dict(preset="tfjs"), dict(preset="coral", tie_order="heap"),
         dict(preset="tfjs", tie_order="heap"),
         dict(preset="coral", tie_order="heap", coral_release="frogfish"),
         dict(preset="coral", candidates=64, control_flow="none"),
         dict(preset="tfjs", candidates=64, control_flow="none")]


def _both(settings, heads, fixed=False):
    """OpenVINO's and onnxruntime's outputs; ``fixed``: OpenVINO's inputs reshaped to the
    heads' shapes (how the runtime matrix runs full models, see README)."""
    model = decoder_only_model(GRID, STRIDE, settings).SerializeToString()
    feed = dict(zip(NAMES, heads))
    expected = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)
    core = ov.Core()
    read = core.read_model(model, b"")
    if fixed:
        read.reshape({name: list(a.shape) for name, a in feed.items()})
    compiled = core.compile_model(read, "CPU", F32)
    result = compiled(feed)
    return [result[o] for o in compiled.outputs], expected


def _untied(heads):
    """``heads`` with the heatmaps nudged so that no two candidates tie."""
    noise = np.random.default_rng(5).normal(0, 1e-3, heads[0].shape).astype(np.float32)
    return (heads[0] + noise, *heads[1:])


@pytest.mark.parametrize("fixed", [False, True], ids=["dynamic", "fixed_shapes"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_decoder_exact_in_openvino(case, fixed, coral_heads):
    case = dict(case)
    settings = MultiPoseSettings.for_preset(case.pop("preset"), **case)
    synthetic = list(synthetic_heads(4, batch=3, people=(1, 6)))
    # the photo's heads tie (Coral's saturated logits): the heap orders replay; nudged, not
    for heads in (coral_heads, _untied(coral_heads), synthetic):
        got, expected = _both(settings, heads, fixed)
        np.testing.assert_array_equal(got[2], expected[2])
        np.testing.assert_allclose(got[0][..., :2], expected[0][..., :2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(got[0][..., 2], expected[0][..., 2], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got[1], expected[1], rtol=0, atol=1e-5)


EP_CASES = [dict(preset="coral"), dict(preset="tfjs"),
            dict(preset="coral", candidates=64, control_flow="none"),
            dict(preset="tfjs", candidates=64, control_flow="none"),
            dict(preset="coral", tie_order="heap"), dict(preset="tfjs", tie_order="heap"),
            dict(preset="coral", tie_order="heap", coral_release="frogfish")]


@pytest.mark.parametrize("case", EP_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_decoder_exact_in_onnxruntime_openvino_ep(case, coral_heads, tmp_path, openvino_ep):
    """The decoder alone in onnxruntime's OpenVINO EP (CPU, FP32; scripts/install_openvino_ep.sh),
    every node on the EP, on the photo's (tied) heads and on synthetic ones: onnxruntime CPU's
    poses."""
    from onnxpose.bench.runtimes import compare, run_cell
    case = dict(case)
    settings = MultiPoseSettings.for_preset(case.pop("preset"), **case)
    model = tmp_path / "decoder.onnx"
    model.write_bytes(decoder_only_model(GRID, STRIDE, settings).SerializeToString())
    for k, heads in enumerate((coral_heads, list(synthetic_heads(4, batch=3, people=(1, 6))))):
        feed = dict(zip(NAMES, heads))
        expected = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feed)
        result = run_cell("ort-openvino-ep", model, feed, tmp_path / f"cell{k}", runs=1, warmup=0)
        assert result["ok"], result["error"]
        assert set(result["placement"]) == {"OpenVINOExecutionProvider"}, result["placement"]
        names = ("keypoints", "pose_scores", "pose_count")
        got = compare(dict(zip(names, result["outputs"].values())), dict(zip(names, expected)))
        assert got["matches"], got
