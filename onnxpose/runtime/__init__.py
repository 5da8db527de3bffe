"""Step 5 of the flow: run a built model (PoseSession) on any onnxruntime execution provider."""
