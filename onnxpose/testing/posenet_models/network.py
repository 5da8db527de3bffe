"""PoseNet MobileNetV1 0.75 in Keras: constants, layer plan, real and random weights."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError

# ---------------------------------------------------------------------------------------------
# constants

#: What the network expects as input: RGB in [-1, 1]. Coral's quantized input ``sub_2`` is uint8
#: with scale 1/128 and zero point 128, i.e. it feeds ``(x - 128) / 128`` for x in 0..255; TF.js
#: PoseNet feeds ``x / 127.5 - 1``. Both are this normalization (they differ by < 1/128).
INPUT_NORMALIZATION = "minus_one_to_one"
#: Input quantization of Coral's uint8 model: real = INPUT_QUANT_SCALE * (q - INPUT_QUANT_ZERO_POINT).
INPUT_QUANT_SCALE = 1.0 / 128.0
INPUT_QUANT_ZERO_POINT = 128

INPUT_NAME = "sub_2"
HEAD_NAMES = ("heatmap_2", "offset_2", "displacement_fwd_2", "displacement_bwd_2")
HEAD_CHANNELS = (17, 34, 32, 32)
OUTPUT_TENSOR_NAMES = tuple(f"MobilenetV1/{h}/BiasAdd" for h in HEAD_NAMES)
OUTPUT_STRIDES = (8, 16, 32)
FORMS = ("savedmodel", "tflite", "tfjs")
DEPTH_MULTIPLIER = 0.75

_REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DIR = Path(os.environ.get("ONNXPOSE_SHARED", _REPO_ROOT.parent / "shared"))
REAL_TFLITE_PATH = SHARED_DIR / "models" / "posenet_mobilenet_v1_075_353_481_quant.tflite"

# (stride, output channels) of Conv2d_0 and of the 13 separable blocks: MobileNetV1 x0.75, with
# the last two blocks at 384 channels as in PoseNet's checkpoint.
_BLOCKS = ((2, 24), (1, 48), (2, 96), (1, 96), (2, 192), (1, 192), (2, 384), (1, 384), (1, 384),
           (1, 384), (1, 384), (1, 384), (2, 384), (1, 384))
_FEATURES = 384
# bump when the generated files change, so that old cache entries are not reused
_BUILD_VERSION = 1
# random heads: (mean, std) of the outputs on the calibration image, std in pixels / stride units
_RANDOM_HEAD_TARGETS = {"heatmap_2": (-3.0, 2.5), "offset_2": (0.0, 0.25),
                        "displacement_fwd_2": (0.0, 2.0), "displacement_bwd_2": (0.0, 2.0)}
_CALIBRATION_HW = (161, 161)


def normalize_image(image, exact_quantized: bool = False) -> np.ndarray:
    """RGB 0..255 (any dtype) -> float32 in [-1, 1] as the network expects.

    ``exact_quantized=False``: ``x / 127.5 - 1`` (TF.js PoseNet). ``True``: ``(x - 128) / 128``,
    exactly what Coral's uint8 model computes from its input (use it to compare with Coral).
    """
    x = np.asarray(image, dtype=np.float32)
    if exact_quantized:
        return ((x - INPUT_QUANT_ZERO_POINT) * INPUT_QUANT_SCALE).astype(np.float32)
    return (x / 127.5 - 1.0).astype(np.float32)


def output_hw(input_hw, output_stride: int) -> tuple[int, int]:
    """Grid size of the heads: ``(H-1)//stride + 1`` per axis (353x481 @16 -> 23x31)."""
    return tuple((int(v) - 1) // int(output_stride) + 1 for v in input_hw)


def _check_stride(output_stride) -> int:
    if int(output_stride) not in OUTPUT_STRIDES:
        raise OnnxPoseError(None, f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    return int(output_stride)


def layer_plan(output_stride: int = 32, atrous: bool = True) -> list[dict]:
    """Per conv layer: name, kind ('conv'|'depthwise'|'pointwise'), stride, rate, channels.

    TF.js PoseNet's ``toOutputStridedLayers``: once the running stride equals ``output_stride``,
    later layers get stride 1 and (if ``atrous``) rate = product of the strides skipped before them.
    """
    output_stride = _check_stride(output_stride)
    plan = []
    current, rate = 1, 1
    for block, (stride, channels) in enumerate(_BLOCKS):
        if current == output_stride:
            layer_stride, layer_rate = 1, rate
            rate *= stride
        else:
            layer_stride, layer_rate = stride, 1
            current *= stride
        if not atrous:
            layer_rate = 1
        if block == 0:
            plan.append(dict(name="Conv2d_0", kind="conv", stride=layer_stride, rate=1, channels=channels))
        else:
            plan.append(dict(name=f"Conv2d_{block}_depthwise", kind="depthwise", stride=layer_stride,
                             rate=layer_rate, channels=plan[-1]["channels"]))
            plan.append(dict(name=f"Conv2d_{block}_pointwise", kind="pointwise", stride=1, rate=1,
                             channels=channels))
    return plan


def _expected_kernel_shapes() -> dict[str, tuple]:
    """Keras kernel shapes [kh, kw, in, out] (depthwise: [kh, kw, C, 1]) by layer name."""
    shapes, cin = {}, 3
    for layer in layer_plan(32, atrous=False):
        c = layer["channels"]
        if layer["kind"] == "conv":
            shapes[layer["name"]] = (3, 3, cin, c)
        elif layer["kind"] == "depthwise":
            shapes[layer["name"]] = (3, 3, cin, 1)
        else:
            shapes[layer["name"]] = (1, 1, cin, c)
        cin = c
    for head, c in zip(HEAD_NAMES, HEAD_CHANNELS):
        shapes[head] = (1, 1, _FEATURES, c)
    return shapes


# ---------------------------------------------------------------------------------------------
# weights

def _dequantize(values: np.ndarray, qparams: dict) -> np.ndarray:
    scales = np.asarray(qparams.get("scales", ()), dtype=np.float64)
    zero_points = np.asarray(qparams.get("zero_points", ()), dtype=np.float64)
    values = values.astype(np.float64)
    if scales.size == 0:  # a float tensor
        return values.astype(np.float32)
    if zero_points.size == 0:
        zero_points = np.zeros_like(scales)
    if scales.size == 1:
        return ((values - zero_points[0]) * scales[0]).astype(np.float32)
    shape = [1] * values.ndim
    shape[int(qparams.get("quantized_dimension", 0))] = -1
    return ((values - zero_points.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def load_real_weights(tflite_path=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dequantized (kernel, bias) per layer from Coral's PoseNet TFLite, in Keras layouts.

    Layers are found by name (``.../<layer>/weights...`` and ``.../<layer>/...bias``) and every
    shape is checked against the architecture. Raises OnnxPoseError if something does not fit.
    """
    path = Path(tflite_path) if tflite_path is not None else REAL_TFLITE_PATH
    if not path.is_file():
        raise OnnxPoseError(path, "PoseNet TFLite model not found (real weights need shared/models)")
    return _load_real_weights_cached(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _load_real_weights_cached(path: str, _mtime: int):
    import tensorflow as tf

    try:
        interpreter = tf.lite.Interpreter(model_path=path, experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        details = interpreter.get_tensor_details()
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
        raise OnnxPoseError(path, f"cannot read TFLite model: {exc}") from exc
    expected = _expected_kernel_shapes()
    weights = {}
    for layer, kshape in expected.items():
        pattern = re.compile(rf"(^|/){re.escape(layer)}/")
        kernels = [d for d in details if pattern.search(d["name"]) and "weights" in d["name"]
                   and len(d["shape"]) == 4]
        biases = [d for d in details if pattern.search(d["name"]) and "bias" in d["name"].lower()
                  and len(d["shape"]) == 1]
        if len(kernels) != 1 or len(biases) != 1:
            raise OnnxPoseError(path, f"expected one weight and one bias tensor for layer {layer}, "
                                      f"found {len(kernels)} and {len(biases)}")
        k = _dequantize(interpreter.get_tensor(kernels[0]["index"]), kernels[0]["quantization_parameters"])
        b = _dequantize(interpreter.get_tensor(biases[0]["index"]), biases[0]["quantization_parameters"])
        # TFLite: conv [out, kh, kw, in], depthwise [1, kh, kw, C]; Keras: [kh, kw, in, out] / [kh, kw, C, 1]
        k = np.ascontiguousarray(k.transpose(1, 2, 3, 0))
        if k.shape != kshape or b.shape != (kshape[2] if kshape[3] == 1 else kshape[3],):
            raise OnnxPoseError(path, f"layer {layer}: weight shape {k.shape} / bias {b.shape} "
                                      f"does not fit PoseNet MobileNetV1 0.75 (expected {kshape})")
        weights[layer] = (k, b)
    return weights


def _random_backbone_weights(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(int(seed))
    weights = {}
    for layer, kshape in _expected_kernel_shapes().items():
        if layer in HEAD_NAMES:
            continue
        kh, kw, cin, cout = kshape
        fan_in = kh * kw * (1 if cout == 1 else cin)
        kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kshape).astype(np.float32)
        bias = rng.normal(0.0, 0.1, cin if cout == 1 else cout).astype(np.float32)
        weights[layer] = (kernel, bias)
    return weights


def _calibration_images(seed: int, hw=_CALIBRATION_HW) -> np.ndarray:
    """Two seed-derived pseudo images in [-1, 1], [2, H, W, 3]: a smooth one and white noise."""
    import tensorflow as tf

    rng = np.random.default_rng([int(seed), 7])
    coarse = rng.uniform(-1.0, 1.0, (1, 9, 9, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, hw, method="bilinear").numpy()
    smooth = np.clip(smooth + rng.normal(0.0, 0.1, smooth.shape), -1.0, 1.0)
    noise = rng.uniform(-1.0, 1.0, smooth.shape)
    return np.concatenate([smooth, noise]).astype(np.float32)


def _calibrate_random_heads(model, seed: int, output_stride: int) -> dict:
    """Random head (kernel, bias) scaled per output channel so that each head output has the target
    mean / std over the calibration images (depends on seed and output stride, not on input size)."""
    x = _calibration_images(seed)
    for layer in model.layers:  # eager, layer by layer: the network is fully convolutional
        if layer.name.startswith("Conv2d_"):
            x = layer(x)
    feats = np.asarray(x, dtype=np.float64).reshape(-1, _FEATURES)
    mean = feats.mean(0)
    rng = np.random.default_rng([int(seed), 11])
    heads = {}
    for head, channels in zip(HEAD_NAMES, HEAD_CHANNELS):
        target_mean, target_std = _RANDOM_HEAD_TARGETS[head]
        if head != "heatmap_2":
            target_std *= output_stride
        w = rng.normal(0.0, 1.0 / np.sqrt(_FEATURES), (_FEATURES, channels))
        spread = ((feats - mean) @ w).std(0)
        w *= target_std / np.maximum(spread, 1e-6)
        b = target_mean - mean @ w
        heads[head] = (w.reshape(1, 1, _FEATURES, channels).astype(np.float32), b.astype(np.float32))
    return heads


# ---------------------------------------------------------------------------------------------
# Keras model

def _resolve_atrous(atrous, weights: str) -> bool:
    return (weights == "random") if atrous is None else bool(atrous)


def build_posenet_mobilenet(input_hw=(257, 257), output_stride: int = 32, weights: str = "real",
                            seed: int = 0, tflite_path=None, atrous: bool | None = None):
    """PoseNet MobileNetV1 0.75 as a ``keras.Model``: input ``sub_2`` float32 [1, H, W, 3] in [-1, 1],
    outputs [heatmaps (17), short offsets (34), displacement_fwd (32), displacement_bwd (32)].

    ``weights``: "real" (dequantized from Coral's TFLite at ``tflite_path``, default
    ``REAL_TFLITE_PATH``) or "random" (deterministic from ``seed``). ``atrous``: dilate the layers
    past ``output_stride`` as TF.js does; None = False for real weights, True for random ones.
    """
    import keras

    output_stride = _check_stride(output_stride)
    if weights not in ("real", "random"):
        raise OnnxPoseError(None, f"weights must be 'real' or 'random', got {weights!r}")
    try:
        h, w = (int(v) for v in input_hw)
    except (TypeError, ValueError):
        raise OnnxPoseError(None, f"input_hw must be (height, width), got {input_hw!r}") from None
    if h < 1 or w < 1:
        raise OnnxPoseError(None, f"input_hw must be positive, got {input_hw!r}")
    use_atrous = _resolve_atrous(atrous, weights)
    values = load_real_weights(tflite_path) if weights == "real" else _random_backbone_weights(seed)

    inputs = keras.Input(shape=(h, w, 3), batch_size=1, name=INPUT_NAME, dtype="float32")
    x = inputs
    layers = []
    for layer in layer_plan(output_stride, use_atrous):
        if layer["kind"] == "depthwise":
            conv = keras.layers.DepthwiseConv2D(
                3, strides=layer["stride"], padding="same", dilation_rate=layer["rate"],
                depth_multiplier=1, activation="relu6", name=layer["name"])
        else:
            k = 3 if layer["kind"] == "conv" else 1
            conv = keras.layers.Conv2D(layer["channels"], k, strides=layer["stride"], padding="same",
                                       activation="relu6", name=layer["name"])
        x = conv(x)
        layers.append(conv)
    outputs = []
    for head, channels in zip(HEAD_NAMES, HEAD_CHANNELS):
        conv = keras.layers.Conv2D(channels, 1, padding="same", name=head)
        outputs.append(conv(x))
        layers.append(conv)
    model = keras.Model(inputs, outputs, name="posenet_mobilenet_v1_075")
    for conv in layers:
        if conv.name in values:
            conv.set_weights(list(values[conv.name]))
    if weights == "random":
        for head, (k, b) in _calibrate_random_heads(model, seed, output_stride).items():
            model.get_layer(head).set_weights([k, b])
    return model
