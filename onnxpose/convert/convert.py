"""Convert a source model to ONNX through tf2onnx's Python API (no subprocess)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import onnx

from onnxpose.convert.detect import detect_format
from onnxpose.errors import OnnxPoseError

DEFAULT_OPSET = 17


@contextlib.contextmanager
def quiet_tensorflow():
    """Silence TensorFlow/tf2onnx logging and warnings while converting."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    saved_stderr = _silence_fd(2)  # TFLite's C++ "INFO: Created XNNPACK delegate" lines
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        _restore_fd(2, saved_stderr)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _silence_fd(fd: int):
    try:
        saved = os.dup(fd)
    except OSError:
        return None
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return saved


def _restore_fd(fd: int, saved) -> None:
    if saved is not None:
        os.dup2(saved, fd)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def convert_tflite(path: Path, opset: int) -> onnx.ModelProto:
    with quiet_tensorflow():
        import tf2onnx
        try:
            model, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
        except Exception as exc:  # tf2onnx raises many types on broken flatbuffers
            raise OnnxPoseError(path, f"cannot convert TFLite model ({_first_line(exc)})") from exc
    return model


def convert_savedmodel(path: Path, opset: int) -> onnx.ModelProto:
    with quiet_tensorflow():
        import tf2onnx
        from tf2onnx import tf_loader
        try:
            graph_def, inputs, outputs, tensors_to_rename = tf_loader.from_saved_model(
                str(path), None, None, return_tensors_to_rename=True)
            model, _ = tf2onnx.convert.from_graph_def(
                graph_def, input_names=inputs, output_names=outputs, opset=opset,
                tensors_to_rename=tensors_to_rename)
        except Exception as exc:
            raise OnnxPoseError(path, f"cannot convert SavedModel ({_first_line(exc)})") from exc
    return model


def convert_onnx(path: Path, opset: int) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise OnnxPoseError(path, f"not a readable ONNX model ({_first_line(exc)})") from exc
    if len(model.graph.node) == 0 and len(model.graph.output) == 0:
        raise OnnxPoseError(path, "not an ONNX model (empty graph)")
    onnx_opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if onnx_opset < opset:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as exc:
            raise OnnxPoseError(path, f"cannot upgrade ONNX opset {onnx_opset} to {opset} "
                                      f"({_first_line(exc)})") from exc
    return model


def convert_tfjs_model(path: Path, opset: int) -> onnx.ModelProto:
    from onnxpose.convert.tfjs import convert_tfjs
    model_json = path / "model.json" if path.is_dir() else path
    with quiet_tensorflow():
        return convert_tfjs(model_json, opset=opset)


_CONVERTERS = {
    "tflite": convert_tflite,
    "savedmodel": convert_savedmodel,
    "onnx": convert_onnx,
    "tfjs": convert_tfjs_model,
}


def convert_to_onnx(path: str | Path, opset: int = DEFAULT_OPSET) -> tuple[onnx.ModelProto, str]:
    """Convert ``path`` to ONNX; returns (model, source format)."""
    if opset < 17:
        raise OnnxPoseError(None, f"opset {opset} is too old: onnxpose needs opset 17 or newer")
    path = Path(path)
    fmt = detect_format(path)
    return _CONVERTERS[fmt](path, opset), fmt
