"""Tell a model's format from its path and first bytes (never from the extension alone)."""

from __future__ import annotations

from pathlib import Path

from onnxpose.errors import OnnxPoseError

SOURCE_FORMATS = ("tflite", "savedmodel", "tfjs", "onnx")
#: ONNX (protobuf) and TFLite (flatbuffer) files cannot exceed 2 GiB
MAX_MODEL_BYTES = 2**31 - 1


def detect_format(path: str | Path) -> str:
    """Return one of SOURCE_FORMATS for ``path`` or raise OnnxPoseError."""
    path = Path(path)
    if not path.exists():
        raise OnnxPoseError(path, "no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        if (path / "model.json").is_file():
            return "tfjs"
        raise OnnxPoseError(path, "directory is neither a TF SavedModel (no saved_model.pb) "
                                  "nor a TF.js graph model (no model.json)")
    if not path.is_file():
        raise OnnxPoseError(path, "not a regular file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise OnnxPoseError(path, f"file too large ({size} bytes): ONNX and TFLite models are at "
                                  "most 2 GiB")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise OnnxPoseError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if len(head) == 0:
        raise OnnxPoseError(path, "file is empty")
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if path.name.endswith(".json"):
        return "tfjs"
    if path.suffix == ".onnx" or head[:1] == b"\x08":  # ONNX: field 1 (ir_version) varint
        return "onnx"
    if path.suffix == ".tflite":
        raise OnnxPoseError(path, "not a TFLite model (no TFL3 identifier)")
    raise OnnxPoseError(path, "unknown model format (expected .tflite, .onnx, a TF.js model.json "
                              "or a SavedModel directory)")
