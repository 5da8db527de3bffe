#!/usr/bin/env python3
"""Single-pose decoding cost on the real PoseNet model, CPU, batch 1.

Prints the median latency (ms) of
  * the raw model (converted only, heads out, no decoding),
  * the onnxpose single-pose model (same backbone, decoded in-graph),
  * the decode's added time: built − raw,
  * the per-keypoint Python loop decoder on the same heads (decoding alone),
and, for reference, the numpy decoder and the onnxpose decoder-only model on
those heads. Raw and built are timed alternately in blocks in one process.
Writes the numbers as JSON (default benchmarks/results/cpu-2core/single_pose_latency.json).

    python3 benchmarks/single_pose_latency.py [--runs 300] [--warmup 20] [--threads T]

The shared data directory is $ONNXPOSE_SHARED, default ../shared next to the repository.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxpose.bench.latency_script import (RESULTS, missing_model, parse_args,  # noqa: E402
                                           prepare_model, write_result)

DEFAULT_OUT = RESULTS / "single_pose_latency.json"


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], DEFAULT_OUT, argv)

    from onnxpose.bench.cases import CASES, FunctionRunner, OrtRunner, PythonDecoder
    from onnxpose.bench.options import CPU, session_options
    from onnxpose.bench.run import raw_float_heads
    from onnxpose.bench.timing import measure_group
    from onnxpose.errors import OnnxPoseError

    if missing_model("single_pose_latency", args):
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="onnxpose-latency-") as tmp:
            system, prepared, batch_input, feed = prepare_model(args, Path(tmp), multi=False)
            info = prepared.info
            models = {"raw": prepared.raw["raw"].path, "onnxpose-single": prepared.built["single"]}
            runners = {name: OrtRunner(CASES[name], path, CPU, [CPU], session_options(args.threads),
                                       feed, False, None) for name, path in models.items()}
            measured = measure_group(runners, args.runs, args.warmup)
            heads = raw_float_heads(prepared, batch_input, args.threads)
            decoders = {}
            for kind in ("loop", "numpy"):
                decoder = PythonDecoder(kind, {}, {}, "NHWC", info.output_stride, prepared.input_hw,
                                        prepared.coordinates)
                decoders[f"decode:{kind}"] = FunctionRunner(
                    CASES[f"decode:{kind}"],
                    lambda d=decoder: d.decode(heads["heatmaps"], heads["short_offsets"]))
            decoders["decode:onnxpose-single"] = OrtRunner(
                CASES["decode:onnxpose-single"], prepared.decoder_only["decoder_single"], CPU, [CPU],
                session_options(args.threads),
                {"heatmaps": heads["heatmaps"], "short_offsets": heads["short_offsets"]}, False, None)
            measured.update(measure_group(decoders, args.runs, args.warmup))
    except OnnxPoseError as exc:
        print(f"single_pose_latency: error: {exc}", file=sys.stderr)
        return 2

    median = {name: statistics.median(m.samples_ms) for name, m in measured.items()}
    added = median["onnxpose-single"] - median["raw"]
    lines = [
        ("raw model (heads only, no decoding)", median["raw"]),
        ("onnxpose single-pose model (decoded in-graph)", median["onnxpose-single"]),
        ("decode added time (built - raw)", added),
        ("per-keypoint Python loop decoder, same heads", median["decode:loop"]),
        ("numpy decoder, same heads", median["decode:numpy"]),
        ("onnxpose decoder alone (decoder-only model), same heads", median["decode:onnxpose-single"]),
    ]
    print(f"CPU, batch 1, median of {args.runs} runs ({args.warmup} warm-up), "
          f"threads {args.threads or 'onnxruntime default'}; {Path(args.model).name}")
    for text, value in lines:
        print(f"  {text:<58} {value:9.3f} ms")

    write_result(args, argv, "onnxpose-single-pose-latency/1", "single_pose_latency", {
        "median_ms": {
            "raw": median["raw"],
            "onnxpose_single": median["onnxpose-single"],
            "decode_added": added,
            "python_loop_decoder": median["decode:loop"],
            "numpy_decoder": median["decode:numpy"],
            "onnxpose_decoder_only": median["decode:onnxpose-single"],
        },
    }, measured, system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
