"""PoseSession: one class that owns provider choice, pre- and post-processing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.metadata import parse_metadata
from onnxpose.runtime.images import load_image, to_input_tensor
from onnxpose.runtime.providers import CPU, canonical, resolve_providers
from onnxpose.runtime.results import PoseResult, results_from_outputs


class PoseSession:
    """Run an onnxpose-built model.

    ``providers``: "auto" (TensorRT > CUDA > CPU among those that really load
    here), or a list such as ``["cuda", "cpu"]`` / ``[("CUDAExecutionProvider",
    {...}), "CPUExecutionProvider"]``. A requested provider that cannot run
    raises OnnxPoseError; it is never silently replaced by the CPU. The plain
    ``onnxruntime.InferenceSession`` stays reachable as ``.session``.
    """

    def __init__(self, model_path: str | os.PathLike, providers="auto",
                 session_options=None):
        import onnxruntime as ort
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise OnnxPoseError(self.model_path, "no such model file")
        chosen = resolve_providers(providers)
        try:
            self.session = ort.InferenceSession(str(self.model_path), session_options,
                                                providers=chosen)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxPoseError(self.model_path, f"onnxruntime cannot load the model ({reason})") from exc
        wanted = {canonical(p if isinstance(p, str) else p[0]) for p in chosen}
        missing = wanted - set(self.session.get_providers()) - {CPU}
        if missing:
            raise OnnxPoseError(self.model_path, f"onnxruntime did not enable {', '.join(missing)} "
                                                 f"for this model (got {self.session.get_providers()})")
        self.info = parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        if self.info is None:
            raise OnnxPoseError(self.model_path, "not an onnxpose model (no onnxpose metadata); "
                                                 "build it with `onnxpose build` or use "
                                                 "onnxruntime.InferenceSession directly")
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        """The providers onnxruntime actually enabled, in priority order."""
        return self.session.get_providers()

    @property
    def multi_pose(self) -> bool:
        return self.info.multi_pose

    def preprocess(self, images) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Images (paths, PIL images or HxWx3 uint8 arrays) → (input tensor, original sizes)."""
        loaded = [load_image(im) for im in images]
        return to_input_tensor(loaded, self.info), [(im.height, im.width) for im in loaded]

    def run(self, input_tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs by name for an already preprocessed batch."""
        values = self.session.run(None, {self.info.input_name: input_tensor})
        return dict(zip(self.output_names, values))

    def predict_batch(self, images) -> list[PoseResult]:
        tensor, sizes = self.preprocess(images)
        return results_from_outputs(self.run(tensor), self.info, sizes)

    def predict(self, image) -> PoseResult:
        """Poses in one image, in the original image's pixels."""
        return self.predict_batch([image])[0]
