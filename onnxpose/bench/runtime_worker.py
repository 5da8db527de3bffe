"""One runtime cell, run in its own process (``python -m onnxpose.bench.runtime_worker SPEC``).

The same protocol as ``peers/ort_run.js``: SPEC.json names the runtime, the model, raw
little-endian input files and run counts; the worker writes ``OUT_DIR/output<k>.bin`` and
``OUT_DIR/result.json`` (``{"ok": true, "times_ms", "outputs": {name: {dtype, shape, file}}}``
or ``{"ok": false, "stage", "error"}``). Runtimes here: ``ort-cpu`` (onnxruntime's CPU EP),
``openvino-cpu`` (OpenVINO's CPU plugin, shapes fixed to the inputs',
``INFERENCE_PRECISION_HINT: f32``), ``ort-openvino-ep`` (onnxruntime's OpenVINO EP, in the
environment of scripts/install_openvino_ep.sh), ``browser-wasm``, ``browser-webgpu`` (the native WebGPU EP)
and ``browser-webgpu-jsep`` (the legacy JSEP one) of onnxruntime-web in headless Chromium, through
``web/app.js``'s ``onnxposeRunRaw``. With ``"placement": true`` in SPEC a browser cell also
records which provider onnxruntime placed each node on (``result["placement"]``, from
onnxruntime's verbose log: ``parse_placement``).
"""

from __future__ import annotations

import json
import re
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

CHROMIUM = os.environ.get("ONNXPOSE_CHROMIUM", "/usr/bin/chromium")
#: WebGPU in headless Chromium without a GPU: SwiftShader's software Vulkan adapter
CHROMIUM_FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-unsafe-swiftshader",
                  "--use-webgpu-adapter=swiftshader", "--enable-features=Vulkan,WebGPU"]


class CellError(Exception):
    """A failure at a stage: ``load`` (session creation / compile) or ``run``."""

    def __init__(self, stage: str, error):
        super().__init__(error_line(error))
        self.stage = stage


def _load(make):
    try:
        return make()
    except Exception as exc:
        raise CellError("load", exc) from exc


_NOISE = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:|FrontEnd API failed"
                    r"|Model wasn't fully converted|Failed operations detailed log|-- \S+ with a message:"
                    r"|Traceback )")


def error_line(exc: BaseException | str) -> str:
    """The first informative line of an error (OpenVINO's source-location lines skipped; a
    node it names is appended). onnxruntime's OpenVINO EP wraps OpenVINO's message in a
    one-line C++ location prefix and a chain of OpenVINO's: the last informative line of
    what follows its last ``[OpenVINO-EP]`` is kept."""
    text = str(exc)
    wrapped = "[OpenVINO-EP]" in text
    if wrapped:
        text = text.rsplit("[OpenVINO-EP]", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if wrapped:
        lines = lines[::-1]
    node = next((ln for ln in lines if ln.startswith("While validating ONNX node")), None)
    useful = [ln for ln in lines if not _NOISE.match(ln) and ln is not node]
    line = useful[0] if useful else (lines[0] if lines else type(exc).__name__)
    if node:
        line += " [" + node.removeprefix("While validating ONNX node").strip(" :'<>") + "]"
    return line[:400]


def _feeds(spec) -> dict[str, np.ndarray]:
    return {i["name"]: np.fromfile(i["file"], dtype=i["dtype"]).reshape(i["shape"])
            for i in spec["inputs"]}


def _timed(run, spec) -> tuple[list, list[float]]:
    """``spec["warmup"]`` untimed runs, then up to ``spec["runs"]`` timed ones; with
    ``spec["budget_s"]`` a slow runtime stops warming up after a quarter of the budget and
    stops timing after the budget, once it has 3 timed runs (the same rule as
    peers/ort_run.js and web/app.js)."""
    times, out = [], None
    warmup, budget = spec.get("warmup", 0), spec.get("budget_s") or float("inf")
    start, r = time.perf_counter(), 0
    while r < warmup + spec.get("runs", 1):
        t0 = time.perf_counter()
        out = run()
        now = time.perf_counter()
        if r >= warmup:
            times.append((now - t0) * 1e3)
        elif now - start > budget / 4:
            warmup = r + 1
        if len(times) >= 3 and now - start > budget:
            break
        r += 1
    return out, times


def run_ort_cpu(spec):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if spec.get("threads"):
        options.intra_op_num_threads = spec["threads"]
    session = _load(lambda: ort.InferenceSession(spec["model"], options,
                                                 providers=["CPUExecutionProvider"]))
    feeds = _feeds(spec)
    names = [o.name for o in session.get_outputs()]
    values, times = _timed(lambda: session.run(None, feeds), spec)
    return dict(zip(names, values)), times, {"version": ort.__version__}


def run_openvino(spec):
    import openvino as ov
    core = ov.Core()
    feeds = _feeds(spec)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if spec.get("threads"):
        config["INFERENCE_NUM_THREADS"] = spec["threads"]

    def load():
        model = core.read_model(spec["model"])
        # static shapes: OpenVINO's CPU plugin computed a wrong backbone with a dynamic batch
        model.reshape({name: list(a.shape) for name, a in feeds.items()})
        return core.compile_model(model, "CPU", config)
    compiled = _load(load)
    request = compiled.create_infer_request()
    import onnx
    onnx_names = [o.name for o in onnx.load(spec["model"], load_external_data=False).graph.output]
    # OpenVINO may name an output after the tensor feeding it: take the ONNX output name
    names = [next((n for n in onnx_names if n in o.get_names()), onnx_names[i])
             for i, o in enumerate(compiled.outputs)]

    def run():
        request.infer(feeds)
        return [np.array(request.get_output_tensor(i).data) for i in range(len(names))]
    values, times = _timed(run, spec)
    return dict(zip(names, values)), times, {"version": ov.__version__}


def run_ort_openvino_ep(spec):
    """onnxruntime with its OpenVINO EP (CPU device, FP32), the CPU EP as fallback; run by
    the interpreter of peers/ort-openvino (scripts/install_openvino_ep.sh). Records which
    provider each node was placed on (``info["placement"]``, from the verbose log)."""
    import tempfile
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 0  # the placement lines are verbose
    if spec.get("threads"):
        options.intra_op_num_threads = spec["threads"]
    providers = [("OpenVINOExecutionProvider", {"device_type": "CPU", "precision": "FP32"}),
                 "CPUExecutionProvider"]
    with tempfile.TemporaryFile("w+") as log:  # onnxruntime logs to fd 2
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            session = _load(lambda: ort.InferenceSession(spec["model"], options,
                                                         providers=providers))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        placement = parse_placement(log)
    quiet = ort.RunOptions()
    quiet.log_severity_level = 3  # the verbose level was for the placement lines only
    feeds = _feeds(spec)
    names = [o.name for o in session.get_outputs()]
    values, times = _timed(lambda: session.run(None, feeds, quiet), spec)
    return dict(zip(names, values)), times, {"version": ort.__version__, "placement": placement}


_PLACED = re.compile(r"(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)")
_NODE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s+(\S+) \((.*)\)\s*$")


def parse_placement(lines) -> dict[str, dict]:
    """onnxruntime's verbose log → {provider: {"count": n, "nodes": ["OpType node_name", ...]}}
    (Memcpy nodes included; onnxruntime lists no nodes when all are on one provider)."""
    placement, provider = {}, None
    for line in lines:
        if "VerifyEachNodeIsAssignedToAnEp" not in line:
            continue
        placed = _PLACED.search(line)
        if placed:
            provider = placed.group(2)
            placement[provider] = {"count": int(placed.group(3)), "nodes": []}
            continue
        node = _NODE.search(line)
        if node and provider:
            placement[provider]["nodes"].append(f"{node.group(1)} {node.group(2)}")
    return placement


def run_browser(spec, ep: str):
    from playwright.sync_api import sync_playwright
    from onnxpose.web_server import serve_in_thread
    served = Path(spec["out_dir"]) / "served"
    served.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec["model"], served / "model.onnx")
    inputs = []
    for k, i in enumerate(spec["inputs"]):
        shutil.copyfile(i["file"], served / f"input{k}.bin")
        inputs.append({"name": i["name"], "url": f"files/input{k}.bin", "dtype": i["dtype"],
                       "shape": i["shape"]})
    server, url = serve_in_thread(None, extra_dir=served)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            console: list[str] = []
            if spec.get("placement"):
                page.on("console", lambda message: console.append(message.text))
            page.goto(f"{url}?ep={ep}")  # the page loads the onnxruntime-web bundle of ep
            page.wait_for_function("typeof window.onnxposeRunRaw === 'function'", timeout=30000)
            result = page.evaluate("spec => window.onnxposeRunRaw(spec)", {
                "model": "files/model.onnx", "ep": ep, "inputs": inputs,
                "log": bool(spec.get("placement")), "runs": spec.get("runs", 1),
                "warmup": spec.get("warmup", 0), "budget": spec.get("budget_s")})
            version = page.evaluate("globalThis.ort && ort.env.versions && ort.env.versions.web")
            browser.close()
    finally:
        server.shutdown()
    if not result["ok"]:
        raise CellError(result.get("stage", "run"), result["error"])
    outputs = {name: np.asarray(o["data"], dtype=o["dtype"]).reshape(o["shape"])
               for name, o in result["outputs"].items()}
    info = {"version": version, "wasm_threads": result.get("wasmThreads")}
    if spec.get("placement"):
        info["placement"] = parse_placement(console)
    return outputs, result["times"], info


RUNNERS = {"ort-cpu": run_ort_cpu, "openvino-cpu": run_openvino,
           "ort-openvino-ep": run_ort_openvino_ep,
           "browser-wasm": lambda s: run_browser(s, "wasm"),
           "browser-webgpu": lambda s: run_browser(s, "webgpu"),
           "browser-webgpu-jsep": lambda s: run_browser(s, "webgpu-jsep")}


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    out_dir = Path(spec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"runtime": spec["runtime"]}
    try:
        outputs, times, info = RUNNERS[spec["runtime"]](spec)
    except CellError as exc:
        result.update(ok=False, stage=exc.stage, error=str(exc))
    except Exception as exc:  # every failure is a recorded cell, never a crash of the matrix
        result.update(ok=False, stage="run", error=error_line(exc))
    else:
        files = {}
        for k, (name, value) in enumerate(outputs.items()):
            value = np.ascontiguousarray(value)
            path = out_dir / f"output{k}.bin"  # by position: names may hold '/'
            value.tofile(path)
            files[name] = {"dtype": str(value.dtype), "shape": list(value.shape), "file": str(path)}
        result.update(ok=True, times_ms=times, outputs=files, **info)
    (out_dir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
