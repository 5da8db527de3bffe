#!/usr/bin/env python3
"""The runtime matrix: does each model kind load, run and decode exactly on each runtime?

Model kinds (built from $ONNXPOSE_SHARED/models, with --keep-heads so the decoder can be
checked alone): ``single``, ``multi-coral``, ``multi-tfjs`` and ``coral-decoder`` (the model with
Coral's PosenetDecoderOp: coral preset, heap tie order). Runtimes:

  ort-cpu         onnxruntime CPU EP (Python wheel): the baseline
  ort-node        onnxruntime-node, CPU (peers/ort_run.js)
  ort-web-node    onnxruntime-web, WASM, in node (peers/ort_run.js)
  browser-wasm    onnxruntime-web, WASM, headless Chromium (web/app.js's onnxposeRunRaw)
  browser-webgpu  onnxruntime-web, native WebGPU EP (ort.webgpu.min.js), headless Chromium
                  (SwiftShader without a GPU)
  browser-webgpu-jsep  onnxruntime-web, legacy JSEP WebGPU EP (ort.all.min.js), likewise; its
                  uint8 DequantizeLinear is wrong, so only the decoder alone is meaningful there
  openvino-cpu    OpenVINO CPU plugin, INFERENCE_PRECISION_HINT f32, shapes fixed to batch 1
  ort-openvino-ep onnxruntime's OpenVINO EP (onnxruntime-openvino, CPU, FP32), in its own
                  environment (scripts/install_openvino_ep.sh); records node placement
  cuda, tensorrt  rows "not measured here" (use `onnxpose bench --providers cuda,tensorrt`
                  on a machine with a GPU)

For each (kind, runtime): the full model on the test photo (batch 1) and the decoder alone on
onnxruntime CPU's heads: loads, runs, matches onnxruntime CPU (same pose counts, keypoints
within 1e-3 px, scores within 1e-5), median latency and its ratio to onnxruntime CPU's in the
same run. Every cell runs in its own process with a timeout; a failure is recorded with its
stage and first error line. Writes OUT.json, OUT.md and OUT.png (default
benchmarks/results/cpu-2core/runtimes.*).

    python3 benchmarks/runtimes.py [--input-size 481x641] [--runs 50] [--warmup 5]
        [--timeout 300] [--kinds single,multi-coral,...] [--runtimes ort-cpu,...] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from onnxpose.bench.runtimes import (RUNTIMES, compare, decoded, decoder_alone,  # noqa: E402
                                     head_feeds, run_cell)

KINDS = {  # kind: (source model, build options)
    "single": ("posenet_mobilenet_v1_075_353_481_quant.tflite", {"decoder": "single"}),
    "multi-coral": ("posenet_mobilenet_v1_075_353_481_quant.tflite", {"decoder": "multi"}),
    "multi-tfjs": ("posenet_mobilenet_v1_075_353_481_quant.tflite",
                   {"decoder": "multi", "multi_preset": "tfjs"}),
    "coral-decoder": ("posenet_mobilenet_v1_075_353_481_quant_decoder.tflite", {}),
}
GPU_ROWS = ("cuda", "tensorrt")
DEFAULT_OUT = REPO / "benchmarks" / "results" / "cpu-2core" / "runtimes"


def build(kind: str, shared: Path, input_size, cache: Path, multi_options: dict) -> Path:
    from onnxpose.build import build_model
    source, options = KINDS[kind]
    size = "x".join(map(str, input_size)) if input_size else "native"
    extra = "".join(f"_{k}-{v}" for k, v in sorted(multi_options.items()))
    out = cache / f"{kind}_{size}{extra}.onnx"
    if not out.exists():
        if multi_options and kind != "single":
            options = dict(options, multi_overrides=dict(multi_options))
        build_model(shared / "models" / source, out, keep_heads=True,
                    input_size=tuple(input_size) if input_size else None, **options)
    return out


def cell_summary(result: dict, baseline: dict | None, base_ms: float | None) -> dict:
    row = {"loads": result.get("ok") or result.get("stage") not in ("load", "crash", "timeout"),
           "runs": bool(result.get("ok"))}
    if not result.get("ok"):
        row.update(stage=result.get("stage"), error=result.get("error"))
        if result.get("stage") in ("timeout", "crash"):
            row["loads"] = None  # unknown
        return row
    row["median_ms"] = result["median_ms"]
    row["timed_runs"] = len(result["times_ms"])  # fewer than --runs: the cell's time budget
    row["short_of_runs"] = row["timed_runs"] < result.get("runs_asked", row["timed_runs"])
    row["version"] = result.get("version")
    if result.get("wasm_threads") is not None:
        row["wasm_threads"] = result["wasm_threads"]
    if base_ms:
        row["vs_ort_cpu"] = result["median_ms"] / base_ms
    if baseline is not None:
        row.update(compare(decoded(result["outputs"]), decoded(baseline["outputs"])))
    return row


def matrix(args) -> dict:
    from onnxpose import PoseSession
    shared = Path(args.shared)
    cache = REPO / ".cache" / "runtimes"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="onnxpose-runtimes-"))
    results = {}
    for kind in args.kinds:
        t0 = time.time()
        model = build(kind, shared, args.input_size, cache, args.multi_option)
        session = PoseSession(model, providers=["cpu"])
        tensor, _ = session.preprocess([shared / "images" / "test_couple.jpg"])
        feeds = {session.info.input_name: tensor}
        decoder = decoder_alone(model, cache / f"{model.stem}_decoder_alone.onnx")
        opts = dict(runs=args.runs, warmup=args.warmup, timeout=args.timeout, threads=args.threads)
        base = run_cell("ort-cpu", model, feeds, work / kind / "ort-cpu", **opts)
        if not base.get("ok"):
            raise SystemExit(f"{kind}: onnxruntime CPU failed: {base.get('error')}")
        heads = head_feeds(base["outputs"], session.multi_pose)
        dbase = run_cell("ort-cpu", decoder, heads, work / kind / "ort-cpu-decoder", **opts)
        rows = {}
        for runtime in args.runtimes:
            if runtime == "ort-cpu":
                full, dec = base, dbase
            else:
                full = run_cell(runtime, model, feeds, work / kind / runtime, **opts)
                dec = run_cell(runtime, decoder, heads, work / kind / f"{runtime}-decoder", **opts)
            rows[runtime] = {"full": cell_summary(full, base, base["median_ms"]),
                             "decoder": cell_summary(dec, dbase, dbase["median_ms"])}
            print(f"{kind:14} {runtime:15} full {_short(rows[runtime]['full']):40} "
                  f"decoder {_short(rows[runtime]['decoder'])}", flush=True)
        for runtime in GPU_ROWS:
            rows[runtime] = {"full": {"not_measured": "not measured here (no GPU)"},
                             "decoder": {"not_measured": "not measured here (no GPU)"}}
        results[kind] = {"model": str(model),
                         "input_size": [session.info.input_height, session.info.input_width],
                         "rows": rows, "seconds": round(time.time() - t0, 1)}
    return results


def _short(cell: dict) -> str:
    if "not_measured" in cell:
        return cell["not_measured"]
    if not cell["runs"]:
        return f"FAILS ({cell.get('stage')}): {cell.get('error')}"
    match = "exact" if cell.get("matches") else f"differs: {cell.get('why')}"
    ratio = f", {cell['vs_ort_cpu']:.2f}x ort-cpu" if "vs_ort_cpu" in cell else ""
    runs = f" ({cell['timed_runs']} runs: time budget)" if cell.get("short_of_runs") else ""
    return f"{match}, {cell['median_ms']:.2f} ms{runs}{ratio}"


def markdown(report: dict) -> str:
    kinds = list(report["results"])
    lines = [f"Runtime matrix, {report['system']['cpu']} ({report['system']['cores']} cores), "
             f"input {report['input_size']}, batch 1, median of {report['runs']} runs "
             f"(`benchmarks/runtimes.py`, {report['date']}). Each cell: full model / decoder "
             "alone on onnxruntime CPU's heads; exact = same pose counts, keypoints within "
             "1e-3 px, scores within 1e-5 of onnxruntime CPU; latency ratio vs onnxruntime CPU "
             "in the same run.", "",
             "| runtime | " + " | ".join(kinds) + " |", "| --- |" + " --- |" * len(kinds)]
    runtimes = list(next(iter(report["results"].values()))["rows"])
    for runtime in runtimes:
        cells = []
        for kind in kinds:
            row = report["results"][kind]["rows"][runtime]
            cells.append(f"full: {_short(row['full'])}<br>decoder: {_short(row['decoder'])}"
                         .replace("|", "\\|"))
        lines.append(f"| {runtime} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = list(report["results"])
    runtimes = [r for r in next(iter(report["results"].values()))["rows"] if r not in GPU_ROWS]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(runtimes)
    for i, runtime in enumerate(runtimes):
        values = [report["results"][k]["rows"][runtime]["full"].get("median_ms", 0) for k in kinds]
        bars = ax.bar([x + i * width for x in range(len(kinds))], values, width, label=runtime)
        for bar, kind in zip(bars, kinds):
            cell = report["results"][kind]["rows"][runtime]["full"]
            label = "fails" if not cell["runs"] else ("" if cell.get("matches") else "differs")
            if label:  # at the foot of the axis (x in data, y in axes coordinates)
                ax.text(bar.get_x() + width / 2, 0.02, label, ha="center", va="bottom",
                        rotation=90, fontsize=7, transform=ax.get_xaxis_transform())
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(kinds))], kinds)
    ax.set_ylabel("median latency, full model, batch 1 (ms)")
    ax.set_yscale("log")
    ax.set_title(f"onnxpose runtimes, input {report['input_size']} ({report['system']['cpu']})",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    import os
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", default=None,
                        help="HxW: rebuild the fully convolutional backbone at this size "
                             "(default: the shared models' 353x481)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: each runtime's default")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per cell")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--shared", default=os.environ.get("ONNXPOSE_SHARED", str(REPO.parent / "shared")))
    parser.add_argument("--multi-option", action="append", default=[], metavar="KEY=VALUE",
                        help="multi-pose build setting for the multi kinds, e.g. "
                             "control_flow=none (repeatable)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="path without extension")
    args = parser.parse_args(argv)
    args.input_size = tuple(int(v) for v in args.input_size.lower().split("x")) if args.input_size else None
    args.multi_option = dict(o.split("=", 1) for o in args.multi_option)
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = [k for k in args.kinds if k not in KINDS] + [r for r in args.runtimes if r not in RUNTIMES]
    if unknown:
        parser.error(f"unknown kinds/runtimes: {unknown}")
    if "ort-cpu" not in args.runtimes:
        args.runtimes.insert(0, "ort-cpu")
    from onnxpose.bench import system
    results = matrix(args)
    report = {"date": time.strftime("%Y-%m-%d"), "runs": args.runs, "warmup": args.warmup,
              "threads": args.threads, "timeout_s": args.timeout,
              "input_size": "x".join(map(str, args.input_size)) if args.input_size else "353x481",
              "system": {"cpu": system.cpu_model(), "cores": os.cpu_count(),
                         "load_average_at_start": system.load_average()},
              "multi_options": args.multi_option,
              "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(report))
    chart(report, out.with_suffix(".png"))
    print(f"wrote {out}.json, .md, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
