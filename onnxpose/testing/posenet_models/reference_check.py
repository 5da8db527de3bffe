"""Check the rebuild against Coral's quantized TFLite model (its outputs and every layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError
from onnxpose.testing.posenet_models.network import (
    HEAD_NAMES, REAL_TFLITE_PATH, SHARED_DIR, build_posenet_mobilenet, normalize_image)


REFERENCE_NPZ = SHARED_DIR / "reference" / "test_couple_353x481.npz"
# reference key, Keras head (or heads concatenated on the last axis)
_REFERENCE_HEADS = (("heatmaps", ("heatmap_2",)), ("short_offsets", ("offset_2",)),
                    ("mid_offsets", ("displacement_fwd_2", "displacement_bwd_2")))
# Coral TFLite tensor holding each Keras layer's (quantized) output
_CORAL_HEAD_TENSORS = {"heatmap_2": "float_heatmaps", "offset_2": "float_short_offsets",
                       "displacement_fwd_2": "MobilenetV1/displacement_fwd_2/BiasAdd",
                       "displacement_bwd_2": "MobilenetV1/displacement_bwd_2/BiasAdd"}


def _diff_stats(ours: np.ndarray, ref: np.ndarray, scale: float, zero_point: float) -> dict:
    # the quantized reference saturates at its uint8 range: clip ours the same way
    lo, hi = scale * (0 - zero_point), scale * (255 - zero_point)
    d = np.abs(np.clip(ours, lo, hi) - ref)
    return {"max": float(d.max()), "mean": float(d.mean()), "step": float(scale),
            "max_steps": float(d.max() / scale), "mean_steps": float(d.mean() / scale),
            "saturated_fraction": float(np.mean((ours < lo) | (ours > hi)))}


def compare_with_reference(npz_path=None, tflite_path=None, atrous: bool = False, model=None) -> dict:
    """Run the float rebuild (real weights, stride 16) on the reference ``image`` (normalized as
    Coral's uint8 input implies) and compare with Coral's dequantized outputs.

    Returns ``{head: stats}`` for "heatmaps", "short_offsets", "mid_offsets" (fwd/bwd concat),
    "displacement_fwd", "displacement_bwd"; stats = max / mean abs difference (also in output
    quantization steps) after clipping ours to the uint8 output range (the reference saturates).
    """
    npz = Path(npz_path) if npz_path is not None else REFERENCE_NPZ
    if not npz.is_file():
        raise OnnxPoseError(npz, "reference npz not found")
    ref = np.load(npz)
    image = ref["image"]
    if model is None:
        model = build_posenet_mobilenet(image.shape[1:3], int(ref["stride"]) if "stride" in ref.files else 16,
                                        "real", tflite_path=tflite_path, atrous=atrous)
    outputs = dict(zip(HEAD_NAMES, (np.asarray(o) for o in model(normalize_image(image, exact_quantized=True)))))
    result = {}
    for key, heads in _REFERENCE_HEADS:
        scale, zp = float(ref[f"{key}_scale"]), float(ref[f"{key}_zero_point"])
        ours = np.concatenate([outputs[h] for h in heads], axis=-1)
        result[key] = _diff_stats(ours, ref[key], scale, zp)
    scale, zp = float(ref["mid_offsets_scale"]), float(ref["mid_offsets_zero_point"])
    result["displacement_fwd"] = _diff_stats(outputs["displacement_fwd_2"], ref["mid_offsets"][..., :32], scale, zp)
    result["displacement_bwd"] = _diff_stats(outputs["displacement_bwd_2"], ref["mid_offsets"][..., 32:], scale, zp)
    return result


def compare_layers_with_tflite(npz_path=None, tflite_path=None, model=None) -> dict[str, float]:
    """Per layer: feed the rebuilt layer with the quantized TFLite model's own (dequantized) input
    of that layer, and return the max abs difference to the TFLite layer output, in units of that
    output's quantization step. An exact rebuild gives <= 0.5 (rounding) for every layer."""
    import tensorflow as tf

    npz = Path(npz_path) if npz_path is not None else REFERENCE_NPZ
    path = Path(tflite_path) if tflite_path is not None else REAL_TFLITE_PATH
    for p in (npz, path):
        if not p.is_file():
            raise OnnxPoseError(p, "file not found")
    image = np.load(npz)["image"]
    if model is None:
        model = build_posenet_mobilenet(image.shape[1:3], 16, "real", tflite_path=path, atrous=False)
    interpreter = tf.lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    tensors = {}
    for d in interpreter.get_tensor_details():
        q = d["quantization_parameters"]
        if len(q["scales"]) == 1 and d["dtype"] == np.uint8:
            tensors[d["name"]] = (interpreter.get_tensor(d["index"]), float(q["scales"][0]), float(q["zero_points"][0]))
    result = {}
    previous = normalize_image(image, exact_quantized=True)
    for layer in model.layers:
        if not layer.name.startswith("Conv2d_"):
            continue
        name = f"MobilenetV1/{layer.name}/Relu6"
        if name not in tensors:
            raise OnnxPoseError(path, f"no tensor {name} in the TFLite model")
        q, scale, zp = tensors[name]
        ref = scale * (q.astype(np.float64) - zp)
        ours = np.asarray(layer(previous))
        result[layer.name] = _diff_stats(ours, ref, scale, zp)["max_steps"]
        previous = ref.astype(np.float32)
    for head in HEAD_NAMES:
        q, scale, zp = tensors[_CORAL_HEAD_TENSORS[head]]
        ours = np.asarray(model.get_layer(head)(previous))
        result[head] = _diff_stats(ours, scale * (q.astype(np.float64) - zp), scale, zp)["max_steps"]
    return result


# ---------------------------------------------------------------------------------------------
