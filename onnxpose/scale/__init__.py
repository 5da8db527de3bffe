"""Beyond one machine: the Ray Data engine of `onnxpose predict --engine ray` (ray_engine.py)."""
