"""Shared fixtures: the real data in ONNXPOSE_SHARED (default ../shared) and built models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ONNXPOSE_SHARED", REPO.parent / "shared")).resolve()
QUANT_TFLITE = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"
DECODER_TFLITE = SHARED / "models" / "posenet_mobilenet_v1_075_353_481_quant_decoder.tflite"
TEST_IMAGE = SHARED / "images" / "test_couple.jpg"
REFERENCE_NPZ = SHARED / "reference" / "test_couple_353x481.npz"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"missing shared data {path}: set ONNXPOSE_SHARED to the shared/ directory")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def quant_tflite() -> Path:
    return _require(QUANT_TFLITE)


@pytest.fixture(scope="session")
def decoder_tflite() -> Path:
    return _require(DECODER_TFLITE)


@pytest.fixture(scope="session")
def test_image() -> Path:
    return _require(TEST_IMAGE)


@pytest.fixture(scope="session")
def reference() -> dict:
    with np.load(_require(REFERENCE_NPZ)) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def built_single(tmp_path_factory, quant_tflite) -> Path:
    """The real quantized model built with the default single-pose decoder and raw heads kept."""
    from onnxpose.build import build_model
    out = tmp_path_factory.mktemp("built") / "posenet_single.onnx"
    build_model(quant_tflite, out, keep_heads=True)
    return out


@pytest.fixture(scope="session")
def coral_settings(reference):
    """The decoder settings Coral's PosenetDecoderOp used for the reference outputs."""
    from onnxpose.spec import MultiPoseSettings
    return MultiPoseSettings.for_preset(
        "coral", max_poses=int(reference["max_detections"]),
        score_threshold=float(reference["score_threshold"]),
        nms_radius=float(reference["nms_radius_pixels"]),
        refine_steps=int(reference["refinement_steps"]),
        local_maximum_radius=int(reference["local_maximum_radius"]))


@pytest.fixture(scope="session")
def coral_heads(reference):
    """The float heads Coral's decoder op received: heatmaps, short offsets, mid offsets."""
    return (reference["decoder_in_heatmaps"], reference["decoder_in_short_offsets"],
            reference["decoder_in_mid_offsets"])


@pytest.fixture(scope="session")
def built_multi(tmp_path_factory, quant_tflite) -> Path:
    """The real quantized model built with the multi-pose (coral) decoder and raw heads kept."""
    from onnxpose.build import build_model
    out = tmp_path_factory.mktemp("built") / "posenet_multi.onnx"
    build_model(quant_tflite, out, decoder="multi", keep_heads=True)
    return out


@pytest.fixture
def openvino_ep():
    """The interpreter of onnxruntime's OpenVINO EP environment (scripts/install_openvino_ep.sh,
    run by the README's test command); skips where it is not installed."""
    from onnxpose.bench.runtimes import OPENVINO_EP_PYTHON
    if not OPENVINO_EP_PYTHON.exists():
        pytest.skip(f"{OPENVINO_EP_PYTHON} missing (bash scripts/install_openvino_ep.sh)")
    return OPENVINO_EP_PYTHON
