#!/usr/bin/env python3
"""What an onnxruntime ``Loop`` iteration and a small node inside one cost (CPU).

A Loop carries an int64 [1, 40] tensor through a body of k ``Add`` nodes (k = 1, 10, 40),
run for 50 and 200 iterations, one intra-op thread; per iteration: median run time / trips.
The slope over k is the cost of one small node in a Loop body, the intercept the Loop's own
cost per iteration (the multi-pose decoder's walk, heap replay and root NMS are such Loops).

    python3 benchmarks/loop_overhead.py [--runs 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cpu-2core" / "loop_overhead.json"
NODES = (1, 10, 40)
TRIPS = (50, 200)


def loop_model(nodes: int):
    """A Loop whose body adds 1 to the carried tensor ``nodes`` times."""
    body_nodes, prev = [], "x_in"
    for i in range(nodes):
        body_nodes.append(helper.make_node("Add", [prev, "one"], [f"add{i}"]))
        prev = f"add{i}"
    body_nodes += [helper.make_node("Identity", [prev], ["x_out"]),
                   helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.INT64, None)],
        [helper.make_tensor("one", TensorProto.INT64, [], [1])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)], "loop",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 40]),
         helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 40])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8                       # onnxruntime 1.31 reads IR <= 13
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    import onnxruntime as ort

    from onnxpose.bench.latency_script import write_json
    from onnxpose.bench.system import system_info

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    per_iteration = {}
    for nodes in NODES:
        session = ort.InferenceSession(loop_model(nodes).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        for trips in TRIPS:
            feed = {"x": np.zeros((1, 40), np.int64), "trips": np.array(trips, np.int64),
                    "cond": np.array(True)}
            for _ in range(args.warmup):
                session.run(None, feed)
            samples = []
            for _ in range(args.runs):
                start = time.perf_counter()
                session.run(None, feed)
                samples.append(time.perf_counter() - start)
            us = statistics.median(samples) / trips * 1e6
            per_iteration[f"{nodes} nodes x {trips} trips"] = us
            print(f"{nodes:3d} nodes, {trips:3d} trips: {us:6.2f} us per iteration")
    # line over k at the longer runs: slope = one node, intercept = the Loop's own cost
    ks = np.array(NODES, np.float64)
    ys = np.array([per_iteration[f"{k} nodes x {TRIPS[-1]} trips"] for k in NODES])
    node_us, loop_us = (float(v) for v in np.polyfit(ks, ys, 1))
    print(f"per node in a Loop body {node_us:.2f} us; the Loop itself {loop_us:.2f} us per "
          "iteration")
    write_json(args.out, "onnxpose.loop_overhead/1", "loop_overhead", argv, {
        "runs": args.runs, "warmup": args.warmup, "threads": 1,
        "median_us_per_iteration": per_iteration,
        "node_us": node_us, "loop_us_per_iteration": loop_us,
        "system": system_info("cpu-2core")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
