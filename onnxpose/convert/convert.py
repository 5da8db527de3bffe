"""Convert a source model to ONNX through tf2onnx's Python API.

TFLite, SavedModel and TF.js conversions call tf2onnx's Python API in a forked child of a
converter server (``onnxpose.convert.isolated``), so a file that crashes or hangs TensorFlow's
C++ code costs a one-line error, not the caller's process. ONNX sources are read here, with
``onnx`` only (no TensorFlow), and checked before anything else looks at them. Both paths run
the same converters (``onnxpose.convert.in_process``).
"""

from __future__ import annotations

from pathlib import Path

import onnx

from onnxpose.convert.detect import detect_format
from onnxpose.convert.in_process import (  # noqa: F401 (TF_LOCK, quiet_tensorflow: re-exported)
    TF_FORMATS, TF_LOCK, convert_in_process, quiet_tensorflow, upgrade_opset)
from onnxpose.errors import OnnxPoseError
from onnxpose.spec import MAX_OPSET, OPSET

DEFAULT_OPSET = OPSET
#: TensorFlow sources are converted by tf2onnx at this opset (tested with every source
#: form), then upgraded to the target opset by ``onnx.version_converter``.
TF_CONVERT_OPSET = OPSET


def convert_to_onnx(path: str | Path, opset: int = DEFAULT_OPSET) -> tuple[onnx.ModelProto, str]:
    """Convert ``path`` to ONNX; returns (model, source format).

    TF formats are converted in a disposable child process (``onnxpose.convert.isolated``);
    ``ONNXPOSE_ISOLATE=0`` converts them in this process instead.
    """
    if not OPSET <= opset <= MAX_OPSET:
        raise OnnxPoseError(None, f"opset {opset} is not supported: onnxpose builds opsets "
                                  f"{OPSET} to {MAX_OPSET}")
    path = Path(path)
    fmt = detect_format(path)
    if fmt in TF_FORMATS:  # tf2onnx converts at the opset it supports; then upgrade
        # imported here, not at the top: the converter server runs as ``python -m
        # onnxpose.convert.isolated``, which imports this package first and must not find the
        # module already imported (runpy's double-import warning)
        from onnxpose.convert.isolated import convert_isolated, isolation_enabled
        if isolation_enabled():
            model = convert_isolated(fmt, path, TF_CONVERT_OPSET)
        else:
            model = convert_in_process(fmt, path, TF_CONVERT_OPSET)
        return upgrade_opset(model, opset, path), fmt
    return convert_in_process(fmt, path, opset), fmt
