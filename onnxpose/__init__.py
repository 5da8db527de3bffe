"""onnxpose: PoseNet-style models → ONNX models that output final keypoints.

The flow, one sub-package per step: ``convert`` (source model → ONNX with
tf2onnx) → ``heads`` (locate heatmaps, short offsets, displacements) →
``decoder`` (append decoding as standard ONNX ops with onnx-graphsurgeon) →
``validate`` (checker, shape inference, onnxruntime vs the numpy
``reference`` decoders) → ``runtime`` (``PoseSession`` on any onnxruntime
execution provider).

The core install (``pip install onnxpose``) is the runtime: ``import onnxpose``,
``PoseSession`` and ``onnxpose predict`` need no TensorFlow, tf2onnx or onnx-graphsurgeon
(those are the ``build`` extra, imported only by ``build_model``).
"""

from onnxpose.version import __version__

__all__ = ["__version__", "PoseSession", "build_model"]


def __getattr__(name):  # lazy: importing onnxpose must not import TensorFlow
    if name == "PoseSession":
        from onnxpose.runtime.session import PoseSession
        return PoseSession
    if name == "build_model":
        from onnxpose.build import build_model
        return build_model
    raise AttributeError(name)
