"""The control-flow-free decoder (``control_flow="none"``): no Loop or If, exact like the
default against the numpy references; refused without --candidates or with heap order."""

from __future__ import annotations

import numpy as np
import pytest

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import MultiPoseSettings
from onnxpose.reference.synthetic_heads import random_heads, synthetic_heads

from test_multi_pose_graph import (ATOL_PX, GRID, STRIDE, assert_same_poses,
                                   graph_matches_reference, run_graph)


def _ops(graph):
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            if attr.g.node:
                ops |= _ops(attr.g)
    return ops


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_no_control_flow(preset):
    model = decoder_only_model(GRID, STRIDE, MultiPoseSettings.for_preset(
        preset, candidates=32, control_flow="none"))
    assert not _ops(model.graph) & {"Loop", "If", "Scan"}


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("k", [1, 8, 64])
def test_matches_reference_on_real_heads(preset, k, coral_heads):
    graph_matches_reference(MultiPoseSettings.for_preset(preset, candidates=k,
                                                         control_flow="none"), coral_heads)


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("seed", range(3))
def test_matches_reference_on_synthetic_heads(preset, seed):
    heads = list(synthetic_heads(seed, batch=3, people=(1, 8)))
    graph_matches_reference(MultiPoseSettings.for_preset(preset, candidates=24,
                                                         control_flow="none"), heads)


@pytest.mark.parametrize("seed", range(2))
def test_tfjs_matches_reference_on_random_heads(seed):
    graph_matches_reference(MultiPoseSettings.for_preset("tfjs", candidates=24,
                                                         control_flow="none"),
                            random_heads(seed, batch=2))


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_non_finite_heads_cleaned_without_if(preset, poison):
    """The cleaning always runs (no If): the same documented rule as the default."""
    from onnxpose.reference.multi_pose import decode_multiple_poses
    heads = [h.copy() for h in synthetic_heads(11, batch=2)]
    rng = np.random.default_rng(3)
    for head in heads:
        head[rng.random(head.shape) < 0.05] = poison
    heads[0][1] = poison
    settings = MultiPoseSettings.for_preset(preset, candidates=48, control_flow="none")
    keypoints, scores, count = run_graph(settings, heads)
    assert np.isfinite(keypoints).all() and np.isfinite(scores).all()
    assert_same_poses((keypoints, scores, count),
                      decode_multiple_poses(*heads, STRIDE, settings), ATOL_PX[preset])


@pytest.mark.parametrize("overrides, message", [
    (dict(), "needs --candidates"), (dict(candidates=8, tie_order="heap"), "tie_order scan")])
def test_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        MultiPoseSettings.for_preset("coral", control_flow="none", **overrides)


def test_real_model_builds_without_control_flow(quant_tflite, tmp_path, reference):
    """The real quantized PoseNet built with --control-flow none: no Loop or If, validated
    against the reference by the build, Coral's two poses on the reference image, and the
    appended decoder passes the TensorRT check (the tf2onnx backbone's uint8 QDQ tensors
    do not: TensorRT takes UINT8 only at network inputs and outputs)."""
    import onnx
    import onnxruntime as ort
    from onnxpose.build import build_model
    from onnxpose.validate.tensorrt_check import check
    out = tmp_path / "none.onnx"
    build_model(quant_tflite, out, decoder="multi",
                multi_overrides={"candidates": 64, "control_flow": "none"})
    model = onnx.load(str(out))
    assert not _ops(model.graph) & {"Loop", "If"}
    assert [p for p in check(model) if "multi_pose/" in p] == []
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = reference["image"]
    feed = {session.get_inputs()[0].name: image.astype(session.get_inputs()[0].type == "tensor(uint8)" and np.uint8 or np.float32)}
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    assert outputs["pose_count"].tolist() == [2]
