"""Real and random PoseNet MobileNetV1 (depth multiplier 0.75) models, saved in three source forms.

This module rebuilds Google's PoseNet MobileNetV1 0.75 in Keras and writes it as a TensorFlow
SavedModel, a float32 TFLite file and a TF.js graph model, so that tests and benchmarks can
convert realistic models of every supported form. Nothing is downloaded.

Weights
    ``"real"``: every conv / depthwise-conv weight and bias is read from Coral's uint8-quantized
    ``posenet_mobilenet_v1_075_353_481_quant.tflite`` (``shared/models``) and dequantized as
    ``scale * (q - zero_point)`` (per channel where the tensor is per-channel; in that file every
    tensor is per-tensor). Batch norm is already folded into those weights. Every layer of the
    rebuilt network reproduces the TFLite model's layer (given the same dequantized input) to
    within half an activation quantization step, i.e. the rebuild is exact up to rounding.
    ``"random"``: deterministic from ``seed`` (He-normal backbone; the four 1x1 heads are scaled on
    a fixed, seed-derived calibration image so that heatmap logits are about N(-3, 2.5^2), short
    offsets about N(0, (stride/4)^2) pixels and displacements about N(0, (2*stride)^2) pixels).
    The same seed gives the same weights for every input size.

Architecture
    Conv2d_0 (3x3, 24 channels, stride 2) then 13 blocks Conv2d_i_depthwise (3x3) +
    Conv2d_i_pointwise (1x1), channels 48, 96, 96, 192, 192, 384 (x8); ReLU6 after every layer;
    padding 'same'; four 1x1 heads with bias and no activation. Output stride 8/16/32: once the
    running stride reaches ``output_stride``, later stride-2 layers get stride 1 (TF.js PoseNet's
    ``toOutputStridedLayers``). TF.js additionally dilates the depthwise convs after that point
    (rate multiplied by each skipped stride); Coral's stride-16 TFLite model does NOT (its
    Conv2d_13_depthwise has dilation 1, and only the undilated network reproduces it). So
    ``atrous=None`` (default) means: no dilation for ``weights="real"`` (reproduces the real
    model) and TF.js's dilation for ``weights="random"`` (exercises dilated convs in converters).
    Pass ``atrous=True/False`` to choose. At output stride 32 there is no dilation either way.

Inputs and outputs (every form)
    input ``sub_2`` float32 [1, H, W, 3], RGB normalized to [-1, 1]: see ``INPUT_NORMALIZATION``.
    outputs, in this order, h = (H-1)//stride + 1, w likewise, logits / pixels (no sigmoid):
    heatmaps [1,h,w,17], short offsets [1,h,w,34] (17 y then 17 x), displacement_fwd [1,h,w,32]
    (16 y then 16 x), displacement_bwd [1,h,w,32]. Coral's ``float_mid_offsets`` is
    ``concat([fwd, bwd], -1)`` (its TFLite graph concatenates the two head convs in that order).

    * Keras: layer names ``heatmap_2``, ``offset_2``, ``displacement_fwd_2``,
      ``displacement_bwd_2`` (``HEAD_NAMES``), model outputs in that order.
    * SavedModel: signature ``serving_default(sub_2)`` returning a dict keyed by ``HEAD_NAMES``
      (a signature's outputs are a map: converters see them sorted by key, so only the names,
      not the order, identify the heads there).
    * TFLite and TF.js: TF.js PoseNet's own tensor names, in the order above:
      ``MobilenetV1/heatmap_2/BiasAdd``, ``MobilenetV1/offset_2/BiasAdd``,
      ``MobilenetV1/displacement_fwd_2/BiasAdd``, ``MobilenetV1/displacement_bwd_2/BiasAdd``
      (``OUTPUT_TENSOR_NAMES``), input ``sub_2``.

TF.js files
    The official ``tensorflowjs`` converter does not install here without changing the installed
    tensorflow (2.21 -> 2.19), numpy and protobuf, so ``save_tfjs`` writes the TF.js graph-model
    format itself: ``model.json`` (``format: graph-model``, ``modelTopology`` = the frozen GraphDef
    as protobuf JSON with every Const's value moved out, a ``signature`` naming input and outputs,
    and a ``weightsManifest``) plus one little-endian weight shard ``group1-shard1of1.bin``. The
    graph uses plain TF ops (Conv2D, DepthwiseConv2dNative, BiasAdd, Relu6, and
    SpaceToBatchND/BatchToSpaceND around dilated depthwise convs), named as TF.js PoseNet names
    them (``MobilenetV1/Conv2d_0/Conv2D`` ...). It is not weight-quantized.

Cache
    ``ensure_model`` builds each file once under ``$ONNXPOSE_CACHE`` (default
    ``<repo>/.cache/models``, git-ignored), keyed by every parameter, and reuses it.
    Every writer writes into a temporary sibling and renames it into place.

CLI: ``python -m onnxpose.testing.posenet_models --form tflite --size 257x257 --stride 32
--weights real`` prints the path.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from onnxpose.errors import OnnxPoseError

__all__ = [
    "INPUT_NORMALIZATION", "INPUT_NAME", "HEAD_NAMES", "HEAD_CHANNELS", "OUTPUT_TENSOR_NAMES",
    "OUTPUT_STRIDES", "FORMS", "REAL_TFLITE_PATH", "normalize_image", "output_hw", "layer_plan",
    "load_real_weights", "build_posenet_mobilenet", "posenet_graph_def", "save_savedmodel",
    "save_tflite", "save_tfjs", "cache_dir", "ensure_model", "compare_with_reference",
    "compare_layers_with_tflite", "REFERENCE_NPZ", "main",
]

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

_REPO_ROOT = Path(__file__).resolve().parents[2]
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


# ---------------------------------------------------------------------------------------------
# TF graph with TF.js PoseNet's names (for TFLite and TF.js)

def posenet_graph_def(model):
    """A frozen ``tf.compat.v1.GraphDef`` of a model from ``build_posenet_mobilenet``, written with
    plain TF ops and TF.js PoseNet's node names: input ``sub_2`` [1,H,W,3], outputs
    ``OUTPUT_TENSOR_NAMES``. Weights are Const nodes; strides and dilations come from the model."""
    import tensorflow as tf

    try:
        layers = [model.get_layer(layer.name) for layer in model.layers if layer.name.startswith("Conv2d_")]
        heads = [model.get_layer(name) for name in HEAD_NAMES]
    except ValueError as exc:
        raise OnnxPoseError(None, f"not a model from build_posenet_mobilenet: {exc}") from exc
    _, h, w, _ = model.inputs[0].shape
    # (name, depthwise?, kernel, bias, strides, dilations, relu6), read eagerly before tracing
    specs = []
    for layer in [*layers, *heads]:
        kernel, bias = (np.asarray(v, dtype=np.float32) for v in layer.get_weights())
        specs.append((layer.name, layer.__class__.__name__ == "DepthwiseConv2D", kernel, bias,
                      [1, *layer.strides, 1], [int(d) for d in layer.dilation_rate], layer.name not in HEAD_NAMES))

    def conv(x, spec):
        name, depthwise, kernel, bias, strides, dilations, relu6 = spec
        with tf.name_scope(name):
            if depthwise:
                y = tf.nn.depthwise_conv2d(x, tf.constant(kernel, name="depthwise_weights"), strides,
                                           "SAME", dilations=dilations, name="depthwise")
            else:
                y = tf.nn.conv2d(x, tf.constant(kernel, name="weights"), strides, "SAME",
                                 dilations=dilations, name="Conv2D")
            y = tf.nn.bias_add(y, tf.constant(bias, name="biases"), name="BiasAdd")
            return tf.nn.relu6(y, name="Relu6") if relu6 else y

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name=INPUT_NAME)], autograph=False)
    def posenet(x):
        with tf.name_scope("MobilenetV1"):
            for spec in specs[:len(layers)]:
                x = conv(x, spec)
            return [conv(x, spec) for spec in specs[len(layers):]]

    graph_def = posenet.get_concrete_function().graph.as_graph_def()
    names = {node.name for node in graph_def.node}
    missing = [n for n in (INPUT_NAME, *OUTPUT_TENSOR_NAMES) if n not in names]
    if missing:
        raise OnnxPoseError(None, f"internal: graph lacks nodes {missing}")
    return _prune_graph_def(graph_def, OUTPUT_TENSOR_NAMES)


def _prune_graph_def(graph_def, outputs):
    """Keep only the nodes that ``outputs`` depend on (drops the tf.function's Identity outputs)."""
    import tensorflow as tf

    by_name = {node.name: node for node in graph_def.node}
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for inp in by_name[name].input:
            todo.append(inp.lstrip("^").split(":")[0])
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


# ---------------------------------------------------------------------------------------------
# writers (temp sibling, then rename)

@contextlib.contextmanager
def _atomic_dir(directory):
    """Yield a temporary sibling directory; on success it replaces ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        yield tmp
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            os.rename(directory, old / "x")
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_savedmodel(model, directory) -> Path:
    """TF SavedModel of ``model``: signature ``serving_default`` with input ``sub_2`` and a dict of
    outputs keyed by ``HEAD_NAMES``. Returns ``directory``."""
    import keras
    import tensorflow as tf

    shape = [1, *model.inputs[0].shape[1:]]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(x):
        return dict(zip(HEAD_NAMES, model(x, training=False)))

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    directory = Path(directory)
    with _atomic_dir(directory) as tmp:
        with contextlib.redirect_stdout(sys.stderr):
            archive.write_out(str(tmp), verbose=False)
    return directory


def save_tflite(model, path) -> Path:
    """Float32 TFLite (no quantization) converted from ``posenet_graph_def(model)``: input ``sub_2``,
    outputs ``OUTPUT_TENSOR_NAMES`` in that order. Returns ``path``."""
    import tensorflow as tf

    graph_def = posenet_graph_def(model)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        inputs = [graph.get_tensor_by_name(f"{INPUT_NAME}:0")]
        outputs = [graph.get_tensor_by_name(f"{n}:0") for n in OUTPUT_TENSOR_NAMES]
        converter = tf.compat.v1.lite.TFLiteConverter(graph_def, inputs, outputs)
        data = converter.convert()
    return _atomic_write_bytes(path, data)


_TFJS_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.bool_): "bool"}


def _graph_def_to_tfjs(graph_def, input_names, output_names) -> tuple[dict, bytes]:
    """(model.json dict, weight bytes) of a frozen GraphDef in TF.js's graph-model format."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import types_pb2

    nodes, manifest, chunks = [], [], []
    for node in graph_def.node:
        entry = json_format.MessageToDict(node)
        if node.op == "Const":
            value = tf.make_ndarray(node.attr["value"].tensor)
            if value.dtype == np.int64:  # TF.js has no int64
                value = value.astype(np.int32)
            elif value.dtype == np.float64:
                value = value.astype(np.float32)
            if value.dtype not in _TFJS_DTYPES:
                raise OnnxPoseError(None, f"Const {node.name} has dtype {value.dtype}, not supported by TF.js")
            entry["attr"].pop("value")
            manifest.append({"name": node.name, "shape": [int(d) for d in value.shape],
                             "dtype": _TFJS_DTYPES[value.dtype]})
            chunks.append(np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes())
        nodes.append(entry)

    by_name = {node.name: node for node in graph_def.node}

    def tensor_info(name):
        node = by_name[name]
        info = {"name": f"{name}:0"}
        for key in ("T", "dtype"):
            if key in node.attr:
                info["dtype"] = types_pb2.DataType.Name(node.attr[key].type)
                break
        if "shape" in node.attr:
            info["tensorShape"] = json_format.MessageToDict(node.attr["shape"].shape)
        return info

    model_json = {
        "format": "graph-model",
        "generatedBy": tf.__version__,
        "convertedBy": "onnxpose.testing.posenet_models (own TF.js graph-model writer)",
        "signature": {
            "inputs": {f"{n}:0": tensor_info(n) for n in input_names},
            "outputs": {f"{n}:0": tensor_info(n) for n in output_names},
        },
        "modelTopology": {
            "node": nodes,
            "library": {},
            "versions": json_format.MessageToDict(graph_def.versions),
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
    }
    return model_json, b"".join(chunks)


def save_tfjs(model, directory) -> Path:
    """TF.js graph model of ``model`` (``directory/model.json`` + ``group1-shard1of1.bin``), written by
    this module's own writer from ``posenet_graph_def(model)``. Returns the path of model.json."""
    graph_def = posenet_graph_def(model)
    model_json, weight_bytes = _graph_def_to_tfjs(graph_def, [INPUT_NAME], list(OUTPUT_TENSOR_NAMES))
    directory = Path(directory)
    with _atomic_dir(directory) as tmp:
        (tmp / "group1-shard1of1.bin").write_bytes(weight_bytes)
        (tmp / "model.json").write_text(json.dumps(model_json))
    return directory / "model.json"


# ---------------------------------------------------------------------------------------------
# cache

def cache_dir() -> Path:
    """``$ONNXPOSE_CACHE`` or ``<repo>/.cache/models`` (``~/.cache/onnxpose/models`` if not in a checkout)."""
    env = os.environ.get("ONNXPOSE_CACHE")
    if env:
        return Path(env)
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / ".cache" / "models"
    return Path.home() / ".cache" / "onnxpose" / "models"


@functools.lru_cache(maxsize=1)
def _file_digest(path: str, _mtime: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _cache_key(input_hw, output_stride, weights, seed, atrous, tflite_path) -> str:
    h, w = (int(v) for v in input_hw)
    key = f"posenet_mnv1_075_{h}x{w}_os{output_stride}_{weights}"
    if weights == "random":
        key += f"_seed{int(seed)}"
    else:
        path = Path(tflite_path) if tflite_path is not None else REAL_TFLITE_PATH
        if not path.is_file():
            raise OnnxPoseError(path, "PoseNet TFLite model not found (real weights need shared/models)")
        key += "_" + _file_digest(str(path.resolve()), path.stat().st_mtime_ns)
    key += ("_atrous" if atrous else "_plain") + f"_v{_BUILD_VERSION}"
    return key


@functools.lru_cache(maxsize=2)
def _memo_model(input_hw, output_stride, weights, seed, atrous, tflite_path):
    return build_posenet_mobilenet(input_hw, output_stride, weights, seed, tflite_path, atrous)


def ensure_model(form: str, input_hw=(257, 257), output_stride: int = 32, weights: str = "real",
                 seed: int = 0, *, atrous: bool | None = None, tflite_path=None) -> Path:
    """Path of a cached PoseNet file, built on first use: "savedmodel" -> the SavedModel directory,
    "tflite" -> the .tflite file, "tfjs" -> the TF.js model.json. Keyed by every parameter (seed
    only for random weights; the real TFLite's content hash for real ones)."""
    if form not in FORMS:
        raise OnnxPoseError(None, f"form must be one of {FORMS}, got {form!r}")
    output_stride = _check_stride(output_stride)
    if weights not in ("real", "random"):
        raise OnnxPoseError(None, f"weights must be 'real' or 'random', got {weights!r}")
    input_hw = tuple(int(v) for v in input_hw)
    seed = int(seed) if weights == "random" else 0
    use_atrous = _resolve_atrous(atrous, weights)
    base = cache_dir() / _cache_key(input_hw, output_stride, weights, seed, use_atrous, tflite_path)
    target = {"savedmodel": base / "savedmodel", "tflite": base / "model.tflite",
              "tfjs": base / "tfjs" / "model.json"}[form]
    if target.exists():
        return target
    model = _memo_model(input_hw, output_stride, weights, seed, use_atrous,
                        None if tflite_path is None else str(tflite_path))
    if form == "savedmodel":
        save_savedmodel(model, target)
    elif form == "tflite":
        save_tflite(model, target)
    else:
        save_tfjs(model, target.parent)
    return target


# ---------------------------------------------------------------------------------------------
# check against Coral's quantized model

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
# CLI

def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 257x257, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m onnxpose.testing.posenet_models",
        description="Build (or reuse from the cache) a PoseNet MobileNetV1 0.75 model file and print its path.")
    parser.add_argument("--form", choices=FORMS, required=True)
    parser.add_argument("--size", type=_parse_size, default=(257, 257), help="input HxW (default 257x257)")
    parser.add_argument("--stride", type=int, choices=OUTPUT_STRIDES, default=32)
    parser.add_argument("--weights", choices=("real", "random"), default="real")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atrous", choices=("auto", "yes", "no"), default="auto",
                        help="dilate layers past the output stride as TF.js does (auto: no for real, yes for random)")
    args = parser.parse_args(argv)
    atrous = {"auto": None, "yes": True, "no": False}[args.atrous]
    try:
        path = ensure_model(args.form, args.size, args.stride, args.weights, args.seed, atrous=atrous)
    except OnnxPoseError as exc:
        print(f"onnxpose: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
