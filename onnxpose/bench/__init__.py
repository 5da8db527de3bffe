"""``onnxpose bench``: latency, throughput and first-run cost of PoseNet inference paths.

Side by side on the same inputs, for every usable execution provider and batch size:
the raw model (heads only) with the per-keypoint Python loop decoder and with the
vectorized numpy decoder, the onnxpose models with in-graph decoding (single- and
multi-pose), and the source TFLite model in the TFLite interpreter with numpy
decoding. Modules: ``options`` (providers and their settings), ``models`` (the
models and inputs), ``cases`` (one runner per case), ``timing``, ``placement``,
``report``, ``charts``, ``system``, ``run`` (the orchestration).
"""

from onnxpose.bench.run import BenchConfig, run_bench, write_reports

__all__ = ["BenchConfig", "run_bench", "write_reports"]
