"""Timing: first-run cost, warm-up, then timed runs in alternating blocks.

The cases of one (provider, batch) group are timed in blocks of ``block`` runs,
rotating through the cases, so that slow drifts of the machine (other load,
clock changes) hit every case alike. Switching to another session costs a few
slow runs (its thread pool and caches are cold), so each block starts with
``rewarm`` untimed runs. Each run is timed on its own with
``time.perf_counter_ns`` and the garbage collector off.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Measurement:
    create_s: float = math.nan
    first_run_ms: float = math.nan
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None  # why the case could not run (first run failed)


def summarize(samples_ms, batch: int) -> dict:
    """Percentiles (ms), mean, spread and throughput (images per second).

    ``iqr_ms`` (p75 - p25) is the spread the report compares differences of p50 with: a
    difference smaller than the cases' spreads is reported as within noise.
    """
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        return {}
    p25, p50, p75, p90, p99 = np.percentile(values, [25, 50, 75, 90, 99])
    mean = float(values.mean())
    return {"p50_ms": float(p50), "p25_ms": float(p25), "p75_ms": float(p75),
            "iqr_ms": float(p75 - p25), "p90_ms": float(p90), "p99_ms": float(p99),
            "mean_ms": mean, "std_ms": float(values.std()), "min_ms": float(values.min()),
            "max_ms": float(values.max()),
            "throughput_ips": float(batch * 1000.0 / mean) if mean > 0 else math.nan}


def _timed(call) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6


def first_run(runner) -> Measurement:
    """Create (session, engine) and run once: the cost before the first result."""
    start = time.perf_counter_ns()
    runner.create()
    created = time.perf_counter_ns()
    runner()
    done = time.perf_counter_ns()
    return Measurement((created - start) / 1e9, (done - created) / 1e6)


def measure_group(runners: dict, runs: int, warmup: int, block: int = 10,
                  tick=lambda name: None, on_error=None, rewarm: int | None = None
                  ) -> dict[str, Measurement]:
    """Time every runner ``runs`` times (after ``warmup`` runs), alternating blocks.

    A runner whose creation or first run raises OnnxPoseError is reported through
    ``on_error(name, exc)``, keeps the error in its Measurement and is not timed.
    """
    from onnxpose.errors import OnnxPoseError
    results = {}
    for name, runner in runners.items():
        try:
            results[name] = first_run(runner)
        except OnnxPoseError as exc:
            results[name] = Measurement(error=exc.reason)
            if on_error is not None:
                on_error(name, exc.reason)
        tick(name)
    names = [name for name in runners if results[name].error is None]
    for name in names:
        for _ in range(warmup):
            runners[name]()
            tick(name)
    if not names:
        return results
    block = max(1, min(block, runs))
    rewarm = min(warmup, 3) if rewarm is None else rewarm
    done = {name: 0 for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for round_index in range(math.ceil(runs / block)):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                runner, samples = runners[name], results[name].samples_ms
                if len(names) > 1:
                    for _ in range(rewarm):
                        runner()
                for _ in range(min(block, runs - done[name])):
                    samples.append(_timed(runner))
                    tick(name)
                done[name] = len(samples)
    finally:
        if gc_was_enabled:
            gc.enable()
    return results
