"""Concurrency: one PoseSession from many threads, parallel builds, writers racing for a path.

Reduced counts (8 threads x 25 predictions); the full run is ``benchmarks/concurrency.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxpose import PoseSession
from onnxpose.build import build_model
from onnxpose.io import write_bytes_atomic
from onnxpose.testing.toy_models import toy_posenet_onnx
from onnxpose.testing.varied_images import varied_images

REPO = Path(__file__).resolve().parents[1]
THREADS, PER_THREAD = 8, 25


def canonical(result):
    return result.keypoints.tobytes() + result.scores.tobytes() + repr(result.image_size).encode()


def test_one_session_from_eight_threads_equals_sequential(built_single, test_image):
    session = PoseSession(built_single, providers=["cpu"])
    images = varied_images(test_image, 10)
    expected = [canonical(session.predict(image)) for image in images]
    assert len(set(expected)) > 1  # the inputs really differ

    def worker(thread):
        rng = np.random.default_rng(thread)
        mismatches = 0
        for _ in range(PER_THREAD):
            index = int(rng.integers(len(images)))
            if canonical(session.predict(images[index])) != expected[index]:
                mismatches += 1
        return mismatches

    with ThreadPoolExecutor(THREADS) as pool:
        mismatches = list(pool.map(worker, range(THREADS)))
    assert mismatches == [0] * THREADS
    # batches from threads too
    batch = images[:4]
    want = [canonical(r) for r in session.predict_batch(batch)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: [canonical(r) for r in session.predict_batch(batch)], range(8)))
    assert all(g == want for g in got)


def same_model(a: Path, b: Path) -> bool:
    """Same outputs on the same input (tf2onnx's node names vary with the process's hash seed)."""
    sessions = [PoseSession(p, providers=["cpu"]) for p in (a, b)]
    if sessions[0].info != sessions[1].info:
        return False
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    tensor, _ = sessions[0].preprocess([image, image[::-1]])
    runs = [s.run(tensor) for s in sessions]
    return runs[0].keys() == runs[1].keys() and all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_two_builds_in_two_processes(tmp_path, quant_tflite):
    commands = [[sys.executable, "-m", "onnxpose", "build", str(quant_tflite), "-o",
                 str(tmp_path / f"p{i}.onnx"), "-q"] for i in range(2)]
    procs = [subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert same_model(tmp_path / "p0.onnx", tmp_path / "p1.onnx")
    PoseSession(tmp_path / "p0.onnx", providers=["cpu"])


@pytest.mark.parametrize("isolate", ["1", "0"])
def test_two_builds_in_two_threads(tmp_path, quant_tflite, monkeypatch, isolate):
    """TF conversions share tf2onnx's global state: serialized (server lock or TF_LOCK)."""
    monkeypatch.setenv("ONNXPOSE_ISOLATE", isolate)
    onnx.save(toy_posenet_onnx(), tmp_path / "toy.onnx")
    jobs = [(quant_tflite, tmp_path / "t0.onnx"), (quant_tflite, tmp_path / "t1.onnx"),
            (tmp_path / "toy.onnx", tmp_path / "toy0.onnx"), (tmp_path / "toy.onnx", tmp_path / "toy1.onnx")]
    barrier = threading.Barrier(len(jobs))

    def job(args):
        barrier.wait()
        return build_model(*args).validation.max_position_error_px

    with ThreadPoolExecutor(len(jobs)) as pool:
        errors = list(pool.map(job, jobs))
    assert all(e <= 1e-3 for e in errors)
    assert same_model(tmp_path / "t0.onnx", tmp_path / "t1.onnx")
    assert same_model(tmp_path / "toy0.onnx", tmp_path / "toy1.onnx")
    build_model(quant_tflite, tmp_path / "sequential.onnx")
    assert same_model(tmp_path / "t0.onnx", tmp_path / "sequential.onnx")


def test_writers_racing_for_one_path_leave_one_complete_file(tmp_path):
    target = tmp_path / "shared.bin"
    payloads = [bytes([i]) * (200_000 + 1000 * i) for i in range(8)]
    write_bytes_atomic(target, payloads[0])
    stop, seen, bad = threading.Event(), set(), []

    def reader():
        while not stop.is_set():
            data = target.read_bytes()
            if data not in payloads:
                bad.append(len(data))
            seen.add(data[:1])

    def writer(i):
        for _ in range(20):
            write_bytes_atomic(target, payloads[i])

    watcher = threading.Thread(target=reader)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    stop.set()
    watcher.join()
    assert bad == [] and target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]  # no temp files left


def test_two_builds_to_the_same_output(tmp_path):
    onnx.save(toy_posenet_onnx(input_dtype="uint8", head_dtype="uint8"), tmp_path / "a.onnx")
    onnx.save(toy_posenet_onnx(seed=1), tmp_path / "b.onnx")
    out = tmp_path / "out" / "built.onnx"
    out.parent.mkdir()
    for _ in range(3):  # threads
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda src: build_model(src, out), [tmp_path / "a.onnx", tmp_path / "b.onnx"]))
        assert [p.name for p in out.parent.iterdir()] == ["built.onnx"]
        PoseSession(out, providers=["cpu"]).predict(np.zeros((8, 8, 3), np.uint8))
    procs = [subprocess.Popen([sys.executable, "-m", "onnxpose", "build", str(tmp_path / src), "-o",
                               str(out), "-q"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for src in ("a.onnx", "b.onnx")]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    assert [p.name for p in out.parent.iterdir()] == ["built.onnx"]
    model = PoseSession(out, providers=["cpu"])
    assert model.info.input_dtype in ("uint8", "float32")
    source = model.session.get_modelmeta().custom_metadata_map["onnxpose.source"]
    assert '"file": "a.onnx"' in source or '"file": "b.onnx"' in source


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    fresh = tmp_path / "fresh.bin"
    write_bytes_atomic(fresh, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    fresh.chmod(0o640)
    write_bytes_atomic(fresh, b"y")
    assert fresh.stat().st_mode & 0o777 == 0o640 and fresh.read_bytes() == b"y"
