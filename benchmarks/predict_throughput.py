"""images/s of `onnxpose predict` over a folder (local engine, CPU, batch 1 and 8) against the
raw session on the same preprocessed batches, and the Ray engine next to it; JSON + PNG.

    python3 benchmarks/predict_throughput.py --model out/single.onnx --images 200 \
        --out benchmarks/results/cpu-2core

The folder is made from ../shared/images/test_couple.jpg (onnxpose.testing.scale_inputs) at the
photo's size. Goal: the pipeline reaches >= 90 % of the raw session's images/s. Also measured in
the same run: the reading pool alone (JPEG decode + PIL resize, no session), which bounds the
pipeline from above; where reading alone is slower than the session (a 1920x1278 JPEG on a
machine whose cores the session already uses), the ratio to min(raw, reading) says how well the
pipeline overlaps the two. Where both use every core while they run (the session's thread
pool, the reading threads), an image costs the sum of both CPU times, so no pipeline beats the
shared-CPU bound 1 / (1/raw + 1/reading); the ratio to it is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared"))


def raw_rate(session, sources, batch: int) -> float:
    """images/s of session.run alone on the batches preprocessed beforehand."""
    import numpy as np
    tensors = [session.preprocess([s.path])[0] for s in sources]
    runs = [np.concatenate(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]
    session.run(runs[0])
    start = time.perf_counter()
    for run in runs:
        session.run(run)
    return len(tensors) / (time.perf_counter() - start)


def reading_rate(session, sources, threads: int) -> float:
    """images/s of the reading pool alone (decode + resize, no session): what the pipeline
    cannot exceed however well it overlaps reading with the session."""
    import threading

    from onnxpose.runtime.pipeline import iter_items, prefetch, prepare
    start = time.perf_counter()
    count = sum(1 for _ in prefetch(iter_items(sources), lambda item: prepare(
        session.preprocess, item, False), threads, 32, threading.Event()))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-2core")
    args = parser.parse_args()

    from PIL import Image

    from onnxpose.runtime.pipeline import PredictOptions, reading_threads, run_local
    from onnxpose.runtime.session import PoseSession
    from onnxpose.runtime.sources import expand_inputs
    from onnxpose.testing.scale_inputs import make_image_folder

    photo = SHARED / "images" / "test_couple.jpg"
    work = Path(tempfile.mkdtemp(prefix="onnxpose-bench-"))
    with Image.open(photo) as image:
        make_image_folder(photo, work / "images", args.images, image.size)
    sources = expand_inputs([work / "images"])
    session = PoseSession(args.model, providers=["cpu"])
    threads = reading_threads(0)
    reading = reading_rate(session, sources, threads)
    results = {"model": str(args.model), "images": len(sources), "cpus": os.cpu_count(),
               "reading_threads": threads, "reading_alone_images_per_s": reading, "cases": []}
    print(f"reading alone (decode + resize, {threads} threads, no session): {reading:.1f} images/s")
    for batch in [int(b) for b in args.batches.split(",")]:
        raw = raw_rate(session, sources, batch)
        options = PredictOptions(batch=batch, jsonl=work / f"local-{batch}.jsonl", progress=False)
        summary = run_local(session, sources, options)
        rate = summary.records / summary.seconds
        bound = min(raw, reading)
        # both on the same cores, each using all of them while it runs: the CPU time of an
        # image is the sum of the two, so no overlap can beat 1 / (1/raw + 1/reading)
        shared = 1 / (1 / raw + 1 / reading)
        results["cases"].append({"engine": "local", "batch": batch, "images_per_s": rate,
                                 "raw_session_images_per_s": raw, "ratio": rate / raw,
                                 "bound_images_per_s": bound, "ratio_to_bound": rate / bound,
                                 "shared_cpu_bound_images_per_s": shared,
                                 "ratio_to_shared_cpu_bound": rate / shared})
        print(f"local batch {batch}: {rate:.1f} images/s, raw session {raw:.1f} ({rate / raw:.0%}); "
              f"of min(raw, reading alone) {bound:.1f}: {rate / bound:.0%}; of the shared-CPU "
              f"bound 1/(1/raw + 1/reading) {shared:.1f}: {rate / shared:.0%}")
    if args.ray:
        import ray

        from onnxpose.scale.ray_engine import run_ray
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        batch = max(int(b) for b in args.batches.split(","))
        options = PredictOptions(batch=batch, jsonl=work / "ray.jsonl", progress=False)
        summary = run_ray(args.model, sources, options, providers=["cpu"], num_actors=1)
        ray.shutdown()
        rate = summary.records / summary.seconds
        results["cases"].append({"engine": "ray", "batch": batch, "images_per_s": rate,
                                 "num_actors": 1, "seconds_with_startup": summary.seconds})
        print(f"ray batch {batch}, 1 actor: {rate:.1f} images/s (with Ray's start-up of the plan)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{c['engine']} b{c['batch']}" for c in results["cases"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(labels, [c["images_per_s"] for c in results["cases"]], label="predict")
    raw = [c.get("raw_session_images_per_s", 0) for c in results["cases"]]
    ax.scatter(labels, raw, color="k", marker="_", s=400, label="raw session", zorder=3)
    ax.axhline(reading, color="tab:red", linestyle="--", label="reading alone (no session)")
    ax.set_ylabel("images/s")
    ax.set_title(f"onnxpose predict, {len(sources)} images, CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "predict_throughput.png", dpi=120)
    print(f"wrote {args.out / 'predict_throughput.json'} and predict_throughput.png")


if __name__ == "__main__":
    main()
