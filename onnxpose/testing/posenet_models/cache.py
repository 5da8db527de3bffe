"""Build each PoseNet file once under the cache directory, keyed by every parameter."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from onnxpose.errors import OnnxPoseError
from onnxpose.testing.posenet_models.forms import save_savedmodel, save_tflite, save_tfjs
from onnxpose.testing.posenet_models.network import (
    _BUILD_VERSION, _REPO_ROOT, FORMS, REAL_TFLITE_PATH, _check_stride, _resolve_atrous,
    build_posenet_mobilenet)

# cache

def cache_dir() -> Path:
    """``$ONNXPOSE_CACHE`` or ``<repo>/.cache/models`` (``~/.cache/onnxpose/models`` if not in a checkout)."""
    env = os.environ.get("ONNXPOSE_CACHE")
    if env:
        return Path(env)
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / ".cache" / "models"
    return Path.home() / ".cache" / "onnxpose" / "models"


@functools.lru_cache(maxsize=1)
def _file_digest(path: str, _mtime: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _cache_key(input_hw, output_stride, weights, seed, atrous, tflite_path) -> str:
    h, w = (int(v) for v in input_hw)
    key = f"posenet_mnv1_075_{h}x{w}_os{output_stride}_{weights}"
    if weights == "random":
        key += f"_seed{int(seed)}"
    else:
        path = Path(tflite_path) if tflite_path is not None else REAL_TFLITE_PATH
        if not path.is_file():
            raise OnnxPoseError(path, "PoseNet TFLite model not found (real weights need shared/models)")
        key += "_" + _file_digest(str(path.resolve()), path.stat().st_mtime_ns)
    key += ("_atrous" if atrous else "_plain") + f"_v{_BUILD_VERSION}"
    return key


@functools.lru_cache(maxsize=2)
def _memo_model(input_hw, output_stride, weights, seed, atrous, tflite_path):
    return build_posenet_mobilenet(input_hw, output_stride, weights, seed, tflite_path, atrous)


def ensure_model(form: str, input_hw=(257, 257), output_stride: int = 32, weights: str = "real",
                 seed: int = 0, *, atrous: bool | None = None, tflite_path=None) -> Path:
    """Path of a cached PoseNet file, built on first use: "savedmodel" -> the SavedModel directory,
    "tflite" -> the .tflite file, "tfjs" -> the TF.js model.json. Keyed by every parameter (seed
    only for random weights; the real TFLite's content hash for real ones)."""
    if form not in FORMS:
        raise OnnxPoseError(None, f"form must be one of {FORMS}, got {form!r}")
    output_stride = _check_stride(output_stride)
    if weights not in ("real", "random"):
        raise OnnxPoseError(None, f"weights must be 'real' or 'random', got {weights!r}")
    input_hw = tuple(int(v) for v in input_hw)
    seed = int(seed) if weights == "random" else 0
    use_atrous = _resolve_atrous(atrous, weights)
    base = cache_dir() / _cache_key(input_hw, output_stride, weights, seed, use_atrous, tflite_path)
    target = {"savedmodel": base / "savedmodel", "tflite": base / "model.tflite",
              "tfjs": base / "tfjs" / "model.json"}[form]
    if target.exists():
        return target
    model = _memo_model(input_hw, output_stride, weights, seed, use_atrous,
                        None if tflite_path is None else str(tflite_path))
    if form == "savedmodel":
        save_savedmodel(model, target)
    elif form == "tflite":
        save_tflite(model, target)
    else:
        save_tfjs(model, target.parent)
    return target


# ---------------------------------------------------------------------------------------------
# check against Coral's quantized model
