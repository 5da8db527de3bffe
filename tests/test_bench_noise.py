"""Issue 10, 3.10: a decode overhead smaller than the timing spread is reported as noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxpose.bench.report import comparisons, markdown
from onnxpose.bench.timing import summarize


def _record(case, samples, provider="cpu", batch=1):
    return {"provider": provider, "batch": batch, "case": case, "label": case,
            "session_create_s": 0.1, "first_run_ms": 1.0, **summarize(samples, batch)}


def _results(records):
    system = {"label": "test", "cpu": "cpu", "cpus_usable": 2, "cpu_count": 2, "onnxpose": "x",
              "onnxruntime_package": "onnxruntime", "onnxruntime": "1", "numpy": "2",
              "python": "3", "onnxruntime_usable_providers": ["CPUExecutionProvider"]}
    config = {"runs": 5, "warmup": 0, "threads": None, "input": "random"}
    return {"model": {"source": "m.tflite", "cases": []}, "system": system, "config": config,
            "created": "now", "results": records, "comparisons": comparisons(records)}


def test_summarize_reports_the_interquartile_spread():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 5.0], batch=1)
    assert (stats["p25_ms"], stats["p75_ms"], stats["iqr_ms"]) == (2.0, 4.0, 2.0)


def test_noisy_negative_overhead_is_marked_within_noise():
    # few runs of a noisy machine: the onnxpose model's p50 comes out 19.8 ms *below* raw
    raw = [79.2, 95.0, 70.0, 120.0, 60.0]
    single = [58.0, 60.0, 59.4, 110.0, 50.0]
    (row,) = comparisons([_record("raw", raw), _record("onnxpose-single", single)])
    assert row["single_decode_overhead_ms"] == pytest.approx(59.4 - 79.2)
    noise = (np.percentile(raw, 75) - np.percentile(raw, 25)
             + np.percentile(single, 75) - np.percentile(single, 25))
    assert row["single_decode_overhead_noise_ms"] == pytest.approx(noise)
    assert row["single_decode_overhead_within_noise"] is True
    text = markdown(_results([_record("raw", raw), _record("onnxpose-single", single)]))
    line = next(l for l in text.splitlines() if l.startswith("| cpu | 1 | −19.80 ms"))
    assert "within noise" in line and "±" in line
    assert "| p25–p75 |" in text
    json.dumps(row, allow_nan=False)


def test_clear_overhead_is_not_noise():
    raw = [10.0, 10.1, 10.0, 9.9, 10.0]
    single = [12.0, 12.1, 12.0, 11.9, 12.0]
    (row,) = comparisons([_record("raw", raw), _record("onnxpose-single", single)])
    assert row["single_decode_overhead_within_noise"] is False
    text = markdown(_results([_record("raw", raw), _record("onnxpose-single", single)]))
    line = next(l for l in text.splitlines() if l.startswith("| cpu | 1 | +2.00 ms"))
    assert "within noise" not in line
