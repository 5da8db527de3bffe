"""Dequantized 8-bit heads: the multi-pose decoder leaves out the clipping and finite-value
passes (they could not change a value), and the built model loads and runs in onnxruntime
with its default optimizations (in a child process: onnxruntime 1.31's QDQ propagation
aborts the process on a DequantizeLinear -> Reshape whose output a Loop body reads), with
the candidates' pool on float values (``benchmarks/candidate_pool.py``: onnxruntime's pool
on the dequantized uint8 heatmap is far slower than the float one)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from onnxpose.build import build_model
from onnxpose.decoder.attach import heads_are_finite
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.heads.quantization import Quantization
from onnxpose.spec import MultiPoseSettings

# node name parts of onnxpose.decoder.finite_heads' passes
FINITE_PASSES = ("heatmaps_clipped", "_is_number", "_minus_itself", "_is_finite")

RUN_IN_CHILD = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
image = np.load(sys.argv[2])
values = session.run(None, {session.get_inputs()[0].name: image})
np.savez(sys.argv[3], **{o.name: v for o, v in zip(session.get_outputs(), values)})
"""

WRITE_OPTIMIZED_IN_CHILD = """
import sys, onnxruntime as ort
options = ort.SessionOptions()
options.optimized_model_filepath = sys.argv[2]
ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
"""


def finite_pass_nodes(model: onnx.ModelProto) -> list[str]:
    return [n.name for n in model.graph.node
            if n.name.startswith("multi_pose/") and any(p in n.name for p in FINITE_PASSES)]


@pytest.fixture(scope="module", params=["coral", "tfjs"])
def built(request, tmp_path_factory, quant_tflite):
    """(preset, the built model, the same model with its float heads kept as outputs)."""
    out = tmp_path_factory.mktemp(f"quantized_{request.param}")
    settings = MultiPoseSettings.for_preset(request.param)
    plain, kept = out / "plain.onnx", out / "kept.onnx"
    build_model(quant_tflite, plain, decoder="multi", multi=settings)
    build_model(quant_tflite, kept, decoder="multi", multi=settings, keep_heads=True,
                validate=False)
    return request.param, plain, kept


def test_dequantized_heads_take_no_finite_passes(built):
    _, plain, _ = built
    assert finite_pass_nodes(onnx.load(str(plain))) == []


def test_float_heads_keep_the_finite_passes():
    model = decoder_only_model((23, 31), 16, MultiPoseSettings.for_preset("tfjs"))
    assert len(finite_pass_nodes(model)) >= 5


def test_built_model_loads_and_decodes_with_default_optimizations(built, test_image, tmp_path):
    """Loaded by a child process with onnxruntime's defaults (so an abort fails this test, not
    the run), it decodes the photo exactly as the same graph whose DequantizeLinear outputs
    are also model outputs (which keeps the optimizer off them)."""
    _, plain, kept = built
    session = ort.InferenceSession(str(kept), providers=["CPUExecutionProvider"])
    _, height, width, _ = session.get_inputs()[0].shape
    image = np.asarray(Image.open(test_image).convert("RGB").resize((width, height)))[None]
    np.save(tmp_path / "image.npy", image)
    child = subprocess.run([sys.executable, "-c", RUN_IN_CHILD, str(plain),
                            str(tmp_path / "image.npy"), str(tmp_path / "out.npz")],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    got = np.load(tmp_path / "out.npz")
    expected = dict(zip([o.name for o in session.get_outputs()],
                        session.run(None, {session.get_inputs()[0].name: image})))
    assert int(got["pose_count"][0]) >= 2
    for name in ("keypoints", "pose_scores", "pose_count"):
        np.testing.assert_array_equal(got[name], expected[name])


def _heads(*quantizations):
    names = ["heatmaps", "short_offsets", "displacements"]
    return SimpleNamespace(heatmaps=names[0], short_offsets=names[1], displacements=(names[2],),
                           quantization={n: q for n, q in zip(names, quantizations) if q})


def test_heads_are_finite_only_when_every_head_is_bounded_8_bit():
    q = Quantization(0.078, 128, "uint8")
    assert heads_are_finite(_heads(q, q, q))
    assert not heads_are_finite(_heads(q, q, None))                         # a float head
    assert not heads_are_finite(_heads(Quantization(float("inf"), 0, "int8"), q, q))
    # heatmaps that could reach past +-HEATMAP_LIMIT still need the clip
    assert not heads_are_finite(_heads(Quantization(100.0, 0, "int8"), q, q))
    assert heads_are_finite(_heads(Quantization(1.0, -128, "int8"), q, q))


def test_candidate_pool_stays_float_after_onnxruntime_optimizes(built, tmp_path):
    """onnxruntime's QDQ transformers turn DequantizeLinear -> MaxPool into a pool on the
    uint8 values (``NhwcMaxPool``, com.microsoft, here), far slower on this 17-channel
    heatmap (``benchmarks/candidate_pool.py``); the decoder applies the threshold before the
    pool, which keeps that pool a float ``MaxPool`` whose output is not dequantized."""
    _, plain, _ = built
    optimized = tmp_path / "optimized.onnx"
    child = subprocess.run([sys.executable, "-c", WRITE_OPTIMIZED_IN_CHILD, str(plain),
                            str(optimized)], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    graph = onnx.load(str(optimized)).graph
    dequantized = {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    pools = [(n.op_type, n.domain, n.output[0] in dequantized) for n in graph.node
             if n.name.startswith("multi_pose/candidates/") and "Pool" in n.op_type]
    assert pools == [("MaxPool", "", False)]
