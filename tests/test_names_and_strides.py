"""Issue 10 items 3.2 and 3.3: decoder outputs never collide with source tensor names, and
an output stride is accepted only where it fits the input size and the heads' grid."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxpose.build import build_model
from onnxpose.cli import main
from onnxpose.errors import OnnxPoseError
from onnxpose.heads import HeadOverrides
from onnxpose.spec import ModelIOSettings, decoder_outputs, MultiPoseSettings, SinglePoseSettings
from onnxpose.testing.toy_models import toy_posenet_onnx

KERAS3_HEADS = [("output_0", 17, 16), ("output_1", 34, 16), ("output_2", 64, 16)]


def save(tmp_path, name, **toy):
    path = tmp_path / f"{name}.onnx"
    onnx.save(toy_posenet_onnx(**toy), path)
    return path


def output_names(path):
    return [o.name for o in onnx.load(str(path)).graph.output]


@pytest.mark.parametrize("decoder, layout, keep_heads", [
    ("single", "movenet", False), ("single", "movenet", True), ("single", "onnxpose", True),
    ("multi", "onnxpose", True)])
def test_source_tensors_named_like_decoder_outputs(tmp_path, decoder, layout, keep_heads):
    """A Keras 3 ``model.export`` names its outputs output_0, output_1, ...: the movenet
    layout's output_0 must not clash with them (nor kept heads with sources named so)."""
    source = save(tmp_path, "keras3", heads=KERAS3_HEADS)
    out = tmp_path / "built.onnx"
    result = build_model(source, out, decoder=decoder, single=SinglePoseSettings(layout=layout),
                         keep_heads=keep_heads)
    settings = (SinglePoseSettings(layout=layout) if decoder == "single"
                else MultiPoseSettings())
    expected = [s.name for s in decoder_outputs(settings, ModelIOSettings(layout=layout))]
    if keep_heads:
        expected += ["heatmaps", "short_offsets", "displacements"]
    assert output_names(out) == expected
    assert result.validation is not None
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).uniform(0, 1, (1, 65, 65, 3)).astype(np.float32)
    session.run(None, {"image": image})


def test_source_named_like_the_kept_heads_and_their_raw_names(tmp_path):
    heads = [("heatmaps", 17, 16), ("heatmaps_raw", 34, 16), ("displacements", 64, 16)]
    out = tmp_path / "built.onnx"
    build_model(save(tmp_path, "named", heads=heads), out, decoder="multi", keep_heads=True)
    assert output_names(out)[-3:] == ["heatmaps", "short_offsets", "displacements"]


@pytest.mark.parametrize("stride, input_hw", [(8, (65, 65)), (32, (257, 257)), (32, (129, 161))])
@pytest.mark.parametrize("decoder", ["single", "multi"])
def test_true_output_stride_override_builds_both_decoders(tmp_path, stride, input_hw, decoder):
    source = save(tmp_path, f"s{stride}", input_hw=input_hw,
                  heads=[("heatmaps", 17, stride), ("offsets", 34, stride),
                         ("displacements", 64, stride)])
    result = build_model(source, tmp_path / "built.onnx", decoder=decoder,
                         overrides=HeadOverrides(output_stride=stride))
    assert result.heads.output_stride == stride
    assert result.heads.grid == tuple(-(-s // stride) for s in input_hw)
    assert result.validation is not None


def test_wrong_output_stride_is_refused_in_one_line(tmp_path, capsys):
    source = save(tmp_path, "s16")  # 65x65 input, stride-16 heads: grid 5x5
    with pytest.raises(OnnxPoseError, match="--output-stride 12 does not fit"):
        build_model(source, None, decoder="multi", overrides=HeadOverrides(output_stride=12))
    out = tmp_path / "out.onnx"
    assert main(["build", str(source), "-o", str(out), "--decoder", "multi",
                 "--output-stride", "12", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "strides that fit: 13-16" in err
    assert not out.exists()
