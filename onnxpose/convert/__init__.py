"""Step 1 of the flow: a source model (TFLite, SavedModel, TF.js, ONNX) → onnx.ModelProto."""

from onnxpose.convert.detect import SOURCE_FORMATS, detect_format
from onnxpose.convert.convert import convert_to_onnx

__all__ = ["SOURCE_FORMATS", "detect_format", "convert_to_onnx"]
