#!/usr/bin/env python3
"""Multi-pose peer table, CPU, batch 1: decoding alone on the same heads, and end to end.

Decoding alone, on two sets of heads on the 23x31 grid: the shared photo's float heads (from
the raw model) and synthetic heads with exactly 250 candidates (``candidate_heads``):

* ``onnx:<preset>``: the onnxpose decoder-only model (onnxruntime CPU), every preset and
  tie order;
* ``numpy:<preset>``: the numpy references (``onnxpose.reference.multi_pose``); they are
  direct per-candidate, per-keypoint Python loops over numpy scalars (the hand-written way;
  onnxpose/bench has no other multi-pose loop decoder);
* ``tfjs-node``: the real TF.js ``decodeMultiplePoses`` (@tensorflow-models/posenet 2.2.2,
  tfjs cpu backend) timed inside node (peers/tfjs_bench_decode.js: median of N runs after
  warm-up, start-up excluded), on ready score buffers, and with ``tf.sigmoid`` + bufferSync
  (``tfjs-node+sigmoid``); run after the Python groups, not interleaved with them.

End to end, image to keypoints, the photo: ``e2e-onnx:<preset>`` (the onnxpose multi-pose
model) against ``e2e-tflite+numpy:<preset>`` (the TFLite interpreter, dequantized heads,
numpy reference decoding of the same settings), one alternating group.

Writes benchmarks/results/cpu-2core/multi_pose_peers.json.

    python3 benchmarks/multi_pose_peers.py [--runs 200] [--numpy-runs 20] [--e2e-runs 50] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxpose.bench.latency_script import IMAGE, MODEL, RESULTS, missing_model  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--image", type=Path, default=IMAGE if IMAGE.exists() else None)
    parser.add_argument("--runs", type=int, default=200, help="runs of the ONNX and TF.js decoders")
    parser.add_argument("--numpy-runs", type=int, default=20)
    parser.add_argument("--e2e-runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--synthetic-candidates", type=int, default=250)
    parser.add_argument("--presets", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="3 runs each (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "multi_pose_peers.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = args.numpy_runs = args.e2e_runs = 3
        args.warmup = 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import json
    from datetime import datetime, timezone
    from onnxpose.bench.charts import readable
    from onnxpose.bench.models import make_inputs, prepare
    from onnxpose.bench.multi_pose_bench import (TfliteMultiRunner, candidate_heads,
                                                 decoder_only_file, function_runner, head_feed,
                                                 ort_runner, presets, tfjs_decode_times)
    from onnxpose.bench.options import session_options
    from onnxpose.bench.run import raw_float_heads
    from onnxpose.bench.system import load_average, system_info
    from onnxpose.bench.timing import measure_group, summarize
    from onnxpose.build import build_model
    from onnxpose.io import atomic_output
    from onnxpose.reference.multi_pose import decode_multiple_poses
    from onnxpose.testing.tfjs_peer import tfjs_available

    if missing_model("multi_pose_peers", args):
        return 2
    settings = presets(args.presets.split(",") if args.presets else None)
    options = session_options(args.threads)
    system = system_info("cpu-2core" if os.cpu_count() == 2 else None, args.threads)
    samples, table, tfjs = {}, {}, {}

    def run(group, runners, runs):
        print(f"{group}: {len(runners)} cases x {runs} runs", file=sys.stderr)
        measured = measure_group(runners, runs, args.warmup)
        for name, m in measured.items():
            if m.error:
                raise RuntimeError(f"{name}: {m.error}")
            samples[f"{group}/{name}"] = m
        return {name: statistics.median(m.samples_ms) for name, m in measured.items()}

    with tempfile.TemporaryDirectory(prefix="onnxpose-peers-") as tmp:
        tmp = Path(tmp)
        prepared = prepare(args.model, tmp, multi=True, tflite=True)
        info, grid, stride = prepared.info, prepared.heads.grid, prepared.info.output_stride
        batch_input = make_inputs(info, (1,), args.image)[1]
        photo = raw_float_heads(prepared, batch_input, args.threads)
        head_sets = {"photo": (photo["heatmaps"], photo["short_offsets"], photo["displacements"]),
                     f"synthetic{args.synthetic_candidates}":
                         candidate_heads(args.synthetic_candidates, grid, 1, seed=7, stride=stride)}
        for heads_name, heads in head_sets.items():
            feed = head_feed(*heads)
            runners = {f"onnx:{n}": ort_runner(f"onnx:{n}", decoder_only_file(
                tmp, n, grid, stride, s, prepared.input_hw), feed, options)
                for n, s in settings.items()}
            table[heads_name] = run(f"{heads_name}/onnx", runners, args.runs)
            runners = {f"numpy:{n}": function_runner(
                f"numpy:{n}", lambda s=s, h=heads: decode_multiple_poses(*h, stride, s))
                for n, s in settings.items()}
            table[heads_name].update(run(f"{heads_name}/numpy", runners, args.numpy_runs))
            if tfjs_available():
                tfjs_settings = next(s for s in settings.values() if s.preset == "tfjs")
                times = tfjs_decode_times(*heads, stride, tfjs_settings, args.runs, args.warmup)
                tfjs[heads_name] = times
                table[heads_name]["tfjs-node"] = statistics.median(times["decode_ms"])
                table[heads_name]["tfjs-node+sigmoid"] = statistics.median(
                    times["sigmoid_decode_ms"])
            else:
                print("TF.js peer not installed (scripts/install_peers.sh): skipped",
                      file=sys.stderr)
        # end to end
        runners = {}
        feed = {info.input_name: batch_input}
        for n, s in settings.items():
            path = tmp / f"multi_{n}.onnx"
            build_model(args.model, path, decoder="multi", multi=s)
            runners[f"e2e-onnx:{n}"] = ort_runner(f"e2e-onnx:{n}", path, feed, options)
            if prepared.tflite is not None:
                runners[f"e2e-tflite+numpy:{n}"] = TfliteMultiRunner(
                    f"e2e-tflite+numpy:{n}", prepared.tflite, batch_input, args.threads, stride, s)
        table["end_to_end"] = run("end_to_end", runners, args.e2e_runs)

    for section, med in table.items():
        print(f"\n{section} (median ms, batch 1)")
        for name, value in sorted(med.items(), key=lambda kv: kv[1]):
            print(f"  {name:<36} {value:10.3f}")

    system["load_average_at_end"] = load_average()
    result = {"schema": "onnxpose-multi-pose-peers/1",
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python3 benchmarks/multi_pose_peers.py" + "".join(
                  f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
              "model": Path(args.model).name,
              "input": str(Path(args.image).name) if args.image else "random pixels (seed 0)",
              "provider": "CPUExecutionProvider", "batch": 1, "quick": args.quick,
              "runs": {"onnx_and_tfjs": args.runs, "numpy": args.numpy_runs,
                       "end_to_end": args.e2e_runs, "warmup": args.warmup},
              "settings": {n: s.to_dict() for n, s in settings.items()},
              "median_ms": table,
              "tfjs_node": {k: {"poses": v["poses"], "backend": v["backend"],
                                "decode_ms": [round(x, 4) for x in v["decode_ms"]],
                                "sigmoid_decode_ms": [round(x, 4) for x in v["sigmoid_decode_ms"]]}
                            for k, v in tfjs.items()},
              "summary": {n: summarize(m.samples_ms, 1) for n, m in samples.items()},
              "samples_ms": {n: [round(v, 4) for v in m.samples_ms] for n, m in samples.items()},
              "system": system}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as path:
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        readable(path)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
