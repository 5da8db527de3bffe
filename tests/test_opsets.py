"""Every opset the CLI accepts builds both decoders (issue 10 item 3.4): decoder-only
graphs at each opset pass onnx.checker, use that opset's op forms and decode like the
numpy references in onnxruntime; the shared uint8 TFLite builds at the highest one."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxpose.cli import main
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.decoder.ops import AXES_AS_INPUT_SINCE, GraphBuilder
from onnxpose.reference.decode_multiple_poses_coral import decode_multiple_poses_coral
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.reference.synthetic_heads import synthetic_heads
from onnxpose.spec import MAX_OPSET, OPSET, OPSETS, MultiPoseSettings, SinglePoseSettings

GRID, STRIDE = (17, 23), 16
MULTI = {"coral": MultiPoseSettings.for_preset("coral", candidates=24),
         "tfjs": MultiPoseSettings.for_preset("tfjs", candidates=24),
         "coral_heap": MultiPoseSettings.for_preset("coral", candidates=24, tie_order="heap")}
REFERENCES = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}


def _nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)


def _check_forms(model: onnx.ModelProto, opset: int):
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    for node in _nodes(model.graph):
        if node.op_type in AXES_AS_INPUT_SINCE:
            as_input = opset >= AXES_AS_INPUT_SINCE[node.op_type]
            assert ("axes" in {a.name for a in node.attribute}) is not as_input, node.name
            assert (len(node.input) == 2) is as_input, node.name


def _run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_cli_accepts_exactly_the_built_opsets(tmp_path, capsys):
    assert OPSETS == tuple(range(OPSET, MAX_OPSET + 1)) and MAX_OPSET >= 22
    for opset in (OPSET - 1, MAX_OPSET + 1):
        out = tmp_path / "x.onnx"
        assert main(["build", str(tmp_path / "missing.tflite"), "-o", str(out), "--opset",
                     str(opset)]) == 2
        assert "--opset" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("coordinates", ["stride", "grid"])
def test_single_pose_at_every_opset(opset, coordinates):
    model = decoder_only_model(GRID, STRIDE, SinglePoseSettings(coordinates), opset=opset)
    _check_forms(model, opset)
    heatmaps, short_offsets, _ = synthetic_heads(opset, batch=2, grid_hw=GRID, stride=STRIDE)
    keypoints, pose_score = _run(model, {"heatmaps": heatmaps, "short_offsets": short_offsets})
    input_hw = ((GRID[0] - 1) * STRIDE + 1, (GRID[1] - 1) * STRIDE + 1)
    want_keypoints, want_score = decode_single_pose(heatmaps, short_offsets, STRIDE, input_hw,
                                                    coordinates)
    np.testing.assert_allclose(keypoints, want_keypoints, rtol=0, atol=1e-3)
    np.testing.assert_allclose(pose_score, want_score, rtol=0, atol=1e-5)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("variant", sorted(MULTI))
def test_multi_pose_at_every_opset(opset, variant):
    settings = MULTI[variant]
    model = decoder_only_model(GRID, STRIDE, settings, opset=opset)
    _check_forms(model, opset)
    heads = list(synthetic_heads(opset, batch=2, grid_hw=GRID, stride=STRIDE, people=(1, 5)))
    heads[0] = np.round(heads[0] * 2) / 2  # 0.5-logit steps, like uint8 heads: many ties
    heads = [h.astype(np.float32) for h in heads]
    keypoints, scores, count = _run(model, dict(zip(("heatmaps", "short_offsets",
                                                     "displacements"), heads)))
    want = REFERENCES[settings.preset](*heads, STRIDE, settings, tie_order=settings.tie_order)
    np.testing.assert_array_equal(count, want[2])
    np.testing.assert_allclose(keypoints[..., :2], want[0][..., :2], rtol=0, atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], want[0][..., 2], rtol=0, atol=1e-5)
    np.testing.assert_allclose(scores, want[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("opset", [17, 18])
def test_reduce_writes_the_opsets_form(opset):
    import onnx_graphsurgeon as gs
    gb = GraphBuilder(gs.Graph(opset=opset), "t/")
    x = gs.Variable("x", np.float32, [2, 3])
    for op_type in AXES_AS_INPUT_SINCE:
        gb.reduce(op_type, x, [1], op_type)
    with pytest.raises(ValueError, match="opsets"):
        gb.op("ReduceMax", [x], "by_hand", {"axes": [1]})
    for node in gb.graph.nodes:
        assert (len(node.inputs) == 2) is (opset >= AXES_AS_INPUT_SINCE[node.op])


def test_real_uint8_tflite_builds_multi_pose_at_the_highest_opset(quant_tflite):
    from onnxpose.build import build_model
    result = build_model(quant_tflite, None, decoder="multi", opset=MAX_OPSET)
    assert max(o.version for o in result.model.opset_import if o.domain in ("", "ai.onnx")) \
        == MAX_OPSET
    onnx.checker.check_model(result.model)
    assert result.validation is not None and result.validation.poses_compared > 0


@pytest.mark.parametrize("form", ["onnx", "savedmodel"])
def test_every_source_form_builds_both_decoders_at_the_highest_opset(tmp_path, form):
    """A plain ONNX source (opset 17) is upgraded; a SavedModel is converted by tf2onnx at
    17 and upgraded; both decoders are appended at MAX_OPSET and validated."""
    from onnxpose.build import build_model
    from onnxpose.testing.toy_models import toy_posenet_onnx, toy_posenet_savedmodel
    if form == "onnx":
        source = tmp_path / "toy.onnx"
        onnx.save(toy_posenet_onnx(), source)
    else:
        source = tmp_path / "toy_savedmodel"
        toy_posenet_savedmodel(source)
    for decoder in ("single", "multi"):
        result = build_model(source, None, decoder=decoder, opset=MAX_OPSET)
        _check_forms_of_default_domain(result.model, MAX_OPSET)
        assert result.validation is not None


def _check_forms_of_default_domain(model, opset):
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == opset
    for node in _nodes(model.graph):
        if node.op_type in AXES_AS_INPUT_SINCE and opset >= AXES_AS_INPUT_SINCE[node.op_type]:
            assert "axes" not in {a.name for a in node.attribute}, node.name
