"""Smoke benchmark (``onnxpose bench``) on the real model, CPU provider only.

Checks that the results are well-formed (JSON, CSV, Markdown, PNG), that a
requested provider that cannot run here is skipped with one clear line, and
that the placement report gives every decoder node a provider. Never asserts
anything about speed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math

import numpy as np
import onnx
import pytest
from PIL import Image

from onnxpose.bench.placement import DECODER_PREFIXES, placement_report
from onnxpose.bench.report import comparisons
from onnxpose.bench.timing import measure_group, summarize
from onnxpose.cli import main
from onnxpose.runtime.providers import CPU, CUDA, provider_loads

RUNS, WARMUP, BATCHES = 3, 1, (1, 2)
FILES = ("bench.json", "bench_summary.csv", "bench_samples.csv", "bench_comparisons.csv",
         "bench.md", "latency.png", "decode_overhead.png", "placement.json")
PROVIDERS = {"CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"}


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, quant_tflite, test_image):
    out = tmp_path_factory.mktemp("bench") / "cpu-smoke"
    code, stdout, stderr = run_cli(
        "bench", quant_tflite, "--providers", "cpu,cuda", "--batch", ",".join(map(str, BATCHES)),
        "--runs", RUNS, "--warmup", WARMUP, "--placement", "--image", test_image,
        "--label", "ci-smoke", "--out", out)
    assert code == 0, stderr
    return {"out": out, "stdout": stdout, "stderr": stderr,
            "json": json.loads((out / "bench.json").read_text())}


def test_writes_every_result_file(smoke):
    for name in FILES:
        path = smoke["out"] / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert not list(smoke["out"].glob(".*.tmp")), "temp files left behind"


def test_json_has_every_case_for_cpu_and_each_batch(smoke):
    results = smoke["json"]
    assert results["schema"] == "onnxpose-bench/1"
    cases = {(r["provider"], r["batch"], r["case"]) for r in results["results"]}
    for batch in BATCHES:
        for case in ("raw", "raw+loop", "raw+numpy", "onnxpose-single", "decode:onnxpose-single"):
            assert ("cpu", batch, case) in cases
        assert ("tflite", batch, "tflite+numpy") in cases
        assert ("python", batch, "decode:loop") in cases
    for record in results["results"]:
        assert record["error"] is None, record
        assert record["runs"] == RUNS and len(record["samples_ms"]) == RUNS
        assert all(v > 0 for v in record["samples_ms"])
        assert record["p50_ms"] <= record["p90_ms"] <= record["p99_ms"] <= record["max_ms"]
        assert record["throughput_ips"] > 0 and math.isfinite(record["first_run_ms"])
        assert record["session_create_s"] >= 0


def test_json_records_machine_and_versions(smoke):
    system = smoke["json"]["system"]
    for key in ("cpu", "cpu_count", "onnxruntime", "onnxruntime_usable_providers", "gpus",
                "tensorrt", "platform", "python", "load_average_at_start"):
        assert key in system
    assert system["label"] == "ci-smoke"
    assert system["onnxruntime"]
    assert smoke["json"]["command"].startswith("onnxpose bench ")


def test_comparisons_and_agreement(smoke):
    rows = {(c["provider"], c["batch"]): c for c in smoke["json"]["comparisons"]}
    for batch in BATCHES:
        row = rows[("cpu", batch)]
        for key in ("single_decode_overhead_ms", "single_decode_overhead_ratio", "speedup_vs_loop",
                    "speedup_vs_numpy", "speedup_vs_tflite", "decode_only_speedup_vs_loop"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), key
    # the same input through every path decodes to the same keypoints (correctness, not speed)
    by_case = {(r["batch"], r["case"]): r for r in smoke["json"]["results"]}
    for batch in BATCHES:
        for case in ("raw+loop", "raw+numpy", "decode:onnxpose-single"):
            agreement = by_case[(batch, case)]["agreement"]
            assert agreement["max_position_diff_px"] < 1e-3, (batch, case, agreement)


def test_csv_files_are_well_formed(smoke):
    results = smoke["json"]["results"]
    with open(smoke["out"] / "bench_summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == len(results)
    assert {"provider", "batch", "case", "p50_ms", "p90_ms", "p99_ms", "throughput_ips",
            "session_create_s", "first_run_ms"} <= set(summary[0])
    assert all(float(row["p50_ms"]) > 0 for row in summary)
    with open(smoke["out"] / "bench_samples.csv", newline="") as f:
        samples = list(csv.DictReader(f))
    assert len(samples) == RUNS * len(results)
    assert all(float(row["latency_ms"]) > 0 for row in samples)
    with open(smoke["out"] / "bench_comparisons.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(smoke["json"]["comparisons"])


def test_png_charts_and_markdown(smoke):
    for name in ("latency.png", "decode_overhead.png"):
        with Image.open(smoke["out"] / name) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 200
    markdown = (smoke["out"] / "bench.md").read_text()
    assert "| provider | batch | case | p50 |" in markdown
    assert markdown == smoke["stdout"]


@pytest.mark.skipif(provider_loads(CUDA), reason="CUDA is usable here: nothing is skipped")
def test_missing_provider_is_skipped_with_one_clear_line(smoke):
    lines = [line for line in smoke["stderr"].splitlines() if line.startswith("skipping cuda")]
    assert len(lines) == 1
    assert "CUDAExecutionProvider is not usable on this machine" in lines[0]
    assert {r["provider"] for r in smoke["json"]["results"]} == {"cpu", "tflite", "python"}
    assert smoke["json"]["providers"] == {"benchmarked": ["cpu"], "skipped": [
        {"provider": "cuda", "reason": lines[0]}]}


@pytest.mark.skipif(provider_loads(CUDA), reason="CUDA is usable here")
def test_only_missing_providers_is_a_clean_error(quant_tflite, tmp_path):
    code, _, stderr = run_cli("bench", quant_tflite, "--providers", "cuda", "--out", tmp_path / "x")
    assert code == 2
    assert "skipping cuda: CUDAExecutionProvider is not usable on this machine" in stderr
    assert "onnxpose: error: none of the requested execution providers is usable" in stderr
    assert "Traceback" not in stderr


def test_multi_pose_is_benchmarked_or_skipped_with_one_line(smoke):
    multi = [r for r in smoke["json"]["results"] if r["case"] == "onnxpose-multi"]
    notes = [line for line in smoke["stderr"].splitlines()
             if line.startswith("skipping onnxpose-multi:")]
    if multi:  # the multi-pose decoder is part of this onnxpose
        assert not notes and {r["batch"] for r in multi} == set(BATCHES)
        assert all(r["error"] is None for r in multi)
    else:
        assert len(notes) == 1
        assert any(s.get("case") == "onnxpose-multi" for s in smoke["json"]["skipped"])


def test_unknown_provider_is_a_clean_error(quant_tflite, tmp_path):
    code, _, stderr = run_cli("bench", quant_tflite, "--providers", "cpu,warp", "--out", tmp_path)
    assert code == 2 and "unknown execution provider 'warp'" in stderr


def test_placement_json_gives_each_decoder_node_a_provider(smoke):
    reports = json.loads((smoke["out"] / "placement.json").read_text())
    single = [r for r in reports if r["case"] == "onnxpose-single" and r["provider"] == "cpu"]
    assert len(single) == 1
    nodes = single[0]["decoder_nodes"]
    names = {n["name"] for n in nodes}
    assert {"single_pose/best_cell_node", "single_pose/keypoints_node",
            "heads/heatmaps_dequantized_node"} <= names
    for node in nodes:
        assert node["name"].startswith(DECODER_PREFIXES)
        assert node["provider"] == "CPUExecutionProvider", node
    assert "placement cpu onnxpose-single:" in smoke["stderr"]


def test_placement_report_lists_every_decoder_node(built_single, tmp_path):
    import onnxruntime as ort
    model = onnx.load(str(built_single))
    expected = {n.name for n in model.graph.node if n.name.startswith(DECODER_PREFIXES)}
    session = ort.InferenceSession(str(built_single), providers=[CPU])
    model_input = session.get_inputs()[0]
    image = np.zeros([1] + list(model_input.shape[1:]), dtype=np.uint8)
    report = placement_report("onnxpose-single", built_single, CPU, [CPU], None, image,
                              model_input.name, tmp_path)
    assert {n["name"] for n in report["decoder_nodes"]} == expected
    assert all(n["provider"] in PROVIDERS for n in report["decoder_nodes"])
    assert report["decoder_nodes_by_provider"] == {CPU: len(expected)}
    assert not list(tmp_path.glob("profile_*")), "profiling traces are removed"


def test_bench_on_a_built_model(built_single, tmp_path):
    code, stdout, stderr = run_cli("bench", built_single, "--providers", "cpu", "--batch", "1",
                                   "--runs", 2, "--warmup", 0, "--out", tmp_path, "-q")
    assert code == 0, stderr
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["model"]["format"] == "onnxpose"
    assert {r["case"] for r in results["results"]} >= {"raw", "raw+loop", "onnxpose-single"}
    assert "skipping tflite+numpy" in stderr


def test_summarize_and_comparisons_arithmetic():
    stats = summarize([1.0, 2.0, 3.0, 4.0], batch=2)
    assert stats["p50_ms"] == 2.5 and stats["throughput_ips"] == pytest.approx(2 * 1000 / 2.5)
    records = [{"provider": "cpu", "batch": 1, "case": c, "p50_ms": v} for c, v in
               (("raw", 10.0), ("onnxpose-single", 10.5), ("raw+loop", 21.0), ("raw+numpy", 10.6))]
    records.append({"provider": "tflite", "batch": 1, "case": "tflite+numpy", "p50_ms": 31.5})
    (row,) = comparisons(records)
    assert row["single_decode_overhead_ms"] == pytest.approx(0.5)
    assert row["single_decode_overhead_ratio"] == pytest.approx(1.05)
    assert row["speedup_vs_loop"] == pytest.approx(2.0)
    assert row["speedup_vs_tflite"] == pytest.approx(3.0)


def test_measure_group_reports_a_failing_case_and_times_the_rest():
    from onnxpose.errors import OnnxPoseError

    class Ok:
        def create(self):
            pass

        def __call__(self):
            pass

    class Broken(Ok):
        def create(self):
            raise OnnxPoseError(None, "cannot load")

    errors = []
    result = measure_group({"ok": Ok(), "broken": Broken()}, runs=4, warmup=1,
                           on_error=lambda name, reason: errors.append((name, reason)))
    assert errors == [("broken", "cannot load")]
    assert len(result["ok"].samples_ms) == 4 and result["broken"].error == "cannot load"
