#!/usr/bin/env python3
"""How multi-pose decoding cost grows, CPU, every preset and tie order: against the number
of candidates, the grid and the batch. Writes multi_pose_growth.json and
multi_pose_growth.png under benchmarks/results/cpu-2core/.

Curves (each one group timed in alternating blocks, ``onnxpose.bench.timing.measure_group``):

* candidates: decoder-only models on the 23x31 grid (353x481 input), batch 1, fed synthetic
  heads with exactly C = 0, 10, 40, 64, 256 candidates (``candidate_heads``; K = C, since by
  default every candidate is tried);
* candidates_tied: the same on the heap orders' worst case (``tied_candidate_heads``: every
  candidate tied and crowded, so every image needs the heap's whole replay);
* grid: 353x481, 481x641, 721x1281 inputs (grids 23x31, 31x41, 46x81 at stride 16):
  (a) decoder-only models on those grids, batch 1, synthetic heads with 40 candidates, and
  (b) the full model rebuilt with ``build_model(..., input_size=(H, W))`` (the backbone is
  fully convolutional) against its raw model (cut before the decoder), on the photo resized
  to the input (candidate counts of the photo at each size recorded; validation skipped for
  these builds, the tests cover the decoder);
* batch: 1, 8, 32 images of synthetic heads with 40 candidates each, 23x31 grid.

Check (a printed verdict, not a test; ``--strict`` makes it the exit status): over the grid
and the batch, a power law ``t = c x^p`` fitted (log-log) to the decoder time must have
p ≤ 1.15. Over the candidates, the cost per candidate from 64 to 256 candidates must be at
most 1.5 times the cost per candidate from 0 to 64 (``MAX_SLOPE_RATIO``; a quadratic cost
gives 5, a linear one 1), on the worst-case heads for every preset and on the typical heads
for the scan orders. On the typical heads a heap order replays only the pops that can
change the poses (``queue_order``), so its cost switches from a partial replay to the whole
one as candidates crowd: there each point must instead stay within ``MAX_OVER_WORST``
(1.15) times the same point of its worst case (C > 0; at C = 0 the two are alike). (A power law fitted to the marginal cost t(C) − t(0) is printed
too, but not checked: at C = 10 that cost is well inside the run-to-run noise, so the fitted
exponent says more about the noise than about the growth.) The line fit's slope gives the
per-candidate cost; the heap orders' per-candidate cost is the slope of heap minus the
slope of scan of the same preset.

    python3 benchmarks/multi_pose_growth.py [--runs 50] [--warmup 5] [--no-full] [--quick]
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

CANDIDATES = (0, 10, 40, 64, 256)
SIZES = ((353, 481), (481, 641), (721, 1281))
BATCHES = (1, 8, 32)
FIXED_CANDIDATES = 40
MAX_EXPONENT = 1.15
MAX_SLOPE_RATIO = 1.5
MAX_OVER_WORST = 1.15


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--image", type=Path, default=IMAGE if IMAGE.exists() else None)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--full-runs", type=int, default=20, help="runs of the full models")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--presets", default=None, help="comma-separated subset")
    parser.add_argument("--no-full", action="store_true", help="skip the rebuilt full models")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a curve is superlinear")
    parser.add_argument("--quick", action="store_true", help="3 runs, 1 warm-up (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "multi_pose_growth.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.full_runs, args.warmup = 3, 3, 1
    return args


def _medians(group):
    for name, m in group.items():
        if m.error:
            raise RuntimeError(f"{name}: {m.error}")
    return {name: statistics.median(m.samples_ms) for name, m in group.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    import json
    from datetime import datetime, timezone
    from onnxpose.bench.charts import readable
    from onnxpose.bench.models import make_inputs, prepare
    from onnxpose.bench.multi_pose_bench import (candidate_heads, count_candidates,
                                                 decoder_only_file, head_feed, ort_runner,
                                                 power_fit, presets, slope_ratio,
                                                 tied_candidate_heads)
    from onnxpose.bench.options import session_options
    from onnxpose.bench.system import load_average, system_info
    from onnxpose.bench.timing import measure_group, summarize
    from onnxpose.build import build_model
    from onnxpose.io import atomic_output

    if missing_model("multi_pose_growth", args):
        return 2
    settings = presets(args.presets.split(",") if args.presets else None)
    options = session_options(args.threads)
    system = system_info("cpu-2core" if os.cpu_count() == 2 else None, args.threads)
    stride = 16
    grids = {size: (-(-size[0] // stride), -(-size[1] // stride)) for size in SIZES}
    base = grids[SIZES[0]]
    samples, curves = {}, {}

    def run(group_name, runners, runs):
        print(f"{group_name}: {len(runners)} cases x {runs} runs", file=sys.stderr)
        group = measure_group(runners, runs, args.warmup)
        for name, m in group.items():
            samples[f"{group_name}/{name}"] = m
        return _medians(group)

    with tempfile.TemporaryDirectory(prefix="onnxpose-growth-") as tmp:
        tmp = Path(tmp)
        # -- candidates ------------------------------------------------------------------
        for curve, heads in (("candidates", lambda c: candidate_heads(c, base, 1, seed=c,
                                                                      stride=stride)),
                             ("candidates_tied", lambda c: tied_candidate_heads(c, base, 1,
                                                                                seed=c))):
            runners = {}
            for c in CANDIDATES:
                feed = head_feed(*heads(c))
                for name, s in settings.items():
                    path = decoder_only_file(tmp, name, base, stride, s)
                    runners[f"{name}@C={c}"] = ort_runner(f"{name}@C={c}", path, feed, options)
            med = run(curve, runners, args.runs)
            curves[curve] = {name: {"x": list(CANDIDATES),
                                    "ms": [med[f"{name}@C={c}"] for c in CANDIDATES]}
                             for name in settings}
        # -- grid, decoder-only ----------------------------------------------------------
        runners = {}
        for size, grid in grids.items():
            feed = head_feed(*candidate_heads(FIXED_CANDIDATES, grid, 1, seed=1, stride=stride))
            for name, s in settings.items():
                path = decoder_only_file(tmp, name, grid, stride, s, size)
                runners[f"{name}@{grid[0]}x{grid[1]}"] = ort_runner(name, path, feed, options)
        med = run("grid", runners, args.runs)
        curves["grid"] = {name: {"x": [g[0] * g[1] for g in grids.values()],
                                 "grids": [list(g) for g in grids.values()],
                                 "ms": [med[f"{name}@{g[0]}x{g[1]}"] for g in grids.values()]}
                          for name in settings}
        # -- batch -----------------------------------------------------------------------
        runners = {}
        for batch in BATCHES:
            feed = head_feed(*candidate_heads(FIXED_CANDIDATES, base, batch, seed=2, stride=stride))
            for name, s in settings.items():
                path = decoder_only_file(tmp, name, base, stride, s)
                runners[f"{name}@N={batch}"] = ort_runner(name, path, feed, options)
        med = run("batch", runners, args.runs)
        curves["batch"] = {name: {"x": list(BATCHES),
                                  "ms": [med[f"{name}@N={b}"] for b in BATCHES]}
                           for name in settings}
        # -- grid, full models -----------------------------------------------------------
        full = None
        if not args.no_full:
            full = {"sizes": [list(s) for s in SIZES], "raw_all_ms": [], "added_ms": {},
                    "photo_candidates": []}
            for name in settings:
                full["added_ms"][name] = []
            for size in SIZES:
                work = tmp / f"full_{size[0]}x{size[1]}"
                work.mkdir()
                paths = {}
                for name, s in settings.items():
                    paths[name] = work / f"multi_{name}.onnx"
                    build_model(args.model, paths[name], decoder="multi", multi=s,
                                input_size=size, validate=False)
                prepared = prepare(paths[next(iter(settings))], work / "prepared", multi=True,
                                   tflite=False)
                info = prepared.info
                batch_input = make_inputs(info, (1,), args.image)[1]
                feed = {info.input_name: batch_input}
                from onnxpose.bench.run import raw_float_heads
                heads = raw_float_heads(prepared, batch_input, args.threads)
                full["photo_candidates"].append(int(count_candidates(heads["heatmaps"], 0.0)[0]))
                runners = {"raw-all": ort_runner("raw-all", prepared.raw["raw_all"].path, feed,
                                                 options)}
                for name in settings:
                    runners[name] = ort_runner(name, paths[name], feed, options)
                med = run(f"full{size[0]}x{size[1]}", runners, args.full_runs)
                full["raw_all_ms"].append(med["raw-all"])
                for name in settings:
                    full["added_ms"][name].append(med[name] - med["raw-all"])

    # -- fits and the check ------------------------------------------------------------
    fits, violations = {}, []
    for curve, per_preset in curves.items():
        fits[curve] = {}
        for name, data in per_preset.items():
            xs, ys = data["x"], data["ms"]
            if curve.startswith("candidates"):  # marginal cost over C = 0
                marginal = [y - ys[0] for y in ys]
                fit = power_fit(xs[1:], marginal[1:])
                fit["line"] = power_fit(xs, ys)
                fit["slope_ratio"] = slope_ratio(xs, ys, 64)
                if curve == "candidates" and settings[name].tie_order == "heap":
                    worst = curves["candidates_tied"][name]["ms"]
                    fit["over_worst"] = max(y / w for x, y, w in zip(xs, ys, worst) if x)
                    if not fit["over_worst"] <= MAX_OVER_WORST:
                        violations.append(f"{curve}/{name}: {fit['over_worst']:.2f} x its "
                                          "worst case")
                elif not fit["slope_ratio"] <= MAX_SLOPE_RATIO:   # NaN: no cost below 64
                    violations.append(f"{curve}/{name}: per-candidate cost above 64 "
                                      f"{fit['slope_ratio']:.2f} x the cost below")
            else:
                fit = power_fit(xs, ys)
                if fit["exponent"] == fit["exponent"] and fit["exponent"] > MAX_EXPONENT:
                    violations.append(f"{curve}/{name}: exponent {fit['exponent']:.2f}")
            fits[curve][name] = fit
    per_candidate = {}
    for name, s in settings.items():
        scan = f"{s.preset}-scan"
        line = fits["candidates"][name]["line"]["slope_per_unit_ms"]
        worst = fits["candidates_tied"][name]["line"]["slope_per_unit_ms"]
        entry = {"slope_ms_per_candidate": line, "worst_case_slope_ms_per_candidate": worst}
        if s.tie_order == "heap" and scan in fits["candidates"]:
            entry["heap_extra_ms_per_candidate"] = (
                line - fits["candidates"][scan]["line"]["slope_per_unit_ms"])
            entry["worst_case_heap_extra_ms_per_candidate"] = (
                worst - fits["candidates_tied"][scan]["line"]["slope_per_unit_ms"])
        per_candidate[name] = entry

    print(f"\nmedian ms (decoder-only, CPU); exponent p of t ~ x^p (candidates: of t(C) - t(0),"
          " and r: cost per candidate above 64 over the cost below)")
    for curve, per_preset in curves.items():
        print(f"{curve}: x = {next(iter(per_preset.values()))['x']}")
        for name, data in per_preset.items():
            fit = fits[curve][name]
            print(f"  {name:<21} " + " ".join(f"{v:8.3f}" for v in data["ms"])
                  + f"   p = {fit['exponent']:.2f}"
                  + (f"  r = {fit['slope_ratio']:.2f}" if "slope_ratio" in fit else "")
                  + (f"  {fit['over_worst']:.2f} x worst" if "over_worst" in fit else ""))
    print("per candidate (line fit over C):")
    for name, entry in per_candidate.items():
        extra = entry.get("heap_extra_ms_per_candidate")
        worst = entry.get("worst_case_heap_extra_ms_per_candidate")
        print(f"  {name:<21} {1000 * entry['slope_ms_per_candidate']:7.2f} us/candidate"
              f" ({1000 * entry['worst_case_slope_ms_per_candidate']:.2f} worst case)"
              + (f"  (heap replay: +{1000 * extra:.2f} us/candidate over scan, "
                 f"+{1000 * worst:.2f} worst case)" if extra is not None else ""))
    if full:
        print(f"full models, decode added (built - raw-all) at {full['sizes']}: raw-all "
              + " ".join(f"{v:.2f}" for v in full["raw_all_ms"]) + " ms; photo candidates (logit >= 0) "
              f"{full['photo_candidates']}")
        for name, added in full["added_ms"].items():
            print(f"  {name:<21} " + " ".join(f"{v:+8.3f}" for v in added))
    verdict = (f"ok: no curve grows faster than linearly (grid, batch: p <= {MAX_EXPONENT}; "
               f"candidates: r <= {MAX_SLOPE_RATIO}, heap orders' typical cost <= "
               f"{MAX_OVER_WORST} x their worst case)"
               if not violations else "CHECK FAILED: " + "; ".join(violations))
    print(verdict)

    system["load_average_at_end"] = load_average()
    result = {"schema": "onnxpose-multi-pose-growth/3",
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python3 benchmarks/multi_pose_growth.py" + "".join(
                  f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
              "model": Path(args.model).name, "provider": "CPUExecutionProvider",
              "runs": args.runs, "full_runs": args.full_runs, "warmup": args.warmup,
              "quick": args.quick, "threads": args.threads,
              "fixed_candidates": FIXED_CANDIDATES,
              "settings": {n: s.to_dict() for n, s in settings.items()},
              "curves": curves, "full_models": full, "fits": fits,
              "per_candidate": per_candidate, "max_exponent": MAX_EXPONENT,
              "max_slope_ratio": MAX_SLOPE_RATIO, "max_over_worst": MAX_OVER_WORST,
              "check": {"ok": not violations, "violations": violations},
              "summary": {n: summarize(m.samples_ms, 1) for n, m in samples.items()},
              "samples_ms": {n: [round(v, 4) for v in m.samples_ms] for n, m in samples.items()},
              "system": system}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out) as path:
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        readable(path)
    png = args.out.with_suffix(".png")
    _plot(curves, full, png)
    print(f"wrote {args.out} and {png}", file=sys.stderr)
    return 1 if (violations and args.strict) else 0


def _plot(curves, full, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from onnxpose.bench.charts import readable
    from onnxpose.io import atomic_output
    panels = [("candidates", "candidates above the threshold (23x31 grid, batch 1)"),
              ("candidates_tied", "candidates, all tied and crowded (heap worst case)"),
              ("grid", f"grid cells (h*w), {FIXED_CANDIDATES} candidates, batch 1"),
              ("batch", f"batch ({FIXED_CANDIDATES} candidates per image, 23x31)")]
    count = len(panels) + (1 if full else 0)
    fig, axes = plt.subplots(1, count, figsize=(5 * count, 4.2))
    for ax, (curve, label) in zip(axes, panels):
        for name, data in curves[curve].items():
            ax.plot(data["x"], data["ms"], marker="o", label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("decoder-only, median ms")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if full:
        ax = axes[-1]
        cells = [(-(-h // 16)) * (-(-w // 16)) for h, w in full["sizes"]]
        for name, added in full["added_ms"].items():
            ax.plot(cells, added, marker="o", label=name)
        ax.set_xlabel("grid cells (full model, photo resized)")
        ax.set_ylabel("built − raw-all, median ms")
        ax.grid(alpha=0.3)
    fig.suptitle("multi-pose decoding cost growth, CPU (onnxruntime)")
    fig.tight_layout()
    with atomic_output(png) as path:
        fig.savefig(path, format="png", dpi=110)
        readable(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
