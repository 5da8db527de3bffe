"""The static TensorRT-compatibility check (onnxpose.validate.tensorrt_check) on the
built graphs: the control-flow-free form passes; what the default form fails on."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, TensorProto

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import MultiPoseSettings
from onnxpose.validate.tensorrt_check import TOPK_MAX_K, check

GRID, STRIDE = (23, 31), 16


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("k", [1, 64, 256])
def test_control_flow_free_form_passes(preset, k):
    settings = MultiPoseSettings.for_preset(preset, candidates=k, control_flow="none")
    assert check(decoder_only_model(GRID, STRIDE, settings)) == []


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_default_form_fails_only_on_dynamic_topk_k(preset):
    problems = check(decoder_only_model(GRID, STRIDE, MultiPoseSettings.for_preset(preset)))
    assert problems and all("TopK" in p and "K must be an initializer" in p for p in problems)


def test_heap_order_fails_on_dynamic_loop_trip_counts():
    problems = check(decoder_only_model(GRID, STRIDE, MultiPoseSettings.for_preset(
        "coral", tie_order="heap")))
    assert any(p.startswith("Loop") and "trip count" in p for p in problems)


@pytest.mark.parametrize("coordinates", ["stride", "grid"])
def test_single_pose_passes(coordinates):
    """The single-pose decoder tests offsets for finiteness with Abs/Less (no IsInf, which
    TensorRT 10's parser lists as unsupported)."""
    from onnxpose.spec import SinglePoseSettings
    assert check(decoder_only_model((9, 9), 32, SinglePoseSettings(coordinates))) == []


def _model(nodes, inits=(), inputs=(("x", TensorProto.FLOAT, [1, 4, 8, 8]),)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rules_catch_what_they_claim():
    pool1d = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3])])
    assert any("1-D pooling" in p for p in check(pool1d))
    pool_indices = _model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3])])
    assert any("Indices" in p for p in check(pool_indices))
    big_k = _model([helper.make_node("TopK", ["x", "k"], ["y", "i"], axis=3)],
                   [onnx.numpy_helper.from_array(np.array([TOPK_MAX_K + 1], np.int64), "k")])
    assert any("K = 3841" in p for p in check(big_k))
    isinf = _model([helper.make_node("IsInf", ["x"], ["y"])])
    assert any("not supported" in p for p in check(isinf))


def test_int64_constants_must_fit_int32_except_slice_bounds():
    """TensorRT casts INT64 down to INT32 and clamps weights outside it: a clamped gather
    index or key would change the result; a clamped Slice end past the end would not."""
    big = onnx.numpy_helper.from_array(np.array([2 ** 31], np.int64), "big")
    add = _model([helper.make_node("Add", ["n", "big"], ["y"])], [big],
                 inputs=(("n", TensorProto.INT64, [1]),))
    assert any("big outside the INT32 range" in p for p in check(add))
    bounds = [onnx.numpy_helper.from_array(np.array([v], np.int64), n)
              for v, n in ((0, "s"), (np.iinfo(np.int64).max, "e"), (3, "a"))]
    sliced = _model([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], bounds)
    assert check(sliced) == []
    fits = _model([helper.make_node("Add", ["n", "big"], ["y"])],
                  [onnx.numpy_helper.from_array(np.array([2 ** 31 - 1], np.int64), "big")],
                  inputs=(("n", TensorProto.INT64, [1]),))
    assert check(fits) == []
