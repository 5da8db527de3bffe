#!/usr/bin/env python3
"""The candidates' 3x3 pool on a dequantized 8-bit heatmap, as onnxruntime (CPU) runs it.

Three models on a uint8 [1, h, w, 17] heatmap (the shared model's 23x31 grid by default),
each DequantizeLinear -> Transpose to NCHW -> ...:

* ``dq``: nothing more (the baseline: dequantize and transpose);
* ``pool_then_threshold``: MaxPool 3x3 then Max(threshold), the decoder's order before
  this script was written. onnxruntime's QDQ transformers move the DequantizeLinear past
  the pool, which then runs on the uint8 values (here a uint8 ``MaxPool``; in the full
  model, after the backbone's QLinearConv, a uint8 ``NhwcMaxPool``);
* ``threshold_then_pool``: Max(threshold) then MaxPool 3x3, the decoder's order now (the
  same values: the window maximum of max(score, t) is max(window maximum, t)); the pool
  stays a float ``MaxPool``.

Median of ``--runs`` runs each, in alternating blocks, one intra-op thread; the optimized
graphs' pool nodes (type, and whether they run on the quantized values) are recorded with
the times.

    python3 benchmarks/candidate_pool.py [--runs 300] [--grid 23x31] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cpu-2core" / "candidate_pool.json"
VARIANTS = ("dq", "pool_then_threshold", "threshold_then_pool")


def pool_model(variant: str, grid) -> onnx.ModelProto:
    h, w = grid
    nodes = [helper.make_node("DequantizeLinear", ["heatmaps", "scale", "zero"], ["scores"]),
             helper.make_node("Transpose", ["scores"], ["nchw"], perm=[0, 3, 1, 2])]
    pool = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    if variant == "dq":
        out = "nchw"
    elif variant == "pool_then_threshold":
        nodes += [helper.make_node("MaxPool", ["nchw"], ["pooled"], **pool),
                  helper.make_node("Max", ["pooled", "threshold"], ["floor"])]
        out = "floor"
    else:
        nodes += [helper.make_node("Max", ["nchw", "threshold"], ["lifted"]),
                  helper.make_node("MaxPool", ["lifted"], ["floor"], **pool)]
        out = "floor"
    nodes.append(helper.make_node("Identity", [out], ["out"]))
    graph = helper.make_graph(
        nodes, variant,
        [helper.make_tensor_value_info("heatmaps", TensorProto.UINT8, [1, h, w, 17])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [0.078]),
         helper.make_tensor("zero", TensorProto.UINT8, [], [128])]
        + ([] if variant == "dq" else
           [helper.make_tensor("threshold", TensorProto.FLOAT, [], [-1.386])]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8                       # onnxruntime 1.31 reads IR <= 13
    return model


def pool_nodes(model: onnx.ModelProto) -> list[str]:
    """The pool nodes of an optimized graph: "domain:type" plus " on uint8" where the pool's
    output is dequantized (so the pool ran on the quantized values)."""
    dequantized = {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return [f"{n.domain or 'ai.onnx'}:{n.op_type}"
            + (" on uint8" if n.output[0] in dequantized else "")
            for n in model.graph.node if "Pool" in n.op_type]


def parse_grid(text: str):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--grid: expected HxW, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"--grid: sizes must be >= 1, got {text!r}")
    return h, w


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--grid", type=parse_grid, default=(23, 31))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.runs < 10 or args.warmup < 0:
        parser.error("--runs must be >= 10 and --warmup >= 0")
    import onnxruntime as ort

    from onnxpose.bench.latency_script import write_json
    from onnxpose.bench.system import system_info

    feed = {"heatmaps": np.random.default_rng(0).integers(0, 256, (1, *args.grid, 17),
                                                          dtype=np.uint8)}
    sessions, pools = {}, {}
    with tempfile.TemporaryDirectory(prefix="onnxpose-pool-") as tmp:
        for variant in VARIANTS:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.optimized_model_filepath = str(Path(tmp) / f"{variant}.onnx")
            sessions[variant] = ort.InferenceSession(
                pool_model(variant, args.grid).SerializeToString(), options,
                providers=["CPUExecutionProvider"])
            pools[variant] = pool_nodes(onnx.load(options.optimized_model_filepath))
    outputs = {v: s.run(None, feed)[0] for v, s in sessions.items()}
    if not np.array_equal(outputs["pool_then_threshold"], outputs["threshold_then_pool"]):
        print("candidate_pool: the two orders disagree", file=sys.stderr)
        return 1
    samples = {v: [] for v in VARIANTS}
    for session in sessions.values():
        for _ in range(args.warmup):
            session.run(None, feed)
    for _ in range(args.runs // 10):
        for variant, session in sessions.items():
            for _ in range(10):
                start = time.perf_counter()
                session.run(None, feed)
                samples[variant].append((time.perf_counter() - start) * 1e6)
    median = {v: statistics.median(s) for v, s in samples.items()}
    for variant in VARIANTS:
        print(f"{variant:22s} {median[variant]:8.1f} us  pool: {', '.join(pools[variant]) or '-'}")
    added = {v: median[v] - median["dq"] for v in VARIANTS[1:]}
    ratio = added["pool_then_threshold"] / max(added["threshold_then_pool"], 1e-9)
    print(f"pool added: {added['pool_then_threshold']:.1f} us (pool first) against "
          f"{added['threshold_then_pool']:.1f} us (threshold first), x{ratio:.1f}")
    write_json(args.out, "onnxpose.candidate_pool/1", "candidate_pool", argv, {
        "grid": list(args.grid), "runs": args.runs, "warmup": args.warmup, "threads": 1,
        "median_us": median, "added_us": added, "ratio": ratio,
        "optimized_pool_ops": pools, "samples_us": samples,
        "system": system_info("cpu-2core")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
