"""Concurrency check at full counts: one PoseSession from many threads, parallel builds,
several writers to one output path.

    python3 benchmarks/concurrency.py [--threads 8] [--predictions 2000] [--out result.json]

1. The real PoseNet (built from ``$ONNXPOSE_SHARED``) predicts a set of different images
   sequentially; then ``--threads`` threads share that one PoseSession for ``--predictions``
   predictions in all (random image per call, paths, PIL images and arrays); every result must
   equal the sequential one bit for bit.
2. ``build`` twice at once: two processes (``python -m onnxpose build``) and two threads in
   one process, to different outputs; all must succeed and give the same outputs on the same
   input as a sequential build.
3. Four processes build to the same output path at once: the path must end with one complete,
   valid model and no temp files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared")).resolve()
SOURCE = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
IMAGE = SHARED / "images" / "test_couple.jpg"


def key(result) -> bytes:
    return result.keypoints.tobytes() + result.scores.tobytes() + repr(result.image_size).encode()


def shared_session(model: Path, threads: int, predictions: int) -> dict:
    from onnxpose import PoseSession
    from onnxpose.testing.varied_images import varied_images
    session = PoseSession(model, providers=["cpu"])
    inputs = varied_images(IMAGE, 12)
    started = time.monotonic()
    expected = [key(session.predict(image)) for image in inputs]
    sequential_s = (time.monotonic() - started) / len(inputs)
    per_thread = [predictions // threads + (i < predictions % threads) for i in range(threads)]
    barrier = threading.Barrier(threads)

    def worker(thread: int):
        rng = np.random.default_rng(thread)
        barrier.wait()
        wrong = 0
        for _ in range(per_thread[thread]):
            index = int(rng.integers(len(inputs)))
            wrong += key(session.predict(inputs[index])) != expected[index]
        return wrong

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        wrong = list(pool.map(worker, range(threads)))
    elapsed = time.monotonic() - started
    return {"threads": threads, "predictions": sum(per_thread), "distinct_images": len(inputs),
            "mismatches": sum(wrong), "seconds": round(elapsed, 1),
            "threaded_predictions_per_s": round(sum(per_thread) / elapsed, 1),
            "sequential_predictions_per_s": round(1 / sequential_s, 1)}


def outputs_equal(a: Path, b: Path) -> bool:
    from onnxpose import PoseSession
    sessions = [PoseSession(p, providers=["cpu"]) for p in (a, b)]
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    tensor, _ = sessions[0].preprocess([image])
    runs = [s.run(tensor) for s in sessions]
    return all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "onnxpose", *args]


def parallel_builds(work: Path, reference: Path) -> dict:
    from onnxpose.build import build_model
    started = time.monotonic()
    procs = [subprocess.Popen(cli("build", str(SOURCE), "-o", str(work / f"proc{i}.onnx"), "-q"),
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    codes = [p.wait(timeout=900) for p in procs]
    processes = {"exit_codes": codes, "seconds": round(time.monotonic() - started, 1),
                 "same_outputs_as_sequential": all(outputs_equal(work / f"proc{i}.onnx", reference)
                                                   for i in range(2) if codes[i] == 0)}
    barrier = threading.Barrier(2)

    def job(i):
        barrier.wait()
        return build_model(SOURCE, work / f"thread{i}.onnx").validation.max_position_error_px

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        errors = list(pool.map(job, range(2)))
    threads = {"validation_error_px": errors, "seconds": round(time.monotonic() - started, 1),
               "same_outputs_as_sequential": all(outputs_equal(work / f"thread{i}.onnx", reference)
                                                 for i in range(2))}
    return {"two_processes": processes, "two_threads": threads}


def same_path_writers(work: Path, writers: int = 4) -> dict:
    out_dir = work / "same"
    out_dir.mkdir()
    target = out_dir / "built.onnx"
    procs = [subprocess.Popen(cli("build", str(SOURCE), "-o", str(target), "-q"), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(writers)]
    codes = [p.wait(timeout=900) for p in procs]
    valid = False
    try:
        from onnxpose import PoseSession
        import onnx
        onnx.checker.check_model(onnx.load(str(target)), full_check=True)
        PoseSession(target, providers=["cpu"]).predict(IMAGE)
        valid = True
    except Exception as exc:  # noqa: BLE001
        valid = f"{type(exc).__name__}: {exc}"
    return {"writers": writers, "exit_codes": codes, "final_file_valid": valid,
            "files_in_directory": sorted(os.listdir(out_dir))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--predictions", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from onnxpose.build import build_model

    work = Path(tempfile.mkdtemp(prefix="onnxpose-concurrency-"))
    reference = work / "sequential.onnx"
    build_model(SOURCE, reference)
    report = {"cpu_count": os.cpu_count(),
              "shared_session": shared_session(reference, args.threads, args.predictions),
              "parallel_builds": parallel_builds(work, reference),
              "same_output_path": same_path_writers(work)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
