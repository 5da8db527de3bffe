#!/usr/bin/env python3
"""Multi-pose decoding cost on the real PoseNet model, CPU, batch 1.

For each preset (``coral``, ``tfjs``, and ``coral-heap``: coral with Coral's heap tie order,
``--tie-order heap``, the default for models with Coral's decoder op) prints the median
latency (ms) of
  * the raw model with all three heads out (converted only, no decoding: ``raw-all``),
  * the onnxpose multi-pose model (same backbone, dequantized and decoded in-graph),
  * the decode's added time, built − raw-all, also as a share of raw-all (the goal is
    under 10 %),
and, on the same float heads, the onnxpose decoder-only model and the numpy reference
decoder. All models run in onnxruntime's CPUExecutionProvider in one process, timed in
alternating blocks (``onnxpose.bench.timing.measure_group``: sessions that alternate run
by run slow each other down on 2 cores). Writes the numbers as JSON (default
benchmarks/results/cpu-2core/multi_pose_latency.json).

    python3 benchmarks/multi_pose_decode.py [--runs 300] [--warmup 20] [--threads T]

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

DEFAULT_OUT = RESULTS / "multi_pose_latency.json"

VARIANTS = {"coral": ("coral", {}), "tfjs": ("tfjs", {}),
            "coral-heap": ("coral", {"tie_order": "heap"})}


def main(argv=None) -> int:
    args = parse_args(__doc__.splitlines()[0], DEFAULT_OUT, argv)

    from onnxpose.bench.cases import CASES, CaseSpec, FunctionRunner, OrtRunner
    from onnxpose.bench.options import CPU, session_options
    from onnxpose.bench.run import raw_float_heads
    from onnxpose.bench.timing import measure_group
    from onnxpose.build import build_model
    from onnxpose.decoder.decoder_only import decoder_only_model
    from onnxpose.spec import MultiPoseSettings
    from onnxpose.errors import OnnxPoseError
    from onnxpose.reference.multi_pose import decode_multiple_poses

    if missing_model("multi_pose_decode", args):
        return 2
    options = session_options(args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="onnxpose-multi-latency-") as tmp:
            system, prepared, batch_input, feed = prepare_model(args, Path(tmp), multi=True)
            info = prepared.info
            heads = raw_float_heads(prepared, batch_input, args.threads)
            head_feed = {name: heads[name] for name in ("heatmaps", "short_offsets",
                                                         "displacements")}
            stride, grid = info.output_stride, prepared.heads.grid
            runners, settings = {}, {}
            runners["raw-all"] = OrtRunner(CASES["raw-all"], prepared.raw["raw_all"].path, CPU,
                                           [CPU], options, feed, False, None)
            for preset, (name, overrides) in VARIANTS.items():
                settings[preset] = MultiPoseSettings.for_preset(name, **overrides)
                built = Path(tmp) / f"multi_{preset}.onnx"
                build_model(args.model, built, decoder="multi", multi=settings[preset])
                runners[f"onnxpose-multi-{preset}"] = OrtRunner(
                    CaseSpec(f"onnxpose-multi-{preset}", f"onnxpose multi-pose model, {preset}",
                             "multi", None), built, CPU, [CPU], options, feed, False, None)
            measured = measure_group(runners, args.runs, args.warmup)

            decoders = {}
            for preset in VARIANTS:
                decoder = Path(tmp) / f"decoder_{preset}.onnx"
                decoder.write_bytes(decoder_only_model(grid, stride, settings[preset],
                                                       prepared.input_hw).SerializeToString())
                decoders[f"decode:onnxpose-{preset}"] = OrtRunner(
                    CaseSpec(f"decode:onnxpose-{preset}", "decoder-only model", "decoder", None),
                    decoder, CPU, [CPU], options, head_feed, False, None)
                decoders[f"decode:numpy-{preset}"] = FunctionRunner(
                    CaseSpec(f"decode:numpy-{preset}", "numpy reference", None, None),
                    lambda s=settings[preset]: decode_multiple_poses(
                        heads["heatmaps"], heads["short_offsets"], heads["displacements"],
                        stride, s))
            measured.update(measure_group(decoders, args.runs, args.warmup))
    except OnnxPoseError as exc:
        print(f"multi_pose_decode: error: {exc}", file=sys.stderr)
        return 2

    median = {name: statistics.median(m.samples_ms) for name, m in measured.items()}
    raw = median["raw-all"]
    per_preset = {}
    print(f"CPU, batch 1, median of {args.runs} runs ({args.warmup} warm-up), threads "
          f"{args.threads or 'onnxruntime default'}; {Path(args.model).name}")
    print(f"  {'raw model, all heads (raw-all)':<52} {raw:9.3f} ms")
    for preset in VARIANTS:
        built = median[f"onnxpose-multi-{preset}"]
        numbers = {"onnxpose_multi": built, "decode_added": built - raw,
                   "decode_added_share_of_raw": (built - raw) / raw,
                   "onnxpose_decoder_only": median[f"decode:onnxpose-{preset}"],
                   "numpy_decoder": median[f"decode:numpy-{preset}"]}
        per_preset[preset] = numbers
        print(f"  {preset}: {'onnxpose multi-pose model':<45} {built:9.3f} ms")
        print(f"  {preset}: {'decode added time (built - raw-all)':<45} "
              f"{numbers['decode_added']:9.3f} ms = {100 * numbers['decode_added_share_of_raw']:.1f} %")
        print(f"  {preset}: {'decoder-only model, same heads':<45} "
              f"{numbers['onnxpose_decoder_only']:9.3f} ms")
        print(f"  {preset}: {'numpy reference decoder, same heads':<45} "
              f"{numbers['numpy_decoder']:9.3f} ms")

    write_result(args, argv, "onnxpose-multi-pose-latency/1", "multi_pose_decode", {
        "settings": {preset: s.to_dict() for preset, s in settings.items()},
        "median_ms": {"raw_all": raw, **per_preset},
    }, measured, system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
