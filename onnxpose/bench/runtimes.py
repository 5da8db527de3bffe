"""The runtime matrix's cells: run a model on one runtime, compare with onnxruntime CPU.

Each cell runs in its own process with a timeout (``run_cell``): Python runtimes through
``onnxpose.bench.runtime_worker``, the JavaScript ones through ``peers/ort_run.js``
(``ort-node``: onnxruntime-node CPU, ``ort-web-node``: onnxruntime-web WASM in node). A cell
that fails or times out is recorded with its stage (``load``/``run``) and first error line.

``decoder_alone`` turns a built model (with ``--keep-heads``) into the decoder-only model of the
same settings, so a runtime's decoding is checked on onnxruntime's heads, apart from its
backbone arithmetic.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ORT_RUN_JS = REPO / "peers" / "ort_run.js"
NODE_RUNTIMES = ("ort-node", "ort-web-node")
PY_RUNTIMES = ("ort-cpu", "openvino-cpu", "ort-openvino-ep", "browser-wasm", "browser-webgpu",
               "browser-webgpu-jsep")
RUNTIMES = ("ort-cpu", "ort-node", "ort-web-node", "browser-wasm", "browser-webgpu",
            "browser-webgpu-jsep", "openvino-cpu", "ort-openvino-ep")
#: the interpreter with onnxruntime-openvino (scripts/install_openvino_ep.sh): the wheel
#: replaces onnxruntime, so it lives in its own environment
OPENVINO_EP_PYTHON = Path(os.environ.get("ONNXPOSE_OPENVINO_EP_PYTHON",
                                         REPO / "peers" / "ort-openvino" / "bin" / "python"))
#: what "matches" means: same pose counts, keypoints within 1e-3 px, scores within 1e-5
PX_TOL, SCORE_TOL = 1e-3, 1e-5


def write_inputs(feeds: dict[str, np.ndarray], directory: Path) -> list[dict]:
    directory.mkdir(parents=True, exist_ok=True)
    specs = []
    for k, (name, value) in enumerate(feeds.items()):
        value = np.ascontiguousarray(value)
        path = directory / f"input{k}_{value.dtype}.bin"
        value.tofile(path)
        specs.append({"name": name, "file": str(path), "dtype": str(value.dtype),
                      "shape": [int(d) for d in value.shape]})
    return specs


def run_cell(runtime: str, model: str | Path, feeds: dict[str, np.ndarray], work_dir: Path,
             runs: int = 5, warmup: int = 1, timeout: float = 120, threads: int = 0,
             placement: bool = False) -> dict:
    """Run ``model`` on ``runtime`` in a child process; returns the result dict with
    ``outputs`` loaded as arrays (``ok`` False with ``stage`` and ``error`` on failure).
    ``placement`` (browser runtimes): also ``result["placement"]``, provider → nodes.
    Timing stops early for a slow runtime: after half the ``timeout`` (``budget_s``), once 3
    runs are timed (``times_ms`` holds the runs actually timed)."""
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    spec = {"runtime": {"ort-node": "node", "ort-web-node": "web-wasm"}.get(runtime, runtime),
            "model": str(Path(model).resolve()), "inputs": write_inputs(feeds, work_dir / "in"),
            "runs": runs, "warmup": warmup, "threads": threads, "out_dir": str(work_dir / "out"),
            "placement": placement, "budget_s": timeout / 2}
    spec_path = work_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    if runtime in NODE_RUNTIMES:
        if shutil.which("node") is None:
            return {"runtime": runtime, "ok": False, "stage": "load", "error": "node is not installed"}
        command = ["node", str(ORT_RUN_JS), str(spec_path)]
    elif runtime == "ort-openvino-ep" and not OPENVINO_EP_PYTHON.exists():
        return {"runtime": runtime, "ok": False, "stage": "load",
                "error": f"{OPENVINO_EP_PYTHON} missing: run scripts/install_openvino_ep.sh"}
    elif runtime in PY_RUNTIMES:
        python = str(OPENVINO_EP_PYTHON) if runtime == "ort-openvino-ep" else sys.executable
        command = [python, "-m", "onnxpose.bench.runtime_worker", str(spec_path)]
    else:
        raise ValueError(f"unknown runtime {runtime!r}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's whole group (node, chromium)
        proc.communicate()
        return {"runtime": runtime, "ok": False, "stage": "timeout",
                "error": f"no result in {timeout:g} s"}
    result_path = work_dir / "out" / "result.json"
    if not result_path.exists():
        line = next((ln for ln in (log or "").splitlines() if ln.strip()), f"exit {proc.returncode}")
        return {"runtime": runtime, "ok": False, "stage": "crash", "error": line[:400]}
    result = json.loads(result_path.read_text())
    result["runtime"] = runtime
    result["runs_asked"] = runs
    if result.get("ok"):
        result["outputs"] = {name: np.fromfile(o["file"], dtype=o["dtype"]).reshape(o["shape"])
                             for name, o in result["outputs"].items()}
        result["median_ms"] = statistics.median(result["times_ms"])
    return result


def compare(outputs: dict, baseline: dict) -> dict:
    """Decoded outputs vs the baseline's: {matches, pose_counts, max_px, max_score, why}."""
    if "pose_count" in baseline:
        counts = [int(c) for c in np.asarray(baseline["pose_count"]).ravel()]
        got = [int(c) for c in np.asarray(outputs["pose_count"]).ravel()]
        if got != counts:
            return {"matches": False, "pose_counts": [got, counts],
                    "why": f"pose counts {got} vs {counts}"}
        kp = [np.asarray(outputs["keypoints"])[n, :c] for n, c in enumerate(counts)]
        ref = [np.asarray(baseline["keypoints"])[n, :c] for n, c in enumerate(counts)]
        scores = [np.asarray(outputs["pose_scores"])[n, :c] - np.asarray(baseline["pose_scores"])[n, :c]
                  for n, c in enumerate(counts)]
        kp, ref, scores = np.concatenate(kp), np.concatenate(ref), np.concatenate(scores)
    else:
        name = "keypoints" if "keypoints" in baseline else "output_0"
        kp, ref = np.asarray(outputs[name]), np.asarray(baseline[name])
        scores = np.asarray(outputs.get("pose_score", 0)) - np.asarray(baseline.get("pose_score", 0))
        counts = [1] * kp.shape[0]
    if kp.shape != ref.shape:
        return {"matches": False, "pose_counts": counts, "why": f"shape {kp.shape} vs {ref.shape}"}
    if kp.size == 0:
        return {"matches": True, "pose_counts": counts, "max_px": 0.0, "max_score": 0.0}
    max_px = float(np.max(np.abs(kp[..., :2].astype(np.float64) - ref[..., :2])))
    max_score = float(max(np.max(np.abs(kp[..., 2].astype(np.float64) - ref[..., 2])),
                          np.max(np.abs(scores), initial=0.0)))
    ok = bool(max_px <= PX_TOL and max_score <= SCORE_TOL)
    return {"matches": ok, "pose_counts": counts, "max_px": max_px, "max_score": max_score,
            **({} if ok else {"why": f"max |dy,dx| {max_px:.3g} px, max |dscore| {max_score:.3g}"})}


def decoder_alone(model_path: str | Path, out_path: str | Path) -> Path:
    """The decoder-only model (heads in, poses out) with the built model's own settings."""
    import onnx
    from onnxpose.decoder.decoder_only import decoder_only_model
    from onnxpose.metadata import parse_metadata
    model = onnx.load(str(model_path), load_external_data=False)
    info = parse_metadata({p.key: p.value for p in model.metadata_props})
    heads = {o.name: o for o in model.graph.output}
    if "heatmaps" not in heads:
        raise ValueError(f"{model_path}: build it with --keep-heads to check the decoder alone")
    dims = heads["heatmaps"].type.tensor_type.shape.dim
    grid = (dims[1].dim_value, dims[2].dim_value)
    decoder = decoder_only_model(grid, info.output_stride, info.settings(),
                                 input_hw=(info.input_height, info.input_width),
                                 opset=max(e.version for e in model.opset_import if e.domain in ("", "ai.onnx")))
    onnx.save(decoder, str(out_path))
    return Path(out_path)


def head_feeds(outputs: dict, multi: bool) -> dict[str, np.ndarray]:
    names = ("heatmaps", "short_offsets") + (("displacements",) if multi else ())
    return {name: np.ascontiguousarray(outputs[name], dtype=np.float32) for name in names}


def decoded(outputs: dict) -> dict:
    """Only the decoder's outputs (not the kept heads)."""
    return {k: v for k, v in outputs.items()
            if k not in ("heatmaps", "short_offsets", "displacements")}
