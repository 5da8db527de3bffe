"""The built models run exactly beyond onnxruntime's Python CPU EP.

For the default build (and the control-flow-free one, ``control_flow="none"``, where the
decoder has that setting) of the single-pose and the multi-pose (coral) model, on the test
photo at batch 1, compared with onnxruntime CPU (``onnxpose.bench.runtimes.compare``: same
pose counts, keypoints within 1e-3 px, scores within 1e-5):

* onnxruntime-web, WASM, in node (``peers/ort_run.js``): the full model and the decoder alone;
* onnxruntime-node, CPU: the full model;
* OpenVINO's CPU plugin (f32 precision hint, batch fixed to 1): the full model loads and runs
  (its int8 backbone arithmetic differs from onnxruntime's, so only the decoder is compared) and
  the decoder alone on onnxruntime's heads is exact;
* onnxruntime's OpenVINO EP (onnxruntime-openvino, its own environment): every node on the EP,
  the full model runs, the decoder alone is exact (the heap tie orders: tests/test_openvino.py);
* onnxruntime-web's two WebGPU EPs in headless Chromium (SwiftShader): the native one
  (``ort.webgpu.min.js``, ``browser-webgpu``) and the legacy JSEP one (``ort.all.min.js``,
  ``browser-webgpu-jsep``): the decoder alone is exact, and onnxruntime's node placement says
  what runs on the CPU EP instead (nothing of the single-pose decoder; for the multi-pose one
  see ``MULTI_POSE_CPU_OPS``). JSEP's uint8 DequantizeLinear is wrong (a strict xfail here), so
  there the full quantized model is not run; the page runs it on the native EP
  (tests/test_web_page.py).

Every cell runs in a child process with a timeout.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from onnxpose.bench.runtimes import compare, decoded, decoder_alone, head_feeds, run_cell
from onnxpose.spec import MultiPoseSettings

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "peers" / "node_modules"
HAS_CONTROL_FLOW_SETTING = "control_flow" in {f.name for f in dataclasses.fields(MultiPoseSettings)}
TIMEOUT = 90


def _need_node_package(name: str) -> None:
    if shutil.which("node") is None or not (PEERS / name / "package.json").exists():
        pytest.skip(f"{name} is not installed (bash scripts/install_peers.sh)")


@pytest.fixture(scope="module", params=["single", "multi", "multi-no-control-flow"])
def case(request, tmp_path_factory, quant_tflite, test_image):
    """(kind, model, feeds, ort-cpu result, decoder-alone model, heads, ort-cpu decoder result)"""
    from onnxpose import PoseSession
    from onnxpose.build import build_model
    kind = request.param
    work = tmp_path_factory.mktemp(kind)
    model = work / f"{kind}.onnx"
    options = {"decoder": "single"} if kind == "single" else {"decoder": "multi"}
    if kind == "multi-no-control-flow":
        options["multi_overrides"] = {"control_flow": "none", "candidates": 64}
    build_model(quant_tflite, model, keep_heads=True, **options)
    session = PoseSession(model, providers=["cpu"])
    tensor, _ = session.preprocess([test_image])
    feeds = {session.info.input_name: tensor}
    base = run_cell("ort-cpu", model, feeds, work / "ort-cpu", runs=1, warmup=0, timeout=TIMEOUT)
    assert base["ok"], base
    heads = head_feeds(base["outputs"], session.multi_pose)
    decoder = decoder_alone(model, work / "decoder.onnx")
    dbase = run_cell("ort-cpu", decoder, heads, work / "ort-cpu-decoder", runs=1, warmup=0,
                     timeout=TIMEOUT)
    assert dbase["ok"], dbase
    return {"kind": kind, "model": model, "feeds": feeds, "base": base, "decoder": decoder,
            "heads": heads, "dbase": dbase, "work": work}


def _cell(case, runtime, what, placement=False):
    model, feeds, base = ((case["model"], case["feeds"], case["base"]) if what == "full" else
                          (case["decoder"], case["heads"], case["dbase"]))
    result = run_cell(runtime, model, feeds, case["work"] / f"{runtime}-{what}", runs=1,
                      warmup=0, timeout=TIMEOUT, placement=placement)
    assert result["ok"], f"{runtime} ({what}) fails at {result.get('stage')}: {result.get('error')}"
    got = compare(decoded(result["outputs"]), decoded(base["outputs"]))
    return (got, result.get("placement")) if placement else got


def test_decoder_matches_its_pose_counts_on_onnxruntime_cpu(case):
    """Sanity: the decoder-alone model on the full model's heads gives the full model's poses."""
    got = compare(decoded(case["dbase"]["outputs"]), decoded(case["base"]["outputs"]))
    assert got["matches"], got


@pytest.mark.parametrize("what", ["full", "decoder"])
def test_onnxruntime_web_wasm_in_node_is_exact(case, what):
    _need_node_package("onnxruntime-web")
    got = _cell(case, "ort-web-node", what)
    assert got["matches"], got


def test_onnxruntime_node_cpu_is_exact(case):
    _need_node_package("onnxruntime-node")
    got = _cell(case, "ort-node", "full")
    assert got["matches"], got


def test_openvino_runs_the_full_model(case):
    pytest.importorskip("openvino")
    got = _cell(case, "openvino-cpu", "full")
    assert got["pose_counts"], got  # runs; the int8 backbone's numbers differ from onnxruntime's


def test_openvino_decoder_is_exact_on_onnxruntime_heads(case):
    pytest.importorskip("openvino")
    got = _cell(case, "openvino-cpu", "decoder")
    assert got["matches"], got


@pytest.mark.parametrize("what", ["full", "decoder"])
def test_onnxruntime_openvino_ep_runs_the_whole_graph(case, what, openvino_ep):
    """onnxruntime's OpenVINO EP (its own environment, scripts/install_openvino_ep.sh) takes
    every node (one OpenVINO subgraph, nothing on the CPU EP); the decoder alone is exact on
    onnxruntime's heads. The full model only runs: OpenVINO's int8 backbone differs."""
    got, placement = _cell(case, "ort-openvino-ep", what, placement=True)
    assert set(placement) == {"OpenVINOExecutionProvider"}, placement
    assert got["pose_counts"], got
    if what == "decoder":
        assert got["matches"], got


#: Op types of the multi-pose decoder that onnxruntime-web 1.30 runs on its CPU EP under either
#: WebGPU EP (SwiftShader, checked by the placement log): Loop (no WebGPU kernel); Or
#: (no kernel); int64 index and shape arithmetic (the batch's row offsets, candidate ranks and
#: tie breaks, roots' keypoint/row/col by Div/Mod, Range, the padding of the outputs: no int64
#: kernels, or placed on the CPU by onnxruntime as shape computations); on JSEP also And, TopK
#: and int Min/Max/ReduceSum. The heavy ops (MatMul, Gemm, MaxPool, the head gathers) run on
#: the GPU.
MULTI_POSE_CPU_OPS = frozenset(
    "Loop Or And TopK Identity Range Gather GatherElements Unsqueeze Squeeze Reshape "
    "Concat Split Slice Cast Equal Less Add Sub Mul Div Mod Min Max ReduceSum ReduceMax".split())


def _cpu_ops(placement: dict) -> list[str]:
    nodes = placement.get("CPUExecutionProvider", {}).get("nodes", [])
    return [n for n in nodes if not n.startswith("Memcpy")]


@pytest.mark.parametrize("runtime", ["browser-webgpu", "browser-webgpu-jsep"])
def test_webgpu_decoder_is_exact_on_onnxruntime_heads(case, runtime):
    """Exact on both WebGPU EPs; the single-pose decoder has no node on the CPU EP, the
    multi-pose one only the op types of MULTI_POSE_CPU_OPS."""
    pytest.importorskip("playwright")
    _need_node_package("onnxruntime-web")
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (scripts/install_browser.sh)")
    got, placement = _cell(case, runtime, "decoder", placement=True)
    assert got["matches"], got
    gpu = {"browser-webgpu": "WebGpuExecutionProvider", "browser-webgpu-jsep": "JsExecutionProvider"}
    assert placement.get(gpu[runtime], {}).get("count"), placement  # the log was read
    cpu = _cpu_ops(placement)
    if case["kind"] == "single":
        assert cpu == [], f"single-pose nodes on the CPU EP: {cpu}"
    else:
        assert {n.split()[0] for n in cpu} <= MULTI_POSE_CPU_OPS, cpu


@pytest.mark.parametrize("runtime", [
    "browser-webgpu",
    pytest.param("browser-webgpu-jsep", marks=pytest.mark.xfail(
        strict=True, raises=AssertionError, reason=(
            "onnxruntime-web 1.30's JSEP DequantizeLinear on uint8 subtracts the zero point in "
            "u32 (values below it wrap around) and, for per-tensor scales on a multiple of 4 "
            "elements, reads the wrong packed word (microsoft/onnxruntime#32578); so a uint8 "
            "QDQ backbone gives garbage heads there")))])
def test_webgpu_dequantize_linear_uint8(runtime, tmp_path):
    """The quantized PoseNet backbone's DequantizeLinear (uint8, per-tensor scale, zero point
    127) on onnxruntime-web's WebGPU EPs, against onnxruntime CPU."""
    pytest.importorskip("playwright")
    _need_node_package("onnxruntime-web")
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (scripts/install_browser.sh)")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "scale", "zero_point"], ["y"])], "dq",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
        [numpy_helper.from_array(np.array(1 / 128, np.float32), "scale"),
         numpy_helper.from_array(np.array(127, np.uint8), "zero_point")])
    model = tmp_path / "dq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              model)
    feeds = {"x": np.random.default_rng(0).integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)}
    expected = (feeds["x"].astype(np.float32) - 127) / 128
    result = run_cell(runtime, model, feeds, tmp_path / runtime, runs=1, warmup=0, timeout=TIMEOUT)
    if not result["ok"]:  # not the known failure: the strict xfail must not absorb it
        raise RuntimeError(f"{runtime} fails at {result.get('stage')}: {result.get('error')}")
    np.testing.assert_array_equal(result["outputs"]["y"], expected)


@pytest.mark.parametrize("runtime", ["browser-webgpu", "browser-webgpu-jsep"])
def test_webgpu_single_pose_non_finite_heads(runtime, tmp_path):
    """NaN logits (one keypoint all NaN) and NaN/±inf offsets at the chosen cells: the
    comparisons that replace IsNaN/IsInf give onnxruntime CPU's outputs on WebGPU too (WGSL
    leaves NaN behaviour to the implementation; this checks SwiftShader's)."""
    pytest.importorskip("playwright")
    _need_node_package("onnxruntime-web")
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (scripts/install_browser.sh)")
    import numpy as np
    import onnx
    from onnxpose.decoder.decoder_only import decoder_only_model
    from onnxpose.spec import SinglePoseSettings
    rng = np.random.default_rng(0)
    heatmaps = rng.normal(0, 3, (2, 9, 9, 17)).astype(np.float32)
    heatmaps[rng.random(heatmaps.shape) < 0.3] = np.nan
    heatmaps[0, ..., 3] = np.nan
    offsets = rng.choice(np.array([np.nan, np.inf, -np.inf, 1.5], np.float32), (2, 9, 9, 34))
    model = tmp_path / "single.onnx"
    onnx.save(decoder_only_model((9, 9), 32, SinglePoseSettings()), model)
    feeds = {"heatmaps": heatmaps, "short_offsets": offsets}
    base = run_cell("ort-cpu", model, feeds, tmp_path / "cpu", runs=1, warmup=0, timeout=TIMEOUT)
    result = run_cell(runtime, model, feeds, tmp_path / runtime, runs=1, warmup=0, timeout=TIMEOUT)
    assert base["ok"] and result["ok"], (base, result)
    got = compare(result["outputs"], base["outputs"])
    assert got["matches"], got
