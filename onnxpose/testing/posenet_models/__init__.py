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

Modules: ``network`` (constants, layer plan, weights, Keras model), ``forms`` (SavedModel,
TFLite and TF.js writers), ``cache`` (``ensure_model``), ``reference_check`` (against Coral's
TFLite model), ``command`` (the CLI).

CLI: ``python -m onnxpose.testing.posenet_models --form tflite --size 257x257 --stride 32
--weights real`` prints the path.
"""


from onnxpose.testing.posenet_models.cache import _cache_key, cache_dir, ensure_model
from onnxpose.testing.posenet_models.command import main
from onnxpose.testing.posenet_models.forms import (
    posenet_graph_def, save_savedmodel, save_tfjs, save_tflite)
from onnxpose.testing.posenet_models.network import (
    DEPTH_MULTIPLIER, FORMS, HEAD_CHANNELS, HEAD_NAMES, INPUT_NAME, INPUT_NORMALIZATION,
    INPUT_QUANT_SCALE, INPUT_QUANT_ZERO_POINT, OUTPUT_STRIDES, OUTPUT_TENSOR_NAMES,
    REAL_TFLITE_PATH, SHARED_DIR, _random_backbone_weights, build_posenet_mobilenet, layer_plan,
    load_real_weights, normalize_image, output_hw)
from onnxpose.testing.posenet_models.reference_check import (
    REFERENCE_NPZ, compare_layers_with_tflite, compare_with_reference)

__all__ = [
    "INPUT_NORMALIZATION", "INPUT_NAME", "HEAD_NAMES", "HEAD_CHANNELS", "OUTPUT_TENSOR_NAMES",
    "OUTPUT_STRIDES", "FORMS", "REAL_TFLITE_PATH", "normalize_image", "output_hw", "layer_plan",
    "load_real_weights", "build_posenet_mobilenet", "posenet_graph_def", "save_savedmodel",
    "save_tflite", "save_tfjs", "cache_dir", "ensure_model", "compare_with_reference",
    "compare_layers_with_tflite", "REFERENCE_NPZ", "main",
]
