"""Benchmark results → comparisons, JSON, CSV (summary and raw samples) and Markdown."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from onnxpose.io import atomic_output

SUMMARY_FIELDS = ("provider", "batch", "case", "label", "runs", "warmup", "p50_ms", "p25_ms",
                  "p75_ms", "iqr_ms", "p90_ms",
                  "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "throughput_ips",
                  "session_create_s", "first_run_ms", "max_position_diff_px", "max_score_diff",
                  "error")
COMPARISON_FIELDS = ("provider", "batch", "single_decode_overhead_ms",
                     "single_decode_overhead_ratio", "single_decode_overhead_noise_ms",
                     "single_decode_overhead_within_noise", "multi_decode_overhead_ms",
                     "multi_decode_overhead_ratio", "multi_decode_overhead_noise_ms",
                     "multi_decode_overhead_within_noise", "speedup_vs_loop", "speedup_vs_numpy",
                     "speedup_vs_tflite", "decode_only_onnxpose_ms", "decode_only_multi_ms",
                     "decode_only_loop_ms", "decode_only_numpy_ms", "decode_only_speedup_vs_loop",
                     "decode_only_speedup_vs_numpy")
TFLITE = "tflite"  # the TFLite interpreter (CPU)
PYTHON = "python"  # Python decoding alone (host CPU)
HOSTS = (TFLITE, PYTHON)


def _p50(record) -> float | None:
    value = record.get("p50_ms") if record else None
    return value if value is not None and not math.isnan(value) and value > 0 else None


def _iqr(record) -> float | None:
    value = record.get("iqr_ms") if record else None
    return value if value is not None and not math.isnan(value) else None


def noise_ms(a: dict | None, b: dict | None) -> float | None:
    """The spread a difference of two cases' p50 must exceed to mean something: the sum of
    their interquartile ranges (p25..p75 of the timed runs); None without samples."""
    spreads = (_iqr(a), _iqr(b))
    return None if None in spreads else spreads[0] + spreads[1]


def _overhead_fields(row: dict, name: str, case: dict | None, base: dict | None) -> None:
    value, reference = _p50(case), _p50(base)
    if not (value and reference):
        return
    row[f"{name}_decode_overhead_ms"] = value - reference
    row[f"{name}_decode_overhead_ratio"] = value / reference
    noise = noise_ms(case, base)
    if noise is not None:
        row[f"{name}_decode_overhead_noise_ms"] = noise
        row[f"{name}_decode_overhead_within_noise"] = abs(value - reference) < noise


def comparisons(records: list[dict]) -> list[dict]:
    """Per (provider, batch): decode overhead of the in-graph decoders and speedups (ratios of p50)."""
    by = {(r["provider"], r["batch"], r["case"]): r for r in records}
    groups = sorted({(r["provider"], r["batch"]) for r in records if r["provider"] not in HOSTS},
                    key=lambda g: (_provider_rank(g[0]), g[1]))
    out = []
    for provider, batch in groups:
        get = lambda case: _p50(by.get((provider, batch, case)))
        single, multi = get("onnxpose-single"), get("onnxpose-multi")
        raw, raw_all = get("raw"), get("raw-all")
        loop, numpy_ = get("raw+loop"), get("raw+numpy")
        tflite = _p50(by.get((TFLITE, batch, "tflite+numpy")))
        row = {"provider": provider, "batch": batch}
        record = lambda case: by.get((provider, batch, case))
        _overhead_fields(row, "single", record("onnxpose-single"), record("raw"))
        _overhead_fields(row, "multi", record("onnxpose-multi"), record("raw-all"))
        if single and loop:
            row["speedup_vs_loop"] = loop / single
        if single and numpy_:
            row["speedup_vs_numpy"] = numpy_ / single
        if single and tflite:
            row["speedup_vs_tflite"] = tflite / single
        decode_single, decode_multi = get("decode:onnxpose-single"), get("decode:onnxpose-multi")
        decode_loop = _p50(by.get((PYTHON, batch, "decode:loop")))
        decode_numpy = _p50(by.get((PYTHON, batch, "decode:numpy")))
        for key, value in (("decode_only_onnxpose_ms", decode_single),
                           ("decode_only_multi_ms", decode_multi),
                           ("decode_only_loop_ms", decode_loop),
                           ("decode_only_numpy_ms", decode_numpy)):
            if value:
                row[key] = value
        if decode_single and decode_loop:
            row["decode_only_speedup_vs_loop"] = decode_loop / decode_single
        if decode_single and decode_numpy:
            row["decode_only_speedup_vs_numpy"] = decode_numpy / decode_single
        out.append(row)
    return out


def _provider_rank(provider: str) -> int:
    order = ("cpu", "cuda", "tensorrt", TFLITE, PYTHON)
    return order.index(provider) if provider in order else len(order)


def _write_text(path: Path, text: str) -> Path:
    from onnxpose.bench.charts import readable
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        readable(tmp)
    return path


def _csv_text(fields, rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in fields})
    return buffer.getvalue()


def _csv_value(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def summary_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        agreement = r.get("agreement") or {}
        rows.append({**r, "max_position_diff_px": agreement.get("max_position_diff_px"),
                     "max_score_diff": agreement.get("max_score_diff")})
    return rows


def sample_rows(records: list[dict]):
    for r in records:
        for index, value in enumerate(r.get("samples_ms", [])):
            yield {"provider": r["provider"], "batch": r["batch"], "case": r["case"],
                   "run": index, "latency_ms": value}


def _json_safe(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _fmt(value, digits=2, suffix=""):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}{suffix}"


def _ms(value):
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def _overhead(comparison: dict, name: str) -> str:
    ms = comparison.get(f"{name}_decode_overhead_ms")
    if ms is None:
        return "—"
    ratio = comparison[f"{name}_decode_overhead_ratio"]
    text = f"{'+' if ms >= 0 else '−'}{_ms(abs(ms))} ms (×{ratio:.3f})"
    noise = comparison.get(f"{name}_decode_overhead_noise_ms")
    if noise is not None:
        text += f" ±{_ms(noise)}"
        if comparison.get(f"{name}_decode_overhead_within_noise"):
            text += ", within noise"
    return text


def _spread(record: dict) -> str:
    if record.get("p25_ms") is None:
        return "—"
    return f"{_ms(record['p25_ms'])}–{_ms(record['p75_ms'])}"


def _speedup(value):
    return "—" if value is None else f"×{value:.2f}"


def markdown(results: dict) -> str:
    system, config = results["system"], results["config"]
    lines = [f"# onnxpose bench: {Path(results['model']['source']).name}", ""]
    gpu = ", ".join(g["name"] for g in system.get("gpus") or []) or "none"
    lines += [
        f"- when: {results['created']}" + (f"; command: `{results['command']}`"
                                           if results.get("command") else ""),
        f"- machine: {system.get('label') or system.get('machine')}; CPU: {system['cpu']} "
        f"({system['cpus_usable']} usable of {system['cpu_count']}); memory "
        f"{system.get('memory_gib')} GiB; GPU: {gpu}; load average at start "
        f"{system.get('load_average_at_start')}, at end {system.get('load_average_at_end')}",
        f"- onnxpose {system['onnxpose']}, {system['onnxruntime_package']} {system['onnxruntime']} "
        f"(usable providers: {', '.join(system['onnxruntime_usable_providers'])}), TensorRT "
        f"{system.get('tensorrt') or 'not installed'}, TensorFlow {system.get('tensorflow') or '—'}, "
        f"numpy {system['numpy']}, Python {system['python']}",
        f"- {config['runs']} timed runs per case after {config['warmup']} warm-up runs; "
        f"intra-op threads: {config['threads'] or 'onnxruntime default'}; input: "
        f"{config['input']}",
    ]
    for skip in results.get("skipped", []):
        if skip.get("provider"):
            lines.append(f"- {skip['reason']}")
        else:
            lines.append(f"- skipping {skip['case']}: {skip['reason']}")
    lines += ["", "## Latency per batch (ms) and throughput", "",
              "| provider | batch | case | p50 | p25–p75 | p90 | p99 | images/s | session create (s) | first run (ms) |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["results"]:
        if r.get("error"):
            lines.append(f"| {r['provider']} | {r['batch']} | {r['case']} | failed: {r['error']} "
                         "| | | | | | |")
            continue
        lines.append(f"| {r['provider']} | {r['batch']} | {r['case']} | {_ms(r['p50_ms'])} | "
                     f"{_spread(r)} | {_ms(r['p90_ms'])} | {_ms(r['p99_ms'])} | {_fmt(r['throughput_ips'], 1)} | "
                     f"{_fmt(r['session_create_s'], 3)} | {_ms(r['first_run_ms'])} |")
    lines += ["", "## In-graph decoding vs the alternatives (ratios of p50, same run)", "",
              "Decode overhead: onnxpose model − raw model (same backbone, heads only); ± is "
              "the noise, the two cases' p25–p75 spreads added, and a difference smaller than "
              "it is marked within noise (more --runs narrow it). "
              "Speedup: p50 of the alternative ÷ p50 of the onnxpose single-pose model "
              "(TFLite runs on the CPU).", "",
              "| provider | batch | decode overhead, single | decode overhead, multi | "
              "speedup vs (a) Python loop | vs (b) numpy | vs (d) TFLite |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in results["comparisons"]:
        lines.append(f"| {c['provider']} | {c['batch']} | "
                     f"{_overhead(c, 'single')} | {_overhead(c, 'multi')} | "
                     f"{_speedup(c.get('speedup_vs_loop'))} | {_speedup(c.get('speedup_vs_numpy'))} | "
                     f"{_speedup(c.get('speedup_vs_tflite'))} |")
    if any(c.get("decode_only_onnxpose_ms") or c.get("decode_only_loop_ms") for c in results["comparisons"]):
        lines += ["", "## Decoding alone, on the same float heads (p50, ms per batch)", "",
                  "Python decoders run on the host CPU; the onnxpose decoder-only model runs on the "
                  "provider.", "",
                  "| provider | batch | onnxpose single-pose | onnxpose multi-pose | Python loop | numpy | "
                  "speedup vs loop | vs numpy |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for c in results["comparisons"]:
            lines.append(f"| {c['provider']} | {c['batch']} | {_ms(c.get('decode_only_onnxpose_ms'))} | "
                         f"{_ms(c.get('decode_only_multi_ms'))} | {_ms(c.get('decode_only_loop_ms'))} | "
                         f"{_ms(c.get('decode_only_numpy_ms'))} | "
                         f"{_speedup(c.get('decode_only_speedup_vs_loop'))} | "
                         f"{_speedup(c.get('decode_only_speedup_vs_numpy'))} |")
    lines += ["", "Cases:", ""]
    for case in results["model"]["cases"]:
        lines.append(f"- `{case['id']}`: {case['label']}")
    if results.get("placement"):
        lines += ["", "## Placement of decoder nodes", ""]
        for p in results["placement"]:
            counts = ", ".join(f"{n} on {prov}" for prov, n in sorted(p["decoder_nodes_by_provider"].items()))
            lines.append(f"- {p['provider']} / {p['case']}: {len(p['decoder_nodes'])} decoder nodes: "
                         f"{counts}")
    return "\n".join(lines) + "\n"


#: every file ``write_reports`` may write into the output directory
REPORT_FILES = ("bench.json", "bench_summary.csv", "bench_samples.csv", "bench_comparisons.csv",
                "bench.md", "latency.png", "decode_overhead.png", "placement.json")


def write_reports(results: dict, out: Path) -> list[Path]:
    """bench.json, bench_summary.csv, bench_samples.csv, bench_comparisons.csv, bench.md,
    latency.png, decode_overhead.png and (with placement) placement.json; all atomic."""
    from onnxpose.bench.charts import decode_overhead_chart, latency_chart
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write_text(out / "bench.json", json.dumps(_json_safe(results), indent=1) + "\n"),
        _write_text(out / "bench_summary.csv", _csv_text(SUMMARY_FIELDS, summary_rows(results["results"]))),
        _write_text(out / "bench_samples.csv",
                    _csv_text(("provider", "batch", "case", "run", "latency_ms"),
                              sample_rows(results["results"]))),
        _write_text(out / "bench_comparisons.csv", _csv_text(COMPARISON_FIELDS, results["comparisons"])),
        _write_text(out / "bench.md", markdown(results)),
        latency_chart(results, out / "latency.png"),
        decode_overhead_chart(results, out / "decode_overhead.png"),
    ]
    if results.get("placement") is not None:
        written.append(_write_text(out / "placement.json",
                                   json.dumps(_json_safe(results["placement"]), indent=1) + "\n"))
    return written
