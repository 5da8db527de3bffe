"""Long run: many predictions in one process; RSS must stay flat and no file handle may leak.

    python3 benchmarks/long_run.py [--predictions 10000] [--warmup 500] [--model built.onnx]
                                   [--image photo.jpg] [--sessions 200] [--out result.json]

Builds the real PoseNet from ``$ONNXPOSE_SHARED`` (unless ``--model``), then predicts
``--predictions`` times in one PoseSession, cycling through the image from its path (decode
included), as a PIL image and as resized arrays. RSS (``/proc/self/statm``) and the number of
open file descriptors (``/proc/self/fd``) are sampled every 100 predictions; the report gives
the least-squares RSS slope after warm-up in KB per 1,000 predictions, and the fd counts.
``--sessions`` PoseSessions are then opened and dropped one after another (fd and RSS again),
and a few builds run to check that converter temp files do not pile up.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared")).resolve()
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


def rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope_kb_per_1000(samples: list[tuple[int, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    x = np.array([s[0] for s in samples], np.float64)
    y = np.array([s[1] for s in samples], np.float64)
    return float(np.polyfit(x, y, 1)[0] * 1000)


def predict_many(session, inputs, count: int, warmup: int, every: int = 100, log=print) -> dict:
    samples, fds = [], []
    started = time.monotonic()
    for i in range(count):
        session.predict(inputs[i % len(inputs)])
        done = i + 1
        if done % every == 0 or done == count:
            samples.append((done, rss_kb()))
            fds.append((done, open_fds()))
            if log and done % max(every * 10, 1) == 0:
                log(f"{done}/{count}: rss {samples[-1][1] / 1024:.1f} MB, fds {fds[-1][1]}, "
                    f"{done / (time.monotonic() - started):.1f} predictions/s")
    after = [s for s in samples if s[0] >= warmup]
    return {
        "predictions": count,
        "warmup": warmup,
        "seconds": round(time.monotonic() - started, 1),
        "rss_mb_at_warmup": round(after[0][1] / 1024, 2) if after else None,
        "rss_mb_at_end": round(samples[-1][1] / 1024, 2),
        "rss_mb_max": round(max(s[1] for s in samples) / 1024, 2),
        "rss_slope_kb_per_1000_predictions": round(slope_kb_per_1000(after), 2),
        "fds_at_warmup": next((f for n, f in fds if n >= warmup), None),
        "fds_at_end": fds[-1][1],
        "fds_max": max(f for _, f in fds),
        "samples": [(n, round(r / 1024, 2)) for n, r in samples],
    }


def sessions_many(model: Path, count: int) -> dict:
    from onnxpose import PoseSession
    PoseSession(model, providers=["cpu"])
    gc.collect()
    fds_before, rss_before = open_fds(), rss_kb()
    for _ in range(count):
        session = PoseSession(model, providers=["cpu"])
        session.predict(np.zeros((32, 32, 3), np.uint8))
        del session
    gc.collect()
    return {"sessions": count, "fds_before": fds_before, "fds_after": open_fds(),
            "rss_mb_before": round(rss_before / 1024, 2), "rss_mb_after": round(rss_kb() / 1024, 2)}


def builds_many(source: Path, count: int) -> dict:
    """``count`` builds; the converter's temp files go to a private directory that must end empty."""
    from onnxpose.build import build_model
    fds_first = None
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory() as private, tempfile.TemporaryDirectory() as out:
        tempfile.tempdir = private
        try:
            for i in range(count):
                build_model(source, Path(out) / "built.onnx")
                if i == 0:
                    gc.collect()
                    fds_first = open_fds()
        finally:
            tempfile.tempdir = saved
        gc.collect()
        return {"builds": count, "fds_after_first": fds_first, "fds_after_last": open_fds(),
                "temp_files_left": sorted(os.listdir(private)),
                "files_in_output_dir": sorted(os.listdir(out))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--model", type=Path, default=None, help="a built model (default: build the real one)")
    parser.add_argument("--image", type=Path, default=SHARED / "images" / "test_couple.jpg")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from PIL import Image
    from onnxpose import PoseSession
    from onnxpose.build import build_model

    source = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
    work = Path(tempfile.mkdtemp(prefix="onnxpose-long-run-"))
    model = args.model
    if model is None:
        model = work / "posenet.onnx"
        build_model(source, model)
    with Image.open(args.image) as im:
        photo = im.convert("RGB")
    inputs = [args.image, photo, np.asarray(photo.resize((640, 427))), np.asarray(photo.resize((300, 200)))]
    session = PoseSession(model, providers=["cpu"])
    report = {"model": str(model), "image": str(args.image), "cpu_count": os.cpu_count(),
              "predict": predict_many(session, inputs, args.predictions, args.warmup)}
    del session
    report["sessions"] = sessions_many(model, args.sessions)
    report["builds"] = builds_many(source, args.builds)
    text = json.dumps(report, indent=2)
    compact = dict(report, predict={k: v for k, v in report["predict"].items() if k != "samples"})
    print(json.dumps(compact, indent=2))
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
