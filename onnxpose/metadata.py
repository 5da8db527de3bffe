"""ONNX ``metadata_props`` that make a built model self-describing.

Every key starts with ``onnxpose.`` and holds JSON. ``PoseSession`` reads them
to preprocess images and interpret outputs; other runtimes can read them with
``onnx.load(...).metadata_props`` or ``InferenceSession.get_modelmeta()``.
Values are parsed with ``json.loads`` only: never evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import onnx

from onnxpose.keypoints import KEYPOINT_NAMES, POSE_CHAIN, SKELETON
from onnxpose.spec import ModelIOSettings, MultiPoseSettings, SinglePoseSettings, decoder_outputs

PREFIX = "onnxpose."
NORMALIZATIONS = {
    # name: (scale, offset) so that model_input = pixel * scale + offset, pixel in 0..255
    "none": (1.0, 0.0),
    "minus_one_to_one": (2.0 / 255.0, -1.0),
    "zero_to_one": (1.0 / 255.0, 0.0),
}


@dataclass(frozen=True)
class PoseModelInfo:
    """What a built model declares about itself."""

    version: str
    input_name: str
    input_layout: str
    input_height: int
    input_width: int
    input_dtype: str
    normalization: str
    output_stride: int
    decoder: dict
    keypoint_names: tuple
    skeleton: tuple
    #: ``onnxpose.spec.ModelIOSettings`` as a dict (input mode, resize, layout, box
    #: threshold); None for models built before it
    io: dict | None = None

    @property
    def image_input(self) -> bool:
        """The model takes uint8 photos of any size (resized in the graph)."""
        return bool(self.io) and self.io.get("input") == "image"

    def io_settings(self) -> ModelIOSettings | None:
        return ModelIOSettings(**self.io) if self.io else None

    @property
    def multi_pose(self) -> bool:
        return self.decoder.get("type") == "multi"

    def settings(self) -> SinglePoseSettings | MultiPoseSettings:
        """The decoder settings the model was built with (``onnxpose.spec``)."""
        if self.multi_pose:
            return MultiPoseSettings(**self.decoder["settings"])
        return SinglePoseSettings(coordinates=self.decoder.get("coordinates", "stride"),
                                  layout=self.decoder.get("layout", "onnxpose"))

    @property
    def output_names(self) -> tuple[str, ...]:
        """The decoder's outputs, by the spec (``onnxpose.spec.decoder_outputs``)."""
        return tuple(spec.name for spec in decoder_outputs(self.settings(), self.io_settings()))


def metadata_dict(*, version, model_input, normalization, output_stride, decoder, source,
                  io: dict | None = None) -> dict:
    """``input`` describes the backbone's input; ``io`` what the model takes and gives
    (``image``: the photo as is, resized in the graph with ``io.resize``)."""
    extra = {} if io is None else {"io": io}
    return {**extra,
        "version": version,
        "keypoint_names": list(KEYPOINT_NAMES),
        "skeleton": [list(e) for e in SKELETON],
        "pose_chain": [list(e) for e in POSE_CHAIN],
        "output_stride": output_stride,
        "input": {"name": model_input.name, "layout": model_input.layout,
                  "height": model_input.height, "width": model_input.width,
                  "dtype": model_input.dtype, "normalization": normalization,
                  "color": "RGB", "resize": "stretch, bilinear"},
        "decoder": decoder,
        "source": source,
    }


def write_metadata(model: onnx.ModelProto, values: dict) -> None:
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in values.items():
        # strict JSON: a NaN or infinity is a bug upstream, never written as non-JSON NaN
        model.metadata_props.add(key=PREFIX + key,
                                 value=json.dumps(value, sort_keys=True, allow_nan=False))


def parse_metadata(props: dict[str, str]) -> PoseModelInfo | None:
    """PoseModelInfo from a key→value mapping (onnx or onnxruntime), or None if absent."""
    values = {k[len(PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(PREFIX)}
    if "input" not in values or "decoder" not in values:
        return None
    inp = values["input"]
    return PoseModelInfo(
        version=values.get("version", "?"), input_name=inp["name"], input_layout=inp["layout"],
        input_height=int(inp["height"]), input_width=int(inp["width"]),
        input_dtype=inp["dtype"], normalization=inp["normalization"],
        output_stride=int(values["output_stride"]), decoder=values["decoder"],
        keypoint_names=tuple(values.get("keypoint_names", KEYPOINT_NAMES)),
        skeleton=tuple(tuple(e) for e in values.get("skeleton", SKELETON)),
        io=values.get("io"))
