#!/usr/bin/env python3
"""Cost of resizing inside the graph (``--input image``) vs PIL in Python, CPU, batch 1.

On ``test_couple.jpg`` (1920x1278, decoded once) times, in alternating blocks in one
process (onnxruntime CPUExecutionProvider):
  * ``pil+fixed``: PoseSession on the fixed-size multi-pose model (PIL resize to 353x481 in
    Python, the model, keypoints scaled back), end to end from the decoded photo;
  * ``in-graph``: a plain InferenceSession on the ``--input image`` model, the photo as is;
  * ``resize-pil`` and ``resize-graph``: the resize alone (PIL, and the in-graph resize
    sub-graph ``onnxpose.decoder.pil_resize``).
Prints the medians (ms) and the ratio in-graph / pil+fixed, and the load average at start and
end (the 2-core machine is shared: a loaded one slows the multi-threaded graph more than
PIL); writes JSON and a PNG chart (default benchmarks/results/cpu-2core/image_input.json and
.png).

    python3 benchmarks/image_input.py [--runs 200] [--warmup 10] [--threads T] [--out PATH]

The shared data directory is $ONNXPOSE_SHARED, default ../shared next to the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared"))
DEFAULT_OUT = REPO / "benchmarks" / "results" / "cpu-2core" / "image_input.json"


def resize_session(size_hw, options):
    import numpy as np
    import onnx_graphsurgeon as gs
    import onnxruntime as ort
    from onnxpose.decoder.ops import GraphBuilder
    from onnxpose.decoder.pil_resize import pil_resize
    graph = gs.Graph(opset=17)
    image = gs.Variable("image", np.uint8, ["N", "H", "W", 3])
    graph.inputs = [image]
    out = pil_resize(GraphBuilder(graph), image, size_hw)
    out.dtype = np.uint8
    graph.outputs = [out]
    model = gs.export_onnx(graph.cleanup().toposort())
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def measure(cases: dict, runs: int, warmup: int, block: int = 10) -> dict:
    """Median ms of each case, timed in alternating blocks of ``block`` runs."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in cases}
    while min(len(v) for v in samples.values()) < runs:
        for name, fn in cases.items():
            for _ in range(block):
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": statistics.median(v), "p25_ms": statistics.quantiles(v, n=4)[0],
                   "p75_ms": statistics.quantiles(v, n=4)[2], "runs": len(v)}
            for name, v in samples.items()}


def chart(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results["cases"])
    medians = [results["cases"][n]["median_ms"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(names, medians, color=["#888", "#2a7", "#aaa", "#5c9"][:len(names)])
    ax.set_xlabel("median ms (CPU, batch 1, 1920x1278 photo)")
    ax.set_title(f"in-graph / PIL + fixed model: {results['ratio_in_graph_vs_pil']:.2f}x")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    import numpy as np
    import onnxruntime as ort
    from PIL import Image
    from onnxpose.bench.system import load_average
    from onnxpose.build import build_model
    from onnxpose.runtime.session import PoseSession

    source = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
    photo_path = SHARED / "images" / "test_couple.jpg"
    load_at_start = load_average()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="onnxpose-image-input-") as tmp:
        fixed_path, image_path = Path(tmp) / "fixed.onnx", Path(tmp) / "image.onnx"
        build_model(source, fixed_path, decoder="multi")
        build_model(source, image_path, decoder="multi", input_mode="image")
        fixed = PoseSession(fixed_path, providers="cpu", session_options=options)
        image_model = ort.InferenceSession(str(image_path), options,
                                           providers=["CPUExecutionProvider"])
        resize_graph = resize_session((353, 481), options)
        pil = Image.open(photo_path).convert("RGB")
        array = np.asarray(pil)
        batch = array[None]
        cases = {
            "pil+fixed": lambda: fixed.predict(pil),
            "in-graph": lambda: image_model.run(None, {"image": batch}),
            "resize-pil": lambda: np.asarray(pil.resize((481, 353), Image.BILINEAR)),
            "resize-graph": lambda: resize_graph.run(None, {"image": batch}),
        }
        timed = measure(cases, args.runs, args.warmup)
    results = {"image": photo_path.name, "image_size": list(array.shape[:2]),
               "backbone_size": [353, 481], "batch": 1, "threads": args.threads,
               "load_average_at_start": load_at_start, "load_average_at_end": load_average(),
               "cases": timed,
               "ratio_in_graph_vs_pil": timed["in-graph"]["median_ms"]
               / timed["pil+fixed"]["median_ms"]}
    for name, case in timed.items():
        print(f"{name:13s} median {case['median_ms']:8.2f} ms (p25 {case['p25_ms']:.2f}, "
              f"p75 {case['p75_ms']:.2f}, {case['runs']} runs)")
    print(f"ratio in-graph / pil+fixed: {results['ratio_in_graph_vs_pil']:.3f} (load average "
          f"{results['load_average_at_start']} at start, {results['load_average_at_end']} at end)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
