"""Step 2 of the flow: find the input and the PoseNet heads in a converted model."""

from onnxpose.heads.locate import HeadOverrides, Heads, ModelInput, locate_heads
from onnxpose.heads.coral_decoder_op import strip_coral_decoder_op

__all__ = ["HeadOverrides", "Heads", "ModelInput", "locate_heads", "strip_coral_decoder_op"]
