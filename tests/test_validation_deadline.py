"""A hostile model cannot hang validation: runs are terminated after a deadline."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from onnxpose.validate.check import run_with_deadline


def endless_loop_model():
    """y = x + 1, repeated 10^15 times by a Loop."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)], "endless",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [10**15]),
         helper.make_tensor("cond", TensorProto.BOOL, [], [True])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_endless_run_is_terminated():
    session = ort.InferenceSession(endless_loop_model().SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="exceeded 0.3 s"):
        run_with_deadline(session, None, {"x": np.zeros(1, np.float32)}, seconds=0.3)
    assert time.monotonic() - start < 30


def test_normal_run_is_untouched():
    model = endless_loop_model()  # with 5 trips: no timeout, the right value
    model.graph.initializer[0].int64_data[:] = [5]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = run_with_deadline(session, None, {"x": np.zeros(1, np.float32)}, seconds=10)
    assert y.tolist() == [5.0]
