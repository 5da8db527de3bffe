"""What the multi-pose benchmark scripts share (benchmarks/multi_pose_*.py).

* ``PRESETS``: every preset and tie order measured, by name: ``coral-scan``, ``coral-heap``,
  ``tfjs-scan``, ``tfjs-heap`` and ``coral-frogfish-heap`` (the Coral-op default:
  ``MultiPoseSettings(coral_release="frogfish", tie_order="heap")``);
* ``candidate_heads``: synthetic heads with exactly C candidates (local maxima above both
  presets' thresholds) per image, on any grid, with ties among the peak scores (as quantized
  heads have), so the heap tie orders have work to do; ``tied_candidate_heads``: the heap
  orders' worst case (every image needs the whole replay);
* runners for decoder-only models, the TFLite interpreter + numpy multi-pose decoding,
  and the real TF.js ``decodeMultiplePoses`` timed inside node;
* ``decoder_part``: a built model cut at the raw model's outputs (the heads as the backbone
  hands them over, 8-bit for the shared model), so the decoder can be timed as the full
  model runs it (the same dequantization and onnxruntime rewrites) without the backbone;
* ``power_fit``: the exponent of a growth curve; ``slope_ratio``: its cost per unit past a
  point over the cost per unit before it (1 for a line, above 1 when it grows faster).
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS

# name -> (preset, overrides of the preset's defaults)
PRESET_OVERRIDES = {
    "coral-scan": ("coral", {"tie_order": "scan"}),
    "coral-heap": ("coral", {"tie_order": "heap"}),
    "tfjs-scan": ("tfjs", {"tie_order": "scan"}),
    "tfjs-heap": ("tfjs", {"tie_order": "heap"}),
    "coral-frogfish-heap": ("coral", {"tie_order": "heap", "coral_release": "frogfish"}),
}

# Peak logits: all above logit(0.5) = 0 (tfjs) and Coral's log-odds of 0.2 (-1.39); a few
# levels only, so that equal scores are common, as in quantized heads (step 0.078 there).
PEAK_LEVELS = np.arange(0.5, 4.5, 0.25, dtype=np.float32)
BACKGROUND = -6.0  # far below both thresholds


def presets(names=None) -> dict:
    from onnxpose.spec import MultiPoseSettings
    names = names or list(PRESET_OVERRIDES)
    return {n: MultiPoseSettings.for_preset(PRESET_OVERRIDES[n][0], **PRESET_OVERRIDES[n][1])
            for n in names}


def count_candidates(heatmaps: np.ndarray, threshold_logit: float) -> np.ndarray:
    """Per image, the cells (y, x, keypoint) at least ``threshold_logit`` that no 3x3
    neighbour of the same keypoint exceeds (the decoders' candidates, radius 1)."""
    hm = np.asarray(heatmaps, np.float32)
    padded = np.pad(hm, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    h, w = hm.shape[1:3]
    pooled = np.max([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], 0)
    return ((hm >= threshold_logit) & (hm >= pooled)).sum(axis=(1, 2, 3))


def candidate_heads(count: int, grid: tuple[int, int], batch: int = 1, seed: int = 0,
                    stride: int = 16):
    """(heatmaps [N,h,w,17], short_offsets [N,h,w,34], displacements [N,h,w,64]) float32,
    each image with exactly ``count`` candidates for both presets.

    Peaks sit on the even cells (y and x even) of random keypoint channels, so no two peaks
    of one channel are neighbours; the background is ``BACKGROUND`` plus noise below 0.5
    (so below the thresholds and never above a peak). Peak logits are drawn from
    ``PEAK_LEVELS`` (ties). Offsets are N(0, stride / 4) px, displacements N(0, 2 stride) px.
    """
    h, w = grid
    rng = np.random.default_rng(seed)
    ys, xs = np.arange(0, h, 2), np.arange(0, w, 2)
    slots = len(ys) * len(xs) * NUM_KEYPOINTS
    if count > slots:
        raise ValueError(f"a {h}x{w} grid holds at most {slots} such candidates, not {count}")
    heatmaps = np.empty((batch, h, w, NUM_KEYPOINTS), np.float32)
    for i in range(batch):
        heatmaps[i] = BACKGROUND + rng.uniform(0, 0.5, (h, w, NUM_KEYPOINTS))
        chosen = rng.choice(slots, size=count, replace=False)
        cy, rest = np.divmod(chosen, len(xs) * NUM_KEYPOINTS)
        cx, ck = np.divmod(rest, NUM_KEYPOINTS)
        heatmaps[i, ys[cy], xs[cx], ck] = rng.choice(PEAK_LEVELS, size=count)
    short = rng.normal(0, stride / 4, (batch, h, w, 2 * NUM_KEYPOINTS)).astype(np.float32)
    disp = rng.normal(0, 2 * stride, (batch, h, w, 4 * NUM_EDGES)).astype(np.float32)
    found = count_candidates(heatmaps, 0.0)
    if not (found == count).all():
        raise AssertionError(f"synthetic heads: {found} candidates, expected {count}")
    return heatmaps, short, disp


def tied_candidate_heads(count: int, grid: tuple[int, int], batch: int = 1, seed: int = 0):
    """The heap orders' worst case: heads like ``candidate_heads`` with exactly ``count``
    candidates per image, all tied and crowded, so that every image needs the heap's whole
    replay (``queue_order``: two free tied candidates close to each other).

    The candidates fill random even cells 17 keypoints at a time (the last cell with the
    rest), all at the top peak level; offsets and displacements are zero, so every pose
    lies on its root cell and the candidates of one cell are close to each other's poses.
    """
    h, w = grid
    rng = np.random.default_rng(seed)
    ys, xs = np.arange(0, h, 2), np.arange(0, w, 2)
    cells = -(-count // NUM_KEYPOINTS)
    if cells > len(ys) * len(xs):
        raise ValueError(f"a {h}x{w} grid holds at most {len(ys) * len(xs) * NUM_KEYPOINTS} "
                         f"such candidates, not {count}")
    heatmaps = np.empty((batch, h, w, NUM_KEYPOINTS), np.float32)
    for i in range(batch):
        heatmaps[i] = BACKGROUND + rng.uniform(0, 0.5, (h, w, NUM_KEYPOINTS))
        for n, cell in enumerate(rng.choice(len(ys) * len(xs), size=cells, replace=False)):
            y, x = divmod(int(cell), len(xs))
            heatmaps[i, ys[y], xs[x], :min(NUM_KEYPOINTS, count - n * NUM_KEYPOINTS)] = \
                PEAK_LEVELS[-1]
    short = np.zeros((batch, h, w, 2 * NUM_KEYPOINTS), np.float32)
    disp = np.zeros((batch, h, w, 4 * NUM_EDGES), np.float32)
    found = count_candidates(heatmaps, 0.0)
    if not (found == count).all():
        raise AssertionError(f"tied heads: {found} candidates, expected {count}")
    return heatmaps, short, disp


def head_feed(heatmaps, short_offsets, displacements) -> dict[str, np.ndarray]:
    return {"heatmaps": np.ascontiguousarray(heatmaps),
            "short_offsets": np.ascontiguousarray(short_offsets),
            "displacements": np.ascontiguousarray(displacements)}


def decoder_only_file(directory: Path, name: str, grid, stride: int, settings,
                      input_hw=None) -> Path:
    from onnxpose.decoder.decoder_only import decoder_only_model
    path = Path(directory) / f"decoder_{name}_{grid[0]}x{grid[1]}.onnx"
    if not path.exists():
        path.write_bytes(decoder_only_model(tuple(grid), stride, settings,
                                            input_hw).SerializeToString())
    return path


def ort_runner(name: str, path: Path, feed: dict, options, description: str = ""):
    from onnxpose.bench.cases import CaseSpec, OrtRunner
    from onnxpose.bench.options import CPU
    return OrtRunner(CaseSpec(name, description or name, None, None), path, CPU, [CPU],
                     options, feed, False, None)


def function_runner(name: str, function, description: str = ""):
    from onnxpose.bench.cases import CaseSpec, FunctionRunner
    return FunctionRunner(CaseSpec(name, description or name, None, None), function)


class TfliteMultiRunner:
    """The source TFLite model in the TFLite interpreter (CPU), its three uint8 heads
    dequantized, then the numpy multi-pose reference decoder (``settings``): image to
    keypoints, the way a TFLite user decodes without onnxpose."""

    def __init__(self, name: str, path, batch_input: np.ndarray, threads, output_stride: int,
                 settings):
        from onnxpose.bench.cases import CaseSpec
        self.case = CaseSpec(name, "TFLite interpreter + numpy multi-pose decoding", None, None)
        self.path, self.batch_input, self.threads = path, batch_input, threads
        self.output_stride, self.settings, self._last, self.details = output_stride, settings, None, {}

    def create(self) -> None:
        import os
        from onnxpose.bench.cases import tflite_interpreter_class
        from onnxpose.convert.convert import quiet_tensorflow
        interpreter_class, description = tflite_interpreter_class()
        with quiet_tensorflow():
            self.interpreter = interpreter_class(model_path=str(self.path),
                                                 num_threads=self.threads or os.cpu_count() or 1)
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.heads = {}
        for d in self.interpreter.get_output_details():
            role = {17: "heatmaps", 34: "short_offsets", 64: "displacements"}.get(int(d["shape"][-1]))
            if role:
                scale, zero = d.get("quantization", (0.0, 0))
                self.heads[role] = (d["index"], float(scale), int(zero))
        if len(self.heads) != 3:
            raise RuntimeError(f"{self.path}: expected heads of 17, 34 and 64 channels")
        self.details = {"runtime": description, "batching": "one image per invoke"}

    def _heads(self, image):
        self.interpreter.set_tensor(self.input_index, image)
        self.interpreter.invoke()
        out = {}
        for role, (index, scale, zero) in self.heads.items():
            value = self.interpreter.get_tensor(index)
            out[role] = ((value.astype(np.float32) - zero) * np.float32(scale)
                         if scale else value.astype(np.float32))
        return out

    def __call__(self) -> None:
        from onnxpose.reference.multi_pose import decode_multiple_poses
        results = []
        for i in range(len(self.batch_input)):
            heads = self._heads(self.batch_input[i:i + 1])
            results.append(decode_multiple_poses(heads["heatmaps"], heads["short_offsets"],
                                                 heads["displacements"], self.output_stride,
                                                 self.settings))
        self._last = results

    def keypoints(self):
        return self._last

    def close(self) -> None:
        self.interpreter = None


TFJS_BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "peers" / "tfjs_bench_decode.js"


def tfjs_decode_times(heatmaps, short_offsets, displacements, output_stride: int, settings,
                      runs: int, warmup: int, timeout_s: float = 600) -> dict:
    """The real TF.js ``decodeMultiplePoses`` (tfjs cpu backend) on image 0 of the heads,
    timed inside node (``process.hrtime.bigint``) ``runs`` times after ``warmup`` runs:
    {"decode_ms": [...], "sigmoid_decode_ms": [...], "poses": n, "backend": ...}.
    ``decode_ms`` is ``decodeMultiplePoses`` alone on ready score buffers (in TF.js the
    sigmoid is part of the model); ``sigmoid_decode_ms`` adds ``tf.sigmoid`` of the logits
    and ``bufferSync``. Start-up, reading and the heads' buffers are outside both."""
    from onnxpose.testing.tfjs_peer import (INSTALL_HINT, PEERS, _check_settings, _write_heads,
                                            tfjs_available)
    if not tfjs_available():
        raise RuntimeError(f"TF.js peer not installed: {INSTALL_HINT}")
    _check_settings(settings)
    _, h, w, _ = heatmaps.shape
    with tempfile.TemporaryDirectory(prefix="tfjs_bench_") as tmp:
        _write_heads(Path(tmp) / "heads.f32", heatmaps[:1], short_offsets[:1], displacements[:1])
        request = dict(data="heads.f32", batch=1, height=h, width=w, outputStride=output_stride,
                       maxPoseDetections=settings.max_poses,
                       scoreThreshold=float(settings.score_threshold),
                       nmsRadius=float(settings.nms_radius), runs=runs, warmup=warmup)
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        out = Path(tmp) / "times.json"
        proc = subprocess.run(["node", str(TFJS_BENCH_SCRIPT), str(Path(tmp) / "request.json"),
                               str(out)], cwd=PEERS, capture_output=True, text=True,
                              timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"TF.js bench failed ({proc.returncode}): {proc.stderr.strip()}")
        return json.loads(out.read_text())


def power_fit(xs, ys) -> dict:
    """Least-squares fits of a growth curve: the exponent p of ``y = c * x**p`` (log-log,
    points with x > 0 and y > 0) and the line ``y = a + b x`` (b: cost per unit of x)."""
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    keep = (xs > 0) & (ys > 0)
    exponent = (float(np.polyfit(np.log(xs[keep]), np.log(ys[keep]), 1)[0])
                if keep.sum() >= 2 else math.nan)
    slope, intercept = (np.polyfit(xs, ys, 1) if len(xs) >= 2 else (math.nan, math.nan))
    return {"exponent": exponent, "slope_per_unit_ms": float(slope),
            "intercept_ms": float(intercept)}


def slope_ratio(xs, ys, at: float) -> float:
    """(y(last) - y(at)) / (x(last) - at) over (y(at) - y(first)) / (at - x(first)): the cost
    per unit of x past ``at`` over the cost per unit before it (1 for a line; a power law
    y = x**p from 0 gives ((last**p - at**p) / (last - at)) / at**(p - 1)). NaN when the cost
    before ``at`` is not positive."""
    xs, ys = [float(x) for x in xs], [float(y) for y in ys]
    i = xs.index(float(at))
    before = (ys[i] - ys[0]) / (xs[i] - xs[0])
    after = (ys[-1] - ys[i]) / (xs[-1] - xs[i])
    return after / before if before > 0 else math.nan


def decoder_part(built: Path, heads: list[str], out: Path) -> Path | None:
    """``built`` cut at the tensors ``heads`` (the raw model's output names): a model from
    the heads to the built model's outputs, written to ``out``; None when ``built`` has no
    tensor of one of those names."""
    import onnx
    import onnx_graphsurgeon as gs
    # shape inference gives the cut tensors the dtype a graph input needs
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(onnx.load(str(built))))
    tensors = graph.tensors()
    if any(name not in tensors for name in heads):
        return None
    graph.inputs = [tensors[name] for name in heads]
    for tensor in graph.inputs:
        tensor.inputs.clear()
    graph.cleanup().toposort()
    onnx.save(gs.export_onnx(graph), str(out))
    return out
