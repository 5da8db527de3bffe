#!/usr/bin/env python3
"""Where the multi-pose decoder's time goes, CPU, one thread: the decoder-only model of each
preset and tie order cut after each stage, timed in one group, on synthetic heads with C
candidates (default 40, about the shared photo's count, and 250), batch 1, 23x31 grid.

Stages (the graph's own tensor names; a cut keeps just the nodes the tensor needs):
candidates (``candidates/valid``: tables, 3x3 pool, TopK, roots), walk (``walk/points``:
the 8-step tree walk of every candidate), the heap order's check and replay (heap orders
only: ``queue/asked``, ``candidates/heap/index``), NMS (``nms/keep``), then the whole model
(scoring and packing). Each stage's cost is the time of its cut minus the time of the cut
before it (medians), so the stages add up to the whole.

Writes benchmarks/results/cpu-2core/multi_pose_stages.json (medians, stage costs, raw
samples) and .png (stacked bars).

    python3 benchmarks/multi_pose_stages.py [--runs 200] [--warmup 20] [--candidates 40,250]
                                            [--presets coral-scan,...] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onnxpose.bench.latency_script import RESULTS, write_json  # noqa: E402

GRID, STRIDE = (23, 31), 16
PREFIX = "multi_pose/"
STAGES = (("candidates", "candidates/valid"), ("walk", "walk/points"),
          ("heap check", "queue/asked"), ("heap replay", "candidates/heap/index"),
          ("nms", "nms/keep"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--candidates", default="40,250")
    parser.add_argument("--presets", default=None, help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="5 runs, 2 warm-up (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "multi_pose_stages.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 5, 2
    args.counts = [int(c) for c in args.candidates.split(",")]
    return args


def cut_after(model, tensor: str):
    """A copy of ``model`` whose one output is ``tensor``, with only the nodes it needs (a
    Loop's body may read outer tensors: those are needed too)."""
    import onnx
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    del cut.graph.output[:]
    cut.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    needed, kept = {tensor}, []
    for node in reversed(list(cut.graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
            for attribute in node.attribute:
                for sub in [attribute.g] + list(attribute.graphs):
                    for inner in sub.node:
                        needed.update(inner.input)
    del cut.graph.node[:]
    cut.graph.node.extend(reversed(kept))
    return cut


def stage_models(model) -> list[tuple[str, object]]:
    """(stage, model cut after it) for the stages this model has, then ("scoring", model)."""
    names = {o for node in model.graph.node for o in node.output}
    cuts = [(stage, cut_after(model, PREFIX + tensor)) for stage, tensor in STAGES
            if PREFIX + tensor in names]
    return cuts + [("scoring", model)]


def main(argv=None) -> int:
    args = parse_args(argv)
    from onnxpose.bench.multi_pose_bench import candidate_heads, head_feed, ort_runner, presets
    from onnxpose.bench.options import session_options
    from onnxpose.bench.system import system_info
    from onnxpose.bench.timing import measure_group, summarize
    from onnxpose.decoder.decoder_only import decoder_only_model

    settings = presets(args.presets.split(",") if args.presets else None)
    options = session_options(1)
    stages, samples = {}, {}
    with tempfile.TemporaryDirectory(prefix="onnxpose-stages-") as tmp:
        files = {}
        for name, s in settings.items():
            for stage, cut in stage_models(decoder_only_model(GRID, STRIDE, s)):
                files[name, stage] = Path(tmp) / f"{name}_{stage.replace(' ', '_')}.onnx"
                files[name, stage].write_bytes(cut.SerializeToString())
        for count in args.counts:
            feed = head_feed(*candidate_heads(count, GRID, 1, seed=count, stride=STRIDE))
            runners = {f"C={count}/{name}/{stage}": ort_runner(stage, path, feed, options)
                       for (name, stage), path in files.items()}
            print(f"{count} candidates: {len(runners)} cases x {args.runs} runs", file=sys.stderr)
            group = measure_group(runners, args.runs, args.warmup)
            for key, m in group.items():
                if m.error:
                    print(f"multi_pose_stages: error: {key}: {m.error}", file=sys.stderr)
                    return 2
                samples[key] = m
            for name in settings:
                before, costs = 0.0, {}
                for (preset, stage) in files:
                    if preset != name:
                        continue
                    median = statistics.median(group[f"C={count}/{name}/{stage}"].samples_ms)
                    costs[stage], before = median - before, median
                stages.setdefault(count, {})[name] = {"stage_ms": costs, "total_ms": before}
    for count, per_preset in stages.items():
        print(f"\n{count} candidates, batch 1, one thread: stage costs (ms), total")
        for name, row in per_preset.items():
            print(f"  {name:<21} " + "  ".join(f"{stage} {ms:+.3f}"
                                               for stage, ms in row["stage_ms"].items())
                  + f"   total {row['total_ms']:.3f}")
    write_json(args.out, "onnxpose-multi-pose-stages/1", "multi_pose_stages", argv, {
        "grid": list(GRID), "batch": 1, "threads": 1, "runs": args.runs,
        "warmup": args.warmup, "quick": args.quick,
        "stage_tensors": {stage: PREFIX + tensor for stage, tensor in STAGES},
        "settings": {n: s.to_dict() for n, s in settings.items()},
        "stages": {str(c): v for c, v in stages.items()},
        "summary": {k: summarize(m.samples_ms, 1) for k, m in samples.items()},
        "samples_ms": {k: [round(v, 4) for v in m.samples_ms] for k, m in samples.items()},
        "system": system_info("cpu-2core", 1)})
    _plot(stages, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.png')}", file=sys.stderr)
    return 0


def _plot(stages, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from onnxpose.bench.charts import readable
    from onnxpose.io import atomic_output
    order = [stage for stage, _ in STAGES] + ["scoring"]
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 4.2), squeeze=False)
    for ax, (count, per_preset) in zip(axes[0], stages.items()):
        names = list(per_preset)
        bottom = [0.0] * len(names)
        for stage in order:
            heights = [max(per_preset[n]["stage_ms"].get(stage, 0.0), 0.0) for n in names]
            ax.bar(names, heights, bottom=bottom, label=stage)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.set_title(f"{count} candidates, batch 1, one thread")
        ax.set_ylabel("decoder-only, median ms")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("multi-pose decoder: cost by stage, CPU (onnxruntime)")
    fig.tight_layout()
    with atomic_output(png) as path:
        fig.savefig(path, format="png", dpi=110)
        readable(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
