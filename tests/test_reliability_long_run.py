"""Long runs with reduced counts: RSS flat after warm-up, no file handle or temp file leaked.

The full run (10,000 predictions on the real model) is ``benchmarks/long_run.py``.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from onnxpose import PoseSession
from onnxpose.build import build_model
from onnxpose.testing.toy_models import toy_posenet_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from long_run import builds_many, open_fds, predict_many, rss_kb, sessions_many  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")]

PREDICTIONS, WARMUP = 1000, 200
#: RSS may wobble by allocator noise; a leak of even 16 KB per prediction would exceed this
RSS_GROWTH_LIMIT_MB = 16


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("long")
    onnx.save(toy_posenet_onnx(input_hw=(65, 65), head_dtype="uint8", input_dtype="uint8"),
              directory / "raw.onnx")
    build_model(directory / "raw.onnx", directory / "built.onnx")
    return directory


def test_thousand_predictions_keep_rss_and_fds_flat(toy_model):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(photo).save(toy_model / "photo.png")
    Image.fromarray(photo).save(toy_model / "photo.jpg", quality=90)
    inputs = [toy_model / "photo.png", photo, toy_model / "photo.jpg", Image.fromarray(photo[::2, ::2])]
    session = PoseSession(toy_model / "built.onnx", providers=["cpu"])
    report = predict_many(session, inputs, PREDICTIONS, WARMUP, every=50, log=None)
    growth = report["rss_mb_at_end"] - report["rss_mb_at_warmup"]
    assert growth < RSS_GROWTH_LIMIT_MB, report
    assert report["fds_at_end"] == report["fds_at_warmup"] == report["fds_max"], report


def test_sessions_opened_and_dropped_leak_no_file_handles(toy_model):
    report = sessions_many(toy_model / "built.onnx", 40)
    assert report["fds_after"] == report["fds_before"], report
    assert report["rss_mb_after"] - report["rss_mb_before"] < RSS_GROWTH_LIMIT_MB, report


def test_repeated_builds_leak_no_handles_or_temp_files(toy_model, quant_tflite):
    for source, count in ((toy_model / "raw.onnx", 5), (quant_tflite, 2)):
        report = builds_many(source, count)
        assert report["fds_after_last"] == report["fds_after_first"], report
        assert report["temp_files_left"] == [] and report["files_in_output_dir"] == ["built.onnx"]


def test_failed_builds_leak_nothing(tmp_path, quant_tflite):
    from onnxpose.errors import OnnxPoseError
    bad = tmp_path / "bad.tflite"
    data = bytearray(quant_tflite.read_bytes())
    data[476] = 3  # crashes TensorFlow in the converter child
    bad.write_bytes(bytes(data))
    saved = tempfile.tempdir
    private = tmp_path / "tmp"
    private.mkdir()
    tempfile.tempdir = str(private)
    try:
        with pytest.raises(OnnxPoseError):
            build_model(bad, tmp_path / "out.onnx")
        gc.collect()
        before = open_fds()
        for _ in range(5):
            with pytest.raises(OnnxPoseError):
                build_model(bad, tmp_path / "out.onnx")
        gc.collect()
        assert open_fds() == before
    finally:
        tempfile.tempdir = saved
    assert list(private.iterdir()) == [] and not (tmp_path / "out.onnx").exists()
    assert rss_kb() > 0
