"""Convert a source model to ONNX in this process, with tf2onnx's Python API (TF formats) or
``onnx`` only (ONNX sources, checked before anything else looks at them).

Used by ``convert.convert_to_onnx`` (``ONNXPOSE_ISOLATE=0``, ONNX sources) and by the converter
server's forked children (``convert.isolated``); it imports neither of them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from pathlib import Path

import onnx

from onnxpose.errors import OnnxPoseError, first_line
from onnxpose.metadata import PREFIX, parse_metadata

TF_FORMATS = ("tflite", "savedmodel", "tfjs")
#: tf2onnx and TensorFlow keep global graph state: one in-process TF conversion at a time
TF_LOCK = threading.RLock()


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


def convert_tflite(path: Path, opset: int) -> onnx.ModelProto:
    with quiet_tensorflow():
        import tf2onnx
        try:
            model, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
        except Exception as exc:  # tf2onnx raises many types on broken flatbuffers
            raise OnnxPoseError(path, f"cannot convert TFLite model ({first_line(exc)})") from exc
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
            raise OnnxPoseError(path, f"cannot convert SavedModel ({first_line(exc)})") from exc
    return model


def _undecodable_string(message) -> str | None:
    """The first string field of ``message`` (recursively) that is not valid UTF-8, or None.

    protobuf hands such a field to Python as ``bytes`` instead of ``str``.
    """
    string, nested = 9, 11  # FieldDescriptor.TYPE_STRING, TYPE_MESSAGE
    stack = [message]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            repeated = (field.is_repeated if hasattr(field, "is_repeated")
                        else field.label == field.LABEL_REPEATED)
            if field.type == string:
                for item in (value if repeated else (value,)):
                    if not isinstance(item, str):
                        return f"{current.DESCRIPTOR.name}.{field.name}"
            elif field.type == nested:
                stack.extend(value if repeated else (value,))
    return None


def _uses_external_data(model: onnx.ModelProto) -> bool:
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    return any(t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) for t in tensors)


def check_onnxpose_metadata(model: onnx.ModelProto, path) -> None:
    """An ``onnxpose.*`` metadata block, where present, must parse (json.loads, never eval)."""
    props = {p.key: p.value for p in model.metadata_props}
    if not any(key.startswith(PREFIX) for key in props):
        return
    try:
        parse_metadata(props)
    except Exception as exc:  # JSON errors, missing keys, wrong types
        raise OnnxPoseError(path, f"corrupt onnxpose metadata ({first_line(exc)})") from exc


def _without_coral_decoder_op(model: onnx.ModelProto, path) -> onnx.ModelProto:
    """The model to check: a tf2onnx conversion of a Coral ``_decoder.tflite`` keeps the
    custom op (``TFL_PosenetDecoderOp``, no schema) that ``build`` cuts off; check the rest."""
    from onnxpose.heads.coral_decoder_op import OP_SUFFIX, strip_coral_decoder_op
    if not any(n.op_type.endswith(OP_SUFFIX) for n in model.graph.node):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    strip_coral_decoder_op(copy, path)
    return copy


def convert_onnx(path: Path, opset: int) -> onnx.ModelProto:
    try:
        # never follow external-data references out of the file (refused below)
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxPoseError(path, f"not a readable ONNX model ({first_line(exc)})") from exc
    if len(model.graph.node) == 0 and len(model.graph.output) == 0:
        raise OnnxPoseError(path, "not an ONNX model (empty graph)")
    bad = _undecodable_string(model)
    if bad is not None:
        raise OnnxPoseError(path, f"not a valid ONNX model (field {bad} is not UTF-8 text)")
    if _uses_external_data(model):
        raise OnnxPoseError(path, "ONNX models with external tensor data are not supported "
                                  "(save it as one file: onnx.save(model, path, "
                                  "save_as_external_data=False))")
    try:
        onnx.checker.check_model(_without_coral_decoder_op(model, path))
    except OnnxPoseError:
        raise
    except Exception as exc:
        raise OnnxPoseError(path, f"not a valid ONNX model ({first_line(exc)})") from exc
    check_onnxpose_metadata(model, path)
    return upgrade_opset(model, opset, path)


def upgrade_opset(model: onnx.ModelProto, opset: int, path) -> onnx.ModelProto:
    """``model`` at ``opset`` at least (``onnx.version_converter``); never downgrades."""
    onnx_opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if onnx_opset < opset:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as exc:
            raise OnnxPoseError(path, f"cannot upgrade ONNX opset {onnx_opset} to {opset} "
                                      f"({first_line(exc)})") from exc
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


def preload_tensorflow() -> None:
    """Import what the TF converters need (the converter server does this once)."""
    with quiet_tensorflow():
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401
        from tf2onnx import tf_loader  # noqa: F401
        from onnxpose.convert import tfjs  # noqa: F401


def convert_in_process(fmt: str, path: Path, opset: int) -> onnx.ModelProto:
    """Convert in this process (TF formats one at a time: tf2onnx/TF global state)."""
    if fmt not in TF_FORMATS:
        return _CONVERTERS[fmt](path, opset)
    with TF_LOCK:
        return _CONVERTERS[fmt](path, opset)
