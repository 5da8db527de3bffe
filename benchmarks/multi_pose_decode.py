#!/usr/bin/env python3
"""Multi-pose decoding cost on the real PoseNet model, CPU: every preset and tie order,
batch 1 and 8, on the shared photo and on synthetic heads with 250 candidates.

Presets (``onnxpose.bench.multi_pose_bench.PRESETS``): ``coral-scan``, ``coral-heap``,
``tfjs-scan``, ``tfjs-heap`` and ``coral-frogfish-heap`` (the Coral-op default,
``MultiPoseSettings(coral_release="frogfish", tie_order="heap")``). For each batch size, one
group of sessions is timed in alternating blocks (``onnxpose.bench.timing.measure_group``),
so all ratios of a batch come from one run:

* ``raw-all``: the raw model (converted only) with all three heads out, on the photo;
* ``built:<preset>``: the onnxpose multi-pose model, on the photo; decode added =
  built − raw-all, and its share of raw-all (goal: under 5 %);
* ``decode-photo:<preset>``: the decoder-only model on the raw model's float heads of the
  photo (the decoding alone);
* ``decode-synth<C>:<preset>``: the decoder-only model on synthetic heads with exactly C
  (default 250) candidates above the threshold per image on the same 23x31 grid
  (``candidate_heads``). A full model cannot be fed such heads, so its share is the
  decoder-only time over raw-all's time, same batch, same run (goal: under 10 %). In the
  model the decode costs somewhat more than alone (cold caches after the backbone); the JSON
  also gives ``synthetic_in_model_estimate_share``: the synthetic share scaled by the photo's
  (built − raw-all) / decode-photo ratio of the same preset.

Writes benchmarks/results/cpu-2core/multi_pose_latency.json (median, summaries, raw samples).

    python3 benchmarks/multi_pose_decode.py [--runs 100] [--warmup 10] [--batch 1,8]
                                            [--synthetic-candidates 250] [--threads T]
                                            [--sessions S] [--quick]

``--sessions S``: the group is timed S times per batch, each time with fresh sessions, and
the samples are pooled (medians over all S x runs); each set's medians and decode added are
in the JSON too, to show how far one set of sessions can be from another.

``--quick``: 5 runs, 2 warm-up (a smoke test; numbers meaningless). The shared data directory
is $ONNXPOSE_SHARED, default ../shared next to the repository.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxpose.bench.latency_script import (IMAGE, MODEL, RESULTS, missing_model,  # noqa: E402
                                           write_result)

DEFAULT_OUT = RESULTS / "multi_pose_latency.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--image", type=Path, default=IMAGE if IMAGE.exists() else None)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per case and batch")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--synthetic-candidates", type=int, default=250)
    parser.add_argument("--presets", default=None, help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=None, help="intra_op_num_threads")
    parser.add_argument("--sessions", type=int, default=1,
                        help="timed groups per batch, each with fresh sessions (samples pooled)")
    parser.add_argument("--quick", action="store_true", help="5 runs, 2 warm-up (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 5, 2
    if args.sessions < 1 or args.runs < 1:
        parser.error("--sessions and --runs must be >= 1")
    args.batches = [int(b) for b in args.batch.split(",")]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from onnxpose.bench.models import make_inputs, prepare
    from onnxpose.bench.multi_pose_bench import (candidate_heads, count_candidates,
                                                 decoder_only_file, head_feed, ort_runner,
                                                 presets)
    from onnxpose.bench.options import session_options
    from onnxpose.bench.run import raw_float_heads
    from onnxpose.bench.system import system_info
    from onnxpose.bench.timing import measure_group
    from onnxpose.build import build_model
    from onnxpose.errors import OnnxPoseError
    import os

    if missing_model("multi_pose_decode", args):
        return 2
    settings = presets(args.presets.split(",") if args.presets else None)
    options = session_options(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    system = system_info("cpu-2core" if os.cpu_count() == 2 else None, args.threads)
    synth_name = f"decode-synth{args.synthetic_candidates}"
    measured, medians, candidates, per_session = {}, {}, {}, {}
    try:
        with tempfile.TemporaryDirectory(prefix="onnxpose-multi-latency-") as tmp:
            tmp = Path(tmp)
            prepared = prepare(args.model, tmp, multi=True, tflite=False)
            info, grid, stride = prepared.info, prepared.heads.grid, prepared.info.output_stride
            built = {}
            for name, s in settings.items():
                built[name] = tmp / f"multi_{name}.onnx"
                build_model(args.model, built[name], decoder="multi", multi=s)
                print(f"built {name}", file=sys.stderr)
            inputs = make_inputs(info, args.batches, args.image)
            for batch in args.batches:
                feed = {info.input_name: inputs[batch]}
                photo = raw_float_heads(prepared, inputs[batch], args.threads)
                photo_feed = head_feed(photo["heatmaps"], photo["short_offsets"],
                                       photo["displacements"])
                synth_feed = head_feed(*candidate_heads(args.synthetic_candidates, grid, batch,
                                                        seed=batch, stride=stride))
                candidates[batch] = {
                    "photo_coral_threshold": count_candidates(
                        photo["heatmaps"], _logit_threshold(settings, "coral")).tolist(),
                    "photo_tfjs_threshold": count_candidates(
                        photo["heatmaps"], _logit_threshold(settings, "tfjs")).tolist(),
                    "synthetic": args.synthetic_candidates}
                def runners():
                    made = {"raw-all": ort_runner("raw-all", prepared.raw["raw_all"].path,
                                                  feed, options)}
                    for name, s in settings.items():
                        made[f"built:{name}"] = ort_runner(f"built:{name}", built[name], feed,
                                                           options)
                        decoder = decoder_only_file(tmp, name, grid, stride, s,
                                                    prepared.input_hw)
                        made[f"decode-photo:{name}"] = ort_runner(
                            f"decode-photo:{name}", decoder, photo_feed, options)
                        made[f"{synth_name}:{name}"] = ort_runner(
                            f"{synth_name}:{name}", decoder, synth_feed, options)
                    return made

                # --sessions groups, each with fresh sessions (samples pooled)
                for rep in range(args.sessions):
                    group = runners()
                    print(f"batch {batch}: session set {rep + 1}/{args.sessions}: timing "
                          f"{len(group)} cases x {args.runs} runs", file=sys.stderr)
                    group = measure_group(group, args.runs, args.warmup)
                    for case, m in group.items():
                        if m.error:
                            raise OnnxPoseError(None, f"{case}: {m.error}")
                        key = f"batch{batch}/{case}"
                        if key in measured:
                            measured[key].samples_ms.extend(m.samples_ms)
                        else:
                            measured[key] = m
                        per_session.setdefault(batch, {}).setdefault(case, []).append(
                            statistics.median(m.samples_ms))
                medians[batch] = {case: statistics.median(measured[f"batch{batch}/{case}"]
                                                          .samples_ms) for case in group}
    except OnnxPoseError as exc:
        print(f"multi_pose_decode: error: {exc}", file=sys.stderr)
        return 2

    table = {}
    print(f"CPU, median of {args.runs} runs ({args.warmup} warm-up) per case, threads "
          f"{args.threads or 'onnxruntime default'}; {Path(args.model).name}; grid {grid}")
    for batch in args.batches:
        med = medians[batch]
        raw = med["raw-all"]
        print(f"\nbatch {batch}: raw-all {raw:.3f} ms; photo candidates "
              f"{candidates[batch]['photo_coral_threshold']} (coral threshold), "
              f"{candidates[batch]['photo_tfjs_threshold']} (tfjs)")
        print(f"  {'preset':<21} {'built':>9} {'added':>9} {'share':>7} {'alone':>9} "
              f"{'synth' + str(args.synthetic_candidates):>9} {'share':>7}")
        rows = {}
        for name in settings:
            b, alone, synth = (med[f"built:{name}"], med[f"decode-photo:{name}"],
                               med[f"{synth_name}:{name}"])
            row = {"built_ms": b, "decode_added_ms": b - raw, "decode_added_share": (b - raw) / raw,
                   "decoder_only_photo_ms": alone, "decoder_only_synthetic_ms": synth,
                   "synthetic_share": synth / raw,
                   "synthetic_in_model_estimate_share": synth / raw * ((b - raw) / alone)
                   if alone > 0 else None}
            rows[name] = row
            print(f"  {name:<21} {b:9.3f} {b - raw:+9.3f} {100 * row['decode_added_share']:6.1f}% "
                  f"{alone:9.3f} {synth:9.3f} {100 * row['synthetic_share']:6.1f}%")
        added = {name: [b - r for b, r in zip(per_session[batch][f"built:{name}"],
                                              per_session[batch]["raw-all"])]
                 for name in settings}
        if args.sessions > 1:
            print("  decode added per session set (ms): " + "; ".join(
                f"{name} " + " ".join(f"{a:+.2f}" for a in added[name]) for name in settings))
        table[batch] = {"raw_all_ms": raw, "presets": rows, "candidates": candidates[batch],
                        "session_medians_ms": per_session[batch],
                        "decode_added_per_session_ms": added}

    write_result(args, argv, "onnxpose-multi-pose-latency/2", "multi_pose_decode", {
        "batch": args.batches, "grid": list(grid), "quick": args.quick, "sessions": args.sessions,
        "synthetic_candidates": args.synthetic_candidates,
        "share_definitions": {
            "decode_added_share": "(median built - median raw-all) / median raw-all, photo",
            "synthetic_share": "median decoder-only on synthetic heads / median raw-all",
            "synthetic_in_model_estimate_share": "synthetic_share * (built - raw-all) / "
                                                 "decoder-only on the photo, same preset"},
        "settings": {name: s.to_dict() for name, s in settings.items()},
        "median_ms": table,
    }, measured, system)
    return 0


def _logit_threshold(settings, preset: str) -> float:
    from onnxpose.reference.sigmoid import coral_logodds, logit
    s = next((s for s in settings.values() if s.preset == preset), None)
    if s is None:
        return 0.0
    return float(coral_logodds(s.score_threshold) if preset == "coral" else logit(s.score_threshold))


if __name__ == "__main__":
    sys.exit(main())
