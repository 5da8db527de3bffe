"""The benchmark cases and one runner per (case, provider, batch).

A runner's ``create()`` is the first-run cost (session creation, TensorRT
engine build or cache load); each ``__call__()`` is one timed iteration:
inference on the prepared batch plus, for the Python cases, dequantizing the
heads and decoding them. Inputs are prepared once, outside the timing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.reference.single_pose_loop import decode_single_pose_loop


@dataclass(frozen=True)
class CaseSpec:
    id: str
    label: str
    model: str | None  # key in Prepared.raw / Prepared.built; None for TFLite
    decode: str | None  # None (in-graph or none), "loop", "numpy"


CASES = {
    "raw": CaseSpec("raw", "raw model, heads only (no decoding)", "raw", None),
    "raw+loop": CaseSpec("raw+loop", "(a) raw model + per-keypoint Python loop decoder", "raw", "loop"),
    "raw+numpy": CaseSpec("raw+numpy", "(b) raw model + vectorized numpy decoder", "raw", "numpy"),
    "onnxpose-single": CaseSpec("onnxpose-single", "(c) onnxpose single-pose, decoded in-graph",
                                "single", None),
    "raw-all": CaseSpec("raw-all", "raw model, all heads incl. displacements (no decoding)",
                        "raw_all", None),
    "onnxpose-multi": CaseSpec("onnxpose-multi", "(c) onnxpose multi-pose, decoded in-graph",
                               "multi", None),
    "tflite+numpy": CaseSpec("tflite+numpy", "(d) source TFLite in the TFLite interpreter + numpy "
                                             "decoder", None, "numpy"),
    # decoding alone, on the same float heads (the raw model's output for the same input)
    "decode:loop": CaseSpec("decode:loop", "decoding alone: per-keypoint Python loop", None, "loop"),
    "decode:numpy": CaseSpec("decode:numpy", "decoding alone: vectorized numpy", None, "numpy"),
    "decode:onnxpose-single": CaseSpec("decode:onnxpose-single", "decoding alone: onnxpose "
                                       "single-pose decoder-only ONNX model", "decoder_single", None),
    "decode:onnxpose-multi": CaseSpec("decode:onnxpose-multi", "decoding alone: onnxpose "
                                      "multi-pose decoder-only ONNX model", "decoder_multi", None),
}
ORDER = tuple(CASES)


class PythonDecoder:
    """Heads by output name → keypoints [N,17,3] with a reference decoder ("loop" or "numpy")."""

    def __init__(self, kind: str, roles: dict[str, str], quantization: dict, layout: str,
                 output_stride: int, input_hw: tuple[int, int], coordinates: str = "stride"):
        if kind not in ("loop", "numpy"):
            raise ValueError(f"unknown decoder {kind!r}")
        self.kind, self.roles, self.quantization, self.layout = kind, roles, quantization, layout
        self.output_stride, self.input_hw, self.coordinates = output_stride, input_hw, coordinates

    def float_heads(self, outputs: dict) -> dict[str, np.ndarray]:
        """Float32 NHWC heads by role (displacement parts concatenated, forward first)."""
        heads = {role: self._float(outputs, role) for role in ("heatmaps", "short_offsets")}
        parts = [self._float(outputs, role) for role in sorted(self.roles)
                 if role.startswith("displacements")]
        if parts:
            heads["displacements"] = np.concatenate(parts, axis=3) if len(parts) > 1 else parts[0]
        return heads

    def _float(self, outputs: dict, role: str) -> np.ndarray:
        name = self.roles[role]
        value = outputs[name]
        q = self.quantization.get(name)
        if q is not None:
            value = (value.astype(np.float32) - np.float32(q[1])) * np.float32(q[0])
        elif value.dtype != np.float32:
            value = value.astype(np.float32)
        if self.layout == "NCHW":
            value = value.transpose(0, 2, 3, 1)
        return value

    def __call__(self, outputs: dict) -> np.ndarray:
        return self.decode(self._float(outputs, "heatmaps"), self._float(outputs, "short_offsets"))

    def decode(self, heatmaps: np.ndarray, short_offsets: np.ndarray) -> np.ndarray:
        """Float32 NHWC heads → keypoints [N,17,3] (y, x, score)."""
        if self.kind == "numpy":
            keypoints, _ = decode_single_pose(heatmaps, short_offsets, self.output_stride,
                                              self.input_hw, self.coordinates)
            return keypoints
        return np.asarray([decode_single_pose_loop(heatmaps[i], short_offsets[i], self.output_stride,
                                                   self.input_hw, self.coordinates)
                           for i in range(heatmaps.shape[0])], dtype=np.float32)


class OrtRunner:
    """An onnxruntime session on one provider; IO binding keeps data on a GPU device."""

    def __init__(self, case: CaseSpec, path, provider: str, providers: list, options,
                 feed: dict[str, np.ndarray], device_io: bool, decoder: PythonDecoder | None):
        self.case, self.path, self.provider, self.providers = case, path, provider, providers
        self.options, self.feed, self.device_io, self.decoder = options, feed, device_io, decoder
        self.session = self.binding = None
        self._last = None
        self.details: dict = {}

    def create(self) -> None:
        import onnxruntime as ort
        try:
            self.session = ort.InferenceSession(str(self.path), self.options,
                                                providers=self.providers)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxPoseError(self.path, f"onnxruntime cannot create a {self.provider} session "
                                           f"({reason})") from exc
        enabled = self.session.get_providers()
        if self.provider not in enabled:
            raise OnnxPoseError(self.path, f"onnxruntime did not enable {self.provider} "
                                           f"(got {enabled})")
        self.output_names = [o.name for o in self.session.get_outputs()]
        if self.device_io:
            binding = self.session.io_binding()
            self._device_inputs = [ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0)
                                   for value in self.feed.values()]
            for name, value in zip(self.feed, self._device_inputs):
                binding.bind_ortvalue_input(name, value)
            out_device = "cpu" if self.decoder is not None else "cuda"
            for name in self.output_names:
                binding.bind_output(name, out_device)
            binding.synchronize_inputs()
            self.binding = binding
            self.details["io_binding"] = f"input on cuda, outputs on {out_device}"
        else:
            self.details["io_binding"] = None
        self.details["session_providers"] = enabled
        self.details["threads_intra_op"] = self.options.intra_op_num_threads or "default"

    def __call__(self) -> None:
        if self.binding is not None:
            self.session.run_with_iobinding(self.binding)
            self.binding.synchronize_outputs()
            if self.decoder is not None:
                values = self.binding.copy_outputs_to_cpu()
                self._last = self.decoder(dict(zip(self.output_names, values)))
            return
        values = self.session.run(None, self.feed)
        self._last = self.decoder(dict(zip(self.output_names, values))) if self.decoder else values

    def keypoints(self) -> np.ndarray | None:
        """Keypoints [N,17,3] of the last call (untimed), where the case yields them."""
        if self.decoder is not None:
            return self._last
        if self.binding is not None:
            values = self.binding.copy_outputs_to_cpu()
        else:
            values = self._last
        if values is None:
            return None
        outputs = dict(zip(self.output_names, values))
        keypoints = outputs.get("keypoints")
        if keypoints is None or np.asarray(keypoints).ndim != 3:
            return None
        return np.asarray(keypoints)

    def close(self) -> None:
        self.session = self.binding = self._device_inputs = None


class FunctionRunner:
    """A Python function timed like a model (decoding alone on prepared heads)."""

    def __init__(self, case: CaseSpec, function):
        self.case, self.function, self._last = case, function, None
        self.details = {"runtime": "Python (host CPU, one thread)"}

    def create(self) -> None:
        pass

    def __call__(self) -> None:
        self._last = self.function()

    def keypoints(self):
        return self._last

    def close(self) -> None:
        self._last = None


def tflite_interpreter_class():
    """(Interpreter class, description): ai_edge_litert if installed, else tf.lite."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai_edge_litert Interpreter"
    except ImportError:
        pass
    from onnxpose.convert.convert import quiet_tensorflow
    with quiet_tensorflow():
        import tensorflow as tf
    return tf.lite.Interpreter, f"tf.lite.Interpreter (TensorFlow {tf.__version__})"


class TfliteRunner:
    """The source TFLite model in the TFLite interpreter (CPU) + the numpy decoder."""

    def __init__(self, case: CaseSpec, path, batch_input: np.ndarray, threads: int | None,
                 head_names: dict[str, str], output_stride: int, input_hw, coordinates: str):
        self.case, self.path, self.batch_input = case, path, batch_input
        self.threads = threads or os.cpu_count() or 1
        self.head_names, self.output_stride = head_names, output_stride
        self.input_hw, self.coordinates = input_hw, coordinates
        self._last = None
        self.details: dict = {}

    def create(self) -> None:
        from onnxpose.convert.convert import quiet_tensorflow
        interpreter_class, description = tflite_interpreter_class()
        batch = self.batch_input.shape[0]
        try:
            with quiet_tensorflow():
                interpreter = interpreter_class(model_path=str(self.path), num_threads=self.threads)
                detail = interpreter.get_input_details()[0]
                self.batched = True
                try:
                    if batch != int(detail["shape"][0]):
                        interpreter.resize_tensor_input(detail["index"],
                                                        [batch] + list(detail["shape"][1:]))
                    interpreter.allocate_tensors()
                except (RuntimeError, ValueError):
                    self.batched = False
                    interpreter.resize_tensor_input(detail["index"], [1] + list(detail["shape"][1:]))
                    interpreter.allocate_tensors()
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxPoseError(self.path, f"the TFLite interpreter cannot run this model "
                                           f"({reason})") from exc
        self.interpreter, self.input_index = interpreter, detail["index"]
        roles, quantization = self._heads(interpreter.get_output_details())
        self.output_indices = {name: index for name, index in roles.values()}
        self.decoder = PythonDecoder("numpy", {r: n for r, (n, _) in roles.items()}, quantization,
                                     "NHWC", self.output_stride, self.input_hw, self.coordinates)
        self.details = {"runtime": description, "threads": self.threads,
                        "batching": "resize_tensor_input" if self.batched else "one image per invoke"}

    def _heads(self, details: list[dict]):
        channels = {"heatmaps": 17, "short_offsets": 34}
        roles, quantization = {}, {}
        for role, wanted in channels.items():
            named = [d for d in details if d["name"] == self.head_names.get(role)]
            by_channels = [d for d in details if len(d["shape"]) == 4 and d["shape"][-1] == wanted]
            found = named or (by_channels if len(by_channels) == 1 else [])
            if not found:
                raise OnnxPoseError(self.path, f"the TFLite model has no {role} output")
            roles[role] = (found[0]["name"], found[0]["index"])
            scale, zero_point = found[0].get("quantization", (0.0, 0))
            if scale:
                quantization[found[0]["name"]] = (float(scale), int(zero_point))
        return roles, quantization

    def _invoke(self, images: np.ndarray) -> dict:
        self.interpreter.set_tensor(self.input_index, images)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index)
                for name, index in self.output_indices.items()}

    def __call__(self) -> None:
        if self.batched:
            outputs = self._invoke(self.batch_input)
        else:
            parts = [self._invoke(self.batch_input[i:i + 1]) for i in range(len(self.batch_input))]
            outputs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        self._last = self.decoder(outputs)

    def keypoints(self) -> np.ndarray | None:
        return self._last

    def close(self) -> None:
        self.interpreter = None
