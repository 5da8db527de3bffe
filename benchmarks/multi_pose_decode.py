"""Time multi-pose decoding against the backbone, on CPU at batch 1.

Times (median of ``--runs`` rounds after warm-up; all timed round-robin in the
same rounds so that they see the same machine load):

* the decoder-only ONNX graph (``decoder_only_model``) on the real
  heads stored in the reference npz,
* the numpy reference decoder on the same heads,
* the backbone: the Coral PoseNet TFLite model converted with
  ``tf2onnx.convert.from_tflite(path, opset=17)``, on the npz ``image``,

all in onnxruntime's CPUExecutionProvider with the same session options, and
prints the ratios. Usage::

    python3 benchmarks/multi_pose_decode.py [--preset coral|tfjs|both] [--runs 200] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.decoder.settings import MultiPoseSettings
from onnxpose.reference.decode_multiple_poses_coral import decode_multiple_poses_coral
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared"))
NPZ = SHARED / "reference" / "test_couple_353x481.npz"
BACKBONE = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
HEAD_NAMES = ("heatmaps", "short_offsets", "displacements")


def interleaved_medians_ms(fns: dict, runs: int, every: dict | None = None,
                          warmup: int = 5) -> dict:
    """{name: (median wall ms, median CPU ms)} of each callable, timed round-robin so that
    all see the same machine load. CPU time is this process's (all its threads).

    ``every[name] = k`` times that callable only on every k-th round.
    """
    every = every or {}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for i in range(runs):
        for name, fn in fns.items():
            if i % every.get(name, 1):
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (1e3 * statistics.median(wall[name]), 1e3 * statistics.median(cpu[name]))
            for name in fns}


def session(model_bytes: bytes, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def preset_inputs(data, preset: str):
    """(settings, heads) for a preset: Coral's own decoder inputs and options for ``coral``."""
    if preset == "coral":
        settings = MultiPoseSettings.for_preset(
            "coral", max_poses=int(data["max_detections"]),
            score_threshold=float(data["score_threshold"]),
            nms_radius=float(data["nms_radius_pixels"]),
            refine_steps=int(data["refinement_steps"]))
        keys = ("decoder_in_heatmaps", "decoder_in_short_offsets", "decoder_in_mid_offsets")
    else:
        settings = MultiPoseSettings.for_preset("tfjs")
        keys = ("heatmaps", "short_offsets", "mid_offsets")
    return settings, [np.ascontiguousarray(data[k], dtype=np.float32) for k in keys]


def backbone_runner(data, threads: int | None):
    import tf2onnx  # slow import, only here

    model, _ = tf2onnx.convert.from_tflite(str(BACKBONE), opset=17)
    sess = session(model.SerializeToString(), threads)
    feed = {sess.get_inputs()[0].name: data["image"]}
    return lambda: sess.run(None, feed)


def decoder_runners(data, preset: str, threads: int | None):
    """(in-graph decode, numpy reference decode) callables on the preset's heads."""
    settings, heads = preset_inputs(data, preset)
    stride = int(data["stride"])
    model = decoder_only_model(heads[0].shape[1:3], stride, settings)
    sess = session(model.SerializeToString(), threads)
    feed = dict(zip(HEAD_NAMES, heads))
    reference = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}[preset]
    return lambda: sess.run(None, feed), lambda: reference(*heads, stride, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("coral", "tfjs", "both"), default="both")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    args = parser.parse_args()
    data = np.load(NPZ)
    presets = ("coral", "tfjs") if args.preset == "both" else (args.preset,)
    runners = {"backbone": backbone_runner(data, args.threads)}
    for preset in presets:
        runners[f"{preset} graph"], runners[f"{preset} numpy"] = decoder_runners(
            data, preset, args.threads)
    every = {name: 4 for name in runners if name.endswith("numpy")}
    ms = interleaved_medians_ms(runners, args.runs, every)
    print(f"onnxruntime {ort.__version__}, CPUExecutionProvider, batch 1, {os.cpu_count()} cores, "
          f"intra-op threads: {args.threads or 'default'}; median of {args.runs} interleaved runs "
          f"({args.runs // 4} for numpy); wall ms / process CPU ms")
    backbone_wall, backbone_cpu = ms["backbone"]
    print(f"backbone (tf2onnx from tflite)  {backbone_wall:8.3f} / {backbone_cpu:8.3f}")
    for preset in presets:
        (graph_wall, graph_cpu), (numpy_wall, numpy_cpu) = ms[f"{preset} graph"], ms[f"{preset} numpy"]
        print(f"{preset:5s} in-graph decode        {graph_wall:8.3f} / {graph_cpu:8.3f}"
              f"   = {100 * graph_wall / backbone_wall:5.1f}% / {100 * graph_cpu / backbone_cpu:5.1f}%"
              " of the backbone")
        print(f"{preset:5s} numpy reference decode {numpy_wall:8.3f} / {numpy_cpu:8.3f}"
              f"   = {numpy_wall / graph_wall:5.1f}x / {numpy_cpu / graph_cpu:5.1f}x the in-graph decode")


if __name__ == "__main__":
    main()
