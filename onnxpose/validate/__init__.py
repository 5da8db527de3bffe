"""Step 4 of the flow: prove a built model is well-formed and decodes like the reference."""

from onnxpose.validate.check import ValidationReport, validate_model

__all__ = ["ValidationReport", "validate_model"]
