#!/usr/bin/env python3
"""Fill the results section of benchmarks/README.md from the committed result files.

Reads benchmarks/results/<label>/bench.json, single_pose_latency.json, the multi-pose
files (multi_pose_latency, _growth, _peers and _revision .json) and
rewrites the text between the ``<!-- results:start -->`` and
``<!-- results:end -->`` markers, so every number in the README comes from
those files.

    python3 benchmarks/update_readme.py [--label cpu-2core]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
CASES = ("raw", "raw+loop", "raw+numpy", "onnxpose-single", "raw-all", "onnxpose-multi",
         "tflite+numpy")


def ms(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def ratio(value) -> str:
    return "—" if value is None else f"×{value:.2f}"


def script_line(label: str, script: str, file: str, result: dict) -> str:
    return (f"`{script}` ([`{file}`](results/{label}/{file}), {result['created']}, median of "
            f"{result['runs']} runs, batch 1, CPU; command `{result['command']}`):")


def section(label: str) -> str:
    folder = HERE / "results" / label
    bench = json.loads((folder / "bench.json").read_text())
    system, config = bench["system"], bench["config"]
    p50 = {(r["provider"], r["batch"], r["case"]): r.get("p50_ms") for r in bench["results"]}
    batches = config["batches"]
    cases = [c for c in CASES if any(k[2] == c for k in p50)]
    lines = [
        f"Measured {bench['created']} on `{label}`: {system['cpu']}, {system['cpus_usable']} cores, "
        f"{system.get('memory_gib')} GiB, no GPU; {system['onnxruntime_package']} "
        f"{system['onnxruntime']}, TensorFlow {system.get('tensorflow')} (TFLite interpreter), "
        f"numpy {system['numpy']}. Load average at start {system.get('load_average_at_start')}, "
        f"at end {system.get('load_average_at_end')} (the machine is shared; see caveats).",
        "",
        f"Command: `{bench['command']}`",
        "",
        f"Files: [`bench.md`](results/{label}/bench.md) (all rows), "
        f"[`bench.json`](results/{label}/bench.json) (with raw samples), "
        f"[`bench_summary.csv`](results/{label}/bench_summary.csv), "
        f"[`bench_samples.csv`](results/{label}/bench_samples.csv), "
        f"[`bench_comparisons.csv`](results/{label}/bench_comparisons.csv), "
        f"[`placement.json`](results/{label}/placement.json).",
        "",
        "p50 latency per batch (ms), CPU execution provider (TFLite: its own interpreter, CPU):",
        "",
        "| batch | " + " | ".join(f"`{c}`" for c in cases) + " |",
        "| ---: | " + " | ".join("---:" for _ in cases) + " |",
    ]
    for batch in batches:
        row = [ms(p50.get(("tflite" if c == "tflite+numpy" else "cpu", batch, c))) for c in cases]
        lines.append(f"| {batch} | " + " | ".join(row) + " |")
    lines += ["", "Ratios from the same run (p50):", "",
              "| batch | decode overhead, single (onnxpose − raw) | decode overhead, multi "
              "(onnxpose − raw-all) | speedup vs (a) Python loop | vs (b) numpy | vs (d) TFLite | "
              "decoding alone: onnxpose single / loop / numpy / onnxpose multi (ms) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in bench["comparisons"]:
        if c["provider"] != "cpu":
            continue
        def overhead_text(kind):
            overhead = c.get(f"{kind}_decode_overhead_ms")
            return "—" if overhead is None else (
                f"{'+' if overhead >= 0 else '−'}{ms(abs(overhead))} ms "
                f"(×{c[f'{kind}_decode_overhead_ratio']:.3f})")
        alone = " / ".join(ms(c.get(k)) for k in ("decode_only_onnxpose_ms", "decode_only_loop_ms",
                                                  "decode_only_numpy_ms", "decode_only_multi_ms"))
        lines.append(f"| {c['batch']} | {overhead_text('single')} | {overhead_text('multi')} | "
                     f"{ratio(c.get('speedup_vs_loop'))} | "
                     f"{ratio(c.get('speedup_vs_numpy'))} | {ratio(c.get('speedup_vs_tflite'))} | "
                     f"{alone} |")
    skipped = [s for s in bench.get("skipped", []) if s.get("case")]
    for skip in skipped:
        lines += ["", f"Not measured: `{skip['case']}` ({skip['reason']})."]
    if bench.get("placement"):
        for p in bench["placement"]:
            counts = ", ".join(f"{n} on {prov}" for prov, n in sorted(p["decoder_nodes_by_provider"].items()))
            lines += ["", f"Placement ({p['provider']}, {p['case']}): {len(p['decoder_nodes'])} "
                          f"decoder nodes, {counts}."]
    lines += ["", f"![latency](results/{label}/latency.png)", "",
              f"![decode overhead](results/{label}/decode_overhead.png)"]

    latency_file = folder / "single_pose_latency.json"
    if latency_file.exists():
        latency = json.loads(latency_file.read_text())
        m = latency["median_ms"]
        lines += ["", script_line(label, "single_pose_latency.py", "single_pose_latency.json",
                                  latency), "",
                  "| raw model | onnxpose single-pose | decode added (built − raw) | "
                  "Python loop decoder, same heads | numpy decoder | onnxpose decoder alone |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |",
                  f"| {ms(m['raw'])} ms | {ms(m['onnxpose_single'])} ms | "
                  f"{'+' if m['decode_added'] >= 0 else '−'}{ms(abs(m['decode_added']))} ms | "
                  f"{ms(m['python_loop_decoder'])} ms | {ms(m['numpy_decoder'])} ms | "
                  f"{ms(m['onnxpose_decoder_only'])} ms |"]
    multi_file = folder / "multi_pose_latency.json"
    if multi_file.exists():
        multi = json.loads(multi_file.read_text())
        sets = session_sets(multi)
        runs = (f"{sets} sets of fresh sessions x {multi['runs']} runs, pooled" if sets > 1
                else f"{multi['runs']} runs")
        lines += ["", f"`multi_pose_decode.py` ([`multi_pose_latency.json`](results/{label}/"
                  f"multi_pose_latency.json), {multi['created']}, median of {runs}, "
                  f"CPU; command `{multi['command']}`):"]
        if multi.get("schema") == "onnxpose-multi-pose-latency/2":
            c = multi["synthetic_candidates"]
            for batch, row in multi["median_ms"].items():
                lines += ["", f"Batch {batch}: raw model, all heads {ms(row['raw_all_ms'])} ms.", "",
                          "| preset | onnxpose multi-pose | decode added (built − raw) | share | "
                          f"decoder alone, photo | decoder alone, {c} candidates | share |",
                          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
                for preset, p in row["presets"].items():
                    lines.append(f"| `{preset}` | {ms(p['built_ms'])} ms | "
                                 f"{'+' if p['decode_added_ms'] >= 0 else '−'}"
                                 f"{ms(abs(p['decode_added_ms']))} ms | "
                                 f"{100 * p['decode_added_share']:.1f} % | "
                                 f"{ms(p['decoder_only_photo_ms'])} ms | "
                                 f"{ms(p['decoder_only_synthetic_ms'])} ms | "
                                 f"{100 * p['synthetic_share']:.1f} % |")
    growth_file = folder / "multi_pose_growth.json"
    if growth_file.exists():
        growth = json.loads(growth_file.read_text())
        lines += ["", f"`multi_pose_growth.py` ([`multi_pose_growth.json`](results/{label}/"
                  f"multi_pose_growth.json), {growth['created']}; command `{growth['command']}`): "
                  f"{'no curve grows faster than linearly' if growth['check']['ok'] else 'superlinear: ' + '; '.join(growth['check']['violations'])}.",
                  "", "Candidates: typical heads (`candidate_heads`) and the heap orders' worst "
                  "case (`tied_candidate_heads`: all tied and crowded, the whole replay "
                  "needed); r = cost per candidate from 64 to 256 over the cost per "
                  "candidate from 0 to 64 (checked: r ≤ "
                  f"{growth['max_slope_ratio']} on the worst case, and on the typical heads for "
                  "the scan orders; a heap order's typical curve must stay within "
                  f"{growth.get('max_over_worst', '—')}x its worst case); p = the exponent of a "
                  "power law fitted "
                  f"(log-log) to the decode time over the grid and the batch (checked: p ≤ "
                  f"{growth['max_exponent']}); the per-candidate cost is the slope of a line over "
                  "0-256 candidates.", "",
                  "| preset | decoder alone at 0 / 64 / 256 candidates: typical; worst case "
                  "| r: typical; worst | p: grid | p: batch "
                  "| per candidate: typical; worst | heap replay per candidate: typical; worst |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for preset, pc in growth["per_candidate"].items():
            fits = {curve: growth["fits"][curve][preset] for curve in growth["fits"]}
            at = dict(zip(growth["curves"]["candidates"][preset]["x"],
                          growth["curves"]["candidates"][preset]["ms"]))
            worst = dict(zip(growth["curves"]["candidates_tied"][preset]["x"],
                             growth["curves"]["candidates_tied"][preset]["ms"]))
            extra = pc.get("heap_extra_ms_per_candidate")
            worst_extra = pc.get("worst_case_heap_extra_ms_per_candidate")
            lines.append(f"| `{preset}` | {ms(at[0])} / {ms(at[64])} / {ms(at[256])}; "
                         f"{ms(worst[0])} / {ms(worst[64])} / {ms(worst[256])} ms | "
                         f"{fits['candidates']['slope_ratio']:.2f}; "
                         f"{fits['candidates_tied']['slope_ratio']:.2f} | "
                         f"{fits['grid']['exponent']:.2f} | "
                         f"{fits['batch']['exponent']:.2f} | "
                         f"{1000 * pc['slope_ms_per_candidate']:.1f}; "
                         f"{1000 * pc['worst_case_slope_ms_per_candidate']:.1f} µs | "
                         + (f"{1000 * extra:.1f}; {1000 * worst_extra:.1f} µs |"
                            if extra is not None else "— |"))
        lines += ["", f"![growth](results/{label}/multi_pose_growth.png)"]
    lines += stages_lines(folder, label)
    peers_file = folder / "multi_pose_peers.json"
    if peers_file.exists():
        peers = json.loads(peers_file.read_text())
        lines += ["", f"`multi_pose_peers.py` ([`multi_pose_peers.json`](results/{label}/"
                  f"multi_pose_peers.json), {peers['created']}, batch 1, CPU; command "
                  f"`{peers['command']}`), median ms:"]
        for section_name, med in peers["median_ms"].items():
            lines += ["", f"| {section_name} | ms |", "| --- | ---: |"]
            lines += [f"| `{name}` | {ms(v)} |" for name, v in sorted(med.items(), key=lambda kv: kv[1])]
    lines += revision_lines(folder, label)
    return "\n".join(lines)


def session_sets(result: dict) -> int:
    """How many sets of sessions a multi_pose_decode.py run timed (``--sessions``)."""
    if result.get("sessions"):
        return int(result["sessions"])
    words = result.get("command", "").split()
    return int(words[words.index("--sessions") + 1]) if "--sessions" in words else 1


def stages_lines(folder: Path, label: str) -> list[str]:
    """The stage costs of ``multi_pose_stages.json`` (``multi_pose_stages.py``)."""
    path = folder / "multi_pose_stages.json"
    if not path.exists():
        return []
    run = json.loads(path.read_text())
    stages = ["candidates", "walk", "heap check", "heap replay", "nms", "scoring"]
    lines = ["", f"`multi_pose_stages.py` ([`multi_pose_stages.json`](results/{label}/"
             f"multi_pose_stages.json), {run['created']}, median of {run['runs']} runs, batch 1, "
             f"one thread, CPU; command `{run['command']}`): the decoder-only model cut after "
             "each stage; a stage's cost is its cut's median minus the cut before it (noise "
             "can make a small one negative)."]
    for count, per_preset in run["stages"].items():
        lines += ["", f"| {count} synthetic candidates | " + " | ".join(stages) + " | total |",
                  "| --- |" + " ---: |" * (len(stages) + 1)]
        for preset, row in per_preset.items():
            lines.append(f"| `{preset}` | " + " | ".join(
                ms(row["stage_ms"].get(stage)) for stage in stages)
                + f" | {ms(row['total_ms'])} ms |")
    return lines + ["", f"![stages](results/{label}/multi_pose_stages.png)"]


def revision_lines(folder: Path, label: str) -> list[str]:
    """The before/after table of ``multi_pose_revision.json`` (``revision_latency.py``)."""
    path = folder / "multi_pose_revision.json"
    if not path.exists():
        return []
    rev = json.loads(path.read_text())
    lines = ["", f"`revision_latency.py` ([`multi_pose_revision.json`](results/{label}/"
             f"multi_pose_revision.json), {rev['created']}, median of {rev['runs']} runs, CPU; "
             f"command `{rev['command']}`): the built models of revision `{rev['base']}` "
             "(base) and of this tree, timed together with the raw model; decode added = "
             "built − raw-all; decoder part = the built model cut at the raw model's outputs "
             "(8-bit heads in), one thread, timed in a second group (absent: files before "
             "schema 3):", "",
             "| batch | variant | raw-all ms | base: added ms (share) | this: added ms (share) "
             "| this / base (full model) | decoder part: base / this ms |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for batch, table in rev["by_batch"].items():
        parts = table.get("decoder_part", {})
        for name, row in table["variants"].items():
            part = parts.get(name)
            part_text = f"{ms(part['base_ms'])} / {ms(part['this_ms'])}" if part else "-"
            lines.append(f"| {batch} | `{name}` | {ms(table['raw_all_ms'])} | "
                         f"{ms(row['base_added_ms'])} ({100 * row['base_added_over_raw']:.1f} %) | "
                         f"{ms(row['this_added_ms'])} ({100 * row['this_added_over_raw']:.1f} %) | "
                         f"{row['this_over_base']:.3f} | {part_text} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="cpu-2core")
    args = parser.parse_args(argv)
    readme = HERE / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"update_readme: {readme} has no {START} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{section(args.label)}\n{END}{tail}"
    sys.path.insert(0, str(HERE.parent))
    from onnxpose.io import atomic_output
    with atomic_output(readme) as tmp:
        tmp.write_text(new, encoding="utf-8")
        tmp.chmod(0o644)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
