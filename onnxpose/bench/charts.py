"""PNG charts (matplotlib, Agg backend): latency by provider and batch; decode overhead."""

from __future__ import annotations

import math
from pathlib import Path

from onnxpose.io import atomic_output

COLORS = {"decode:onnxpose-single": "#1f77b4", "decode:onnxpose-multi": "#17becf",
          "decode:loop": "#d62728", "decode:numpy": "#ff7f0e", "raw": "#9e9e9e", "raw+loop": "#d62728", "raw+numpy": "#ff7f0e",
          "onnxpose-single": "#1f77b4", "raw-all": "#c7c7c7", "onnxpose-multi": "#17becf",
          "tflite+numpy": "#2ca02c"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        readable(tmp)
    return path


def readable(path: Path) -> None:
    """Temp files are created 0600; give the result the usual umask-based mode."""
    import os
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _ok(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def latency_chart(results: dict, path: Path) -> Path:
    """A grid of panels, one row per batch size and one column per provider: p50 latency
    per batch of every case (linear, from 0), whiskers to p90, values written on the bars."""
    plt = _pyplot()
    records = [dict(r) for r in results["results"]
               if _ok(r.get("p50_ms")) and not r["case"].startswith("decode:")]
    if any(r["provider"] == "cpu" for r in records):
        for r in records:  # TFLite runs on the CPU: show it beside the CPU cases
            if r["provider"] == "tflite":
                r["provider"] = "cpu"
    providers = list(dict.fromkeys(r["provider"] for r in records)) or ["none"]
    batches = sorted({r["batch"] for r in records}) or [1]
    fig, axes = plt.subplots(len(batches), len(providers), squeeze=False,
                             figsize=(6.5 * len(providers), 3.2 * len(batches) + 0.8))
    for row, batch in enumerate(batches):
        for column, provider in enumerate(providers):
            ax = axes[row][column]
            rows = [r for r in records if r["provider"] == provider and r["batch"] == batch]
            names = [r["case"] for r in rows]
            values = [r["p50_ms"] for r in rows]
            errors = [max(r["p90_ms"] - r["p50_ms"], 0.0) for r in rows]
            bars = ax.barh(range(len(rows)), values, xerr=[[0] * len(rows), errors], capsize=2,
                           color=[COLORS.get(n, "#7f7f7f") for n in names])
            for bar, value, error in zip(bars, values, errors):
                ax.text(value + error, bar.get_y() + bar.get_height() / 2, f"  {value:.3g}",
                        va="center", ha="left", fontsize=7)
            ax.set_yticks(range(len(rows)), names, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, max([v + e for v, e in zip(values, errors)] or [1]) * 1.25)
            ax.grid(axis="x", alpha=0.3)
            title = provider + (" + TFLite interpreter" if "tflite+numpy" in names
                                and provider != "tflite" else "")
            ax.set_title(f"{title}, batch {batch}", fontsize=10)
            if row == len(batches) - 1:
                ax.set_xlabel("ms per batch (p50, whisker to p90)")
    label = results["system"].get("label") or results["system"].get("machine")
    fig.suptitle(f"onnxpose bench: latency by provider and batch ({label})")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _grouped_bars(ax, rows, labels, series, ylabel: str, title: str) -> None:
    """One group of bars per comparison row, one bar per (key, name, colour) of ``series``."""
    width = 0.78 / len(series)
    centre = (len(series) - 1) / 2
    for index, (key, name, color) in enumerate(series):
        xs = [i + (index - centre) * width for i, c in enumerate(rows) if _ok(c.get(key))]
        ys = [c[key] for c in rows if _ok(c.get(key))]
        if ys:
            ax.bar(xs, ys, width, label=name, color=color)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def decode_overhead_chart(results: dict, path: Path) -> Path:
    """Left: decode overhead (ms, onnxpose − raw). Middle: speedups of onnxpose single-pose.
    Right: decoding alone on the same heads."""
    plt = _pyplot()
    rows = results["comparisons"]
    labels = [f"{c['provider']}\nbatch {c['batch']}" for c in rows] or ["none"]
    fig, (left, right, alone) = plt.subplots(1, 3, figsize=(18, 4.5))
    _grouped_bars(left, rows, labels,
                  [("single_decode_overhead_ms", "single-pose", COLORS["onnxpose-single"]),
                   ("multi_decode_overhead_ms", "multi-pose", COLORS["onnxpose-multi"])],
                  "ms per batch (p50 onnxpose − p50 raw)", "decode overhead of in-graph decoding")
    left.axhline(0, color="black", linewidth=0.8)
    left.grid(axis="y", alpha=0.3)
    left.legend(fontsize=8)
    speedups = [("speedup_vs_loop", "vs (a) Python loop", COLORS["raw+loop"]),
                ("speedup_vs_numpy", "vs (b) numpy", COLORS["raw+numpy"]),
                ("speedup_vs_tflite", "vs (d) TFLite", COLORS["tflite+numpy"])]
    _grouped_bars(right, rows, labels, speedups,
                  "× (p50 alternative ÷ p50 onnxpose single-pose)", "speedup of onnxpose single-pose")
    right.axhline(1, color="black", linewidth=0.8)
    tops = [c[k] for c in rows for k, _, _ in speedups if _ok(c.get(k))]
    right.set_ylim(0, max(tops + [1.0]) * 1.35)  # room for the legend
    right.grid(axis="y", alpha=0.3)
    right.legend(fontsize=8)
    decoding = [("decode_only_onnxpose_ms", "onnxpose decoder (provider)", COLORS["onnxpose-single"]),
                ("decode_only_multi_ms", "onnxpose multi-pose decoder", COLORS["onnxpose-multi"]),
                ("decode_only_loop_ms", "Python loop (CPU)", COLORS["raw+loop"]),
                ("decode_only_numpy_ms", "numpy (CPU)", COLORS["raw+numpy"])]
    _grouped_bars(alone, rows, labels, decoding, "ms per batch (p50)", "decoding alone, same heads")
    alone.set_yscale("log")
    alone.grid(axis="y", which="both", alpha=0.3)
    if any(_ok(c.get(k)) for c in rows for k, _, _ in decoding):
        alone.legend(fontsize=8)
    label = results["system"].get("label") or results["system"].get("machine")
    fig.suptitle(f"onnxpose bench: decode overhead and speedups ({label})")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
