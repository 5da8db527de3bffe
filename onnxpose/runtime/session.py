"""PoseSession: one class that owns provider choice, pre- and post-processing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError, first_line
from onnxpose.limits import MAX_INPUT_PIXELS, MAX_INPUT_SIDE
from onnxpose.metadata import NORMALIZATIONS, parse_metadata
from onnxpose.runtime.images import load_image, to_input_tensor
from onnxpose.runtime.providers import CPU, canonical, resolve_providers
from onnxpose.runtime.results import PoseResult, results_from_outputs
from onnxpose.spec import IMAGE_INPUT_NAME, OUTPUT_NAME_SETS


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
        if session_options is None:  # errors are raised as one line, not also logged to stderr
            session_options = ort.SessionOptions()
            session_options.log_severity_level = 4
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
        try:  # json.loads only: metadata is data, never code
            self.info = parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        except Exception as exc:
            raise OnnxPoseError(self.model_path, f"corrupt onnxpose metadata "
                                                 f"({first_line(exc, 200)})") from exc
        if self.info is None:
            raise OnnxPoseError(self.model_path, "not an onnxpose model (no onnxpose metadata); "
                                                 "build it with `onnxpose build` or use "
                                                 "onnxruntime.InferenceSession directly")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._check_model()

    def _check_model(self) -> None:
        """The metadata must describe this graph: input name, type, layout; decoder outputs."""
        info, path = self.info, self.model_path
        problems = []
        inputs = {i.name: i for i in self.session.get_inputs()}
        expected_type = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}.get(info.input_dtype)
        input_name = IMAGE_INPUT_NAME if info.image_input else info.input_name
        if info.image_input:
            expected_type = "tensor(uint8)"
        if input_name not in inputs:
            problems.append(f"input {input_name!r} is not a graph input")
        elif expected_type is None or inputs[input_name].type != expected_type:
            problems.append(f"input type {info.input_dtype!r} does not match the graph's "
                            f"{inputs[info.input_name].type}")
        if info.input_layout not in ("NHWC", "NCHW"):
            problems.append(f"unknown input layout {info.input_layout!r}")
        if info.normalization not in NORMALIZATIONS:
            problems.append(f"unknown normalization {info.normalization!r}")
        if not (1 <= info.input_height <= MAX_INPUT_SIDE and 1 <= info.input_width <= MAX_INPUT_SIDE
                and info.input_height * info.input_width <= MAX_INPUT_PIXELS):
            problems.append(f"input size {info.input_height}x{info.input_width} is out of range")
        names = set(self.output_names)
        try:
            expected = set(info.output_names)  # by onnxpose.spec, for the declared decoder
        except (TypeError, ValueError, KeyError):
            expected = None
        if expected is None and not any(known <= names for known in OUTPUT_NAME_SETS):
            problems.append(f"outputs {sorted(names)} are not onnxpose decoder outputs")
        elif expected is not None and not expected <= names:
            problems.append(f"outputs {sorted(names)} are not the declared decoder's "
                            f"{sorted(expected)}")
        if problems:
            raise OnnxPoseError(path, "inconsistent onnxpose model: " + "; ".join(problems))

    @property
    def providers(self) -> list[str]:
        """The providers onnxruntime actually enabled, in priority order."""
        return self.session.get_providers()

    @property
    def multi_pose(self) -> bool:
        return self.info.multi_pose

    @property
    def input_name(self) -> str:
        return IMAGE_INPUT_NAME if self.info.image_input else self.info.input_name

    def preprocess(self, images) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Images (paths, PIL images or HxWx3 uint8 arrays) → (input tensor, original sizes).
        An image-input model takes the photos as they are (one size per batch)."""
        loaded = [load_image(im) for im in images]
        sizes = [(im.height, im.width) for im in loaded]
        if self.info.image_input:
            if len(set(sizes)) > 1:
                raise OnnxPoseError(self.model_path, "the images of one batch must share a size "
                                                     "(predict_batch runs each size apart)")
            return np.stack([np.asarray(im, dtype=np.uint8) for im in loaded]), sizes
        return to_input_tensor(loaded, self.info), sizes

    def run(self, input_tensor: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs by name for an already preprocessed batch."""
        try:
            values = self.session.run(None, {self.input_name: input_tensor})
        except Exception as exc:  # onnxruntime: shape errors, allocation failures
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise OnnxPoseError(self.model_path, f"onnxruntime failed to run the model ({reason})") from exc
        return dict(zip(self.output_names, values))

    def predict_batch(self, images) -> list[PoseResult]:
        if self.info.image_input and len(images) > 1:  # one run per image: sizes may differ
            return [result for image in images for result in self.predict_batch([image])]
        tensor, sizes = self.preprocess(images)
        return results_from_outputs(self.run(tensor), self.info, sizes)

    def predict(self, image) -> PoseResult:
        """Poses in one image, in the original image's pixels."""
        return self.predict_batch([image])[0]
