"""The growth check's fits (benchmarks/multi_pose_growth.py): the exponent of a power law and
the ratio of the per-unit cost past a point to the cost before it, on curves whose answer
is known in closed form."""

import math

import numpy as np
import pytest

from onnxpose.bench.multi_pose_bench import power_fit, slope_ratio

CANDIDATES = [0, 10, 40, 64, 256]


def test_power_fit_finds_the_exponent_and_the_line():
    xs = np.array([10, 40, 64, 256], np.float64)
    assert power_fit(xs, 3 * xs ** 2)["exponent"] == pytest.approx(2.0)
    line = power_fit(CANDIDATES, [1.5 + 0.02 * x for x in CANDIDATES])
    assert line["slope_per_unit_ms"] == pytest.approx(0.02)
    assert line["intercept_ms"] == pytest.approx(1.5)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_slope_ratio_of_a_power_law(p):
    ys = [7.0 + x ** p for x in CANDIDATES]
    expected = ((256 ** p - 64 ** p) / 192) / (64 ** p / 64)
    assert slope_ratio(CANDIDATES, ys, 64) == pytest.approx(expected)


def test_slope_ratio_ignores_noise_at_few_candidates():
    # a line with the 10-candidate point inside the noise: the marginal cost's power fit
    # is thrown far above 1, the per-candidate slopes are not
    ys = [1.0, 1.0 + 0.005, 1.0 + 40 * 0.006, 1.0 + 64 * 0.006, 1.0 + 256 * 0.006]
    marginal = [y - ys[0] for y in ys]
    assert slope_ratio(CANDIDATES, ys, 64) == pytest.approx(1.0)
    assert power_fit(CANDIDATES[1:], marginal[1:])["exponent"] > 1.15


def test_slope_ratio_is_nan_without_cost_before_the_point():
    assert math.isnan(slope_ratio(CANDIDATES, [2.0, 1.9, 1.95, 1.9, 3.0], 64))


def test_decoder_part_starts_at_the_heads(tmp_path):
    """The cut model reads the named intermediate tensors and computes the same outputs as
    the whole model from them; a name the model lacks gives None."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from onnxpose.bench.multi_pose_bench import decoder_part

    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["heads"]),
         helper.make_node("Mul", ["heads", "two"], ["keypoints"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "built.onnx"))
    part = decoder_part(tmp_path / "built.onnx", ["heads"], tmp_path / "part.onnx")
    session = ort.InferenceSession(str(part), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["heads"]
    heads = np.array([[-1.0, 0.5, 2.0], [3.0, -4.0, 0.0]], np.float32)
    np.testing.assert_array_equal(session.run(None, {"heads": heads})[0], heads * 2)
    assert decoder_part(tmp_path / "built.onnx", ["nope"], tmp_path / "none.onnx") is None
