"""Validation of what a built model does around its decoder (``ModelIOSettings``): the
in-graph resize against the numpy reference of PIL's resize, the decoder's own outputs
(``decoder/NAME``) against the reference decoders, and the model's outputs (keypoints in the
input image's pixels, boxes, layout) against ``onnxpose.reference.pose_boxes``; image-input
models are run on random photos of two different sizes."""

from __future__ import annotations

import dataclasses

import numpy as np

from onnxpose.metadata import NORMALIZATIONS
from onnxpose.reference.pil_resize import pil_resize
from onnxpose.reference.pose_boxes import letterbox_geometry, model_outputs_reference
from onnxpose.spec import IMAGE_INPUT_NAME, decoder_outputs
from onnxpose.validate.compare import (POSITION_TOLERANCE_PX, SCORE_TOLERANCE, ReferenceMismatch,
                                       compare_with_reference)

#: (batch, height, width) of the random photos an image-input model is validated on
IMAGE_CHECKS = ((2, 123, 201), (1, 517, 389))
DECODER_PREFIX = "decoder/"


def decoder_info(info):
    """The model's info as its bare decoder sees it: onnxpose layout, no io stage."""
    decoder = dict(info.decoder)
    if not info.multi_pose:
        decoder["layout"] = "onnxpose"
    return dataclasses.replace(info, decoder=decoder, io=None)


def decoder_output_names(info) -> list[str]:
    return [DECODER_PREFIX + spec.name for spec in decoder_outputs(decoder_info(info).settings())]


def backbone_reference(images: np.ndarray, info) -> np.ndarray:
    """What the graph feeds the backbone for uint8 photos [N,H,W,3]."""
    backbone_hw = (info.input_height, info.input_width)
    geometry = letterbox_geometry(images.shape[1:3], backbone_hw, info.io["resize"])
    pixels = pil_resize(images, geometry[:2])
    if info.input_dtype != "uint8":
        scale, offset = NORMALIZATIONS[info.normalization]
        pixels = pixels.astype(np.float32) * np.float32(scale) + np.float32(offset)
    new_h, new_w, top, left = geometry
    padded = np.zeros((len(images), *backbone_hw, 3), pixels.dtype)
    padded[:, top:top + new_h, left:left + new_w] = pixels
    return padded.transpose(0, 3, 1, 2) if info.input_layout == "NCHW" else padded


def random_feeds(info, random_input, batch: int, seed: int):
    """[(feeds, image_hw)]: two photo sizes for image input, else the backbone's input."""
    if not info.image_input:
        return [({info.input_name: random_input(info, batch, seed)},
                 (info.input_height, info.input_width))]
    rng = np.random.default_rng(seed)
    return [({IMAGE_INPUT_NAME: rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)}, (h, w))
            for n, h, w in IMAGE_CHECKS]


def compare_model_outputs(outputs: dict, info, image_hw) -> None:
    """The model's outputs against the reference applied to its own decoder outputs."""
    decoded = {name[len(DECODER_PREFIX):]: value for name, value in outputs.items()
               if name.startswith(DECODER_PREFIX)}
    expected = model_outputs_reference(decoded, info.multi_pose, info.io_settings(), image_hw,
                                       (info.input_height, info.input_width))
    for name, want in expected.items():
        got = outputs[name]
        if got.shape != want.shape:
            raise ReferenceMismatch(f"{name} has shape {list(got.shape)}, the reference "
                                    f"{list(want.shape)}")
        scale = max(image_hw) if info.io["layout"] == "movenet" else 1.0
        error = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0)) * scale
        if not error <= max(POSITION_TOLERANCE_PX, SCORE_TOLERANCE):
            raise ReferenceMismatch(f"{name} differs from the numpy reference by {error:.3g}")


def check_io_run(outputs: dict, feeds: dict, heads: dict, info, image_hw, backbone_name: str):
    """All checks of one run; returns (px error, score error, poses) of the decoder."""
    if info.image_input:
        want = backbone_reference(feeds[IMAGE_INPUT_NAME], info)
        got = outputs[backbone_name]
        if got.shape != want.shape or np.max(np.abs(got.astype(np.float64) - want)) > 1e-4:
            raise ReferenceMismatch("the in-graph resize differs from PIL's (numpy reference)")
    decoded = {name[len(DECODER_PREFIX):]: value for name, value in outputs.items()
               if name.startswith(DECODER_PREFIX)}
    result = compare_with_reference(decoded, heads, decoder_info(info))
    compare_model_outputs(outputs, info, image_hw)
    return result
