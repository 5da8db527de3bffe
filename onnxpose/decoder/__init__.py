"""Step 3 of the flow: decoders appended to a graph as standard ONNX ops."""
