"""A tiny uint8-quantized PoseNet-like TFLite model for fast tests (the shared real model
takes seconds to convert and validate; this one converts in about a second).

Made from ``toy_models.toy_posenet_savedmodel``'s kind of network: float input scaled to
[-1, 1] by the model itself, then three strided 1x1 convolution heads (17, 34, 64
channels), fully integer-quantized by the TFLite converter with uint8 input and outputs,
like Coral's PoseNet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def toy_posenet_tflite_uint8(path, input_hw=(33, 33), stride: int = 16, seed: int = 0) -> Path:
    """Write the model to ``path`` (``.tflite``); returns the path."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    h, w = input_hw
    kernels = {name: tf.constant(rng.normal(0, 0.5, (1, 1, 3, c)).astype(np.float32))
               for name, c in (("heatmaps", 17), ("offsets", 34), ("displacements", 64))}

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name="image")])
    def serve(image):
        x = image / 127.5 - 1.0
        return {name: tf.nn.conv2d(x, kernel, strides=stride, padding="SAME")
                for name, kernel in kernels.items()}

    def calibration():
        for _ in range(8):
            yield [rng.integers(0, 256, (1, h, w, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    path = Path(path)
    path.write_bytes(converter.convert())
    return path
