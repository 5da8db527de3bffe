"""Coral's shipped decoder (libcoral Frogfish, ``edge_id > kNumEdges``) and libcoral Grouper.

``../shared/reference/face_couple_353x481.npz`` is the shipped op's output for a pose rooted at
leftEye, whose walk crosses the one edge the releases read differently (leftEye -> nose). The
references derive their channels from Coral's and TF.js's algorithms, the graph from its own
table: the tests check that they agree and that a wrong graph table fails validation.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxpose.decoder.multi_pose import skeleton
from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import CORAL_RELEASES, MultiPoseSettings
from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS, POSE_CHAIN
from onnxpose.reference.decode_pose_coral import coral_displacement_channels, coral_edge_id
from onnxpose.reference.decode_pose_tfjs import get_displacement, split_displacements
from onnxpose.reference.multi_pose import decode_multiple_poses
from onnxpose.reference.pose_tree import BACKWARD, directed_edges, walk_from
from onnxpose.validate.compare import ReferenceMismatch, compare_with_reference

from conftest import SHARED

FACE_NPZ = SHARED / "reference" / "face_couple_353x481.npz"
NOSE, LEFT_EYE, LEFT_EAR = 0, 1, 3
HEAD_NAMES = ("heatmaps", "short_offsets", "displacements")


@pytest.fixture(scope="module")
def face() -> dict:
    if not FACE_NPZ.exists():
        pytest.fail(f"missing shared data {FACE_NPZ}")
    with np.load(FACE_NPZ) as data:
        return {k: data[k] for k in data.files}


def settings_of(npz: dict, release: str, tie_order: str = "heap") -> MultiPoseSettings:
    """Coral's op options from the npz (like the ``coral_settings`` fixture) and ``release``."""
    return MultiPoseSettings.for_preset(
        "coral", max_poses=int(npz["max_detections"]),
        score_threshold=float(npz["score_threshold"]), nms_radius=float(npz["nms_radius_pixels"]),
        refine_steps=int(npz["refinement_steps"]),
        local_maximum_radius=int(npz["local_maximum_radius"]), tie_order=tie_order,
        coral_release=release)


def heads_of(npz: dict):
    return (npz["decoder_in_heatmaps"], npz["decoder_in_short_offsets"],
            npz["decoder_in_mid_offsets"])


def run_decoder(settings, heads):
    model = decoder_only_model(heads[0].shape[1:3], 16, settings)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(HEAD_NAMES, heads)))


def errors_px(keypoints, npz) -> np.ndarray:
    """max(|dy|, |dx|) per decoded keypoint against Coral's poses: [count, 17]."""
    count = int(npz["pose_count"][0])
    return np.abs(keypoints[0, :count, :, :2] - npz["poses"][0, :count]).max(axis=-1)


def assert_is_corals(decoded, npz):
    keypoints, pose_scores, count = decoded
    assert np.asarray(count).tolist() == npz["pose_count"].astype(int).tolist()
    assert errors_px(keypoints, npz).max() <= 0.01
    np.testing.assert_allclose(pose_scores, npz["pose_scores"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], npz["keypoint_scores"], rtol=0, atol=1e-3)


def assert_grouper_moves_the_nose(decoded, npz):
    keypoints, _, count = decoded
    assert np.asarray(count).tolist() == [1]
    errors = errors_px(keypoints, npz)
    assert errors[0, NOSE] > 1.0          # 7.09 px (max of |dy|, |dx|; 7.11 px apart)
    others = np.delete(errors[0], [NOSE, 2])
    assert others.max() <= 0.01           # the right eye (2) is grown from the nose: 0.06 px


# -- settings ------------------------------------------------------------------------------

def test_release_is_a_coral_setting():
    assert MultiPoseSettings().coral_release == "grouper"
    assert MultiPoseSettings.for_preset("coral", coral_release="frogfish").coral_release == "frogfish"
    with pytest.raises(ValueError, match="coral_release"):
        MultiPoseSettings.for_preset("coral", coral_release="hawk")
    with pytest.raises(ValueError, match="coral preset only"):
        MultiPoseSettings.for_preset("tfjs", coral_release="frogfish")
    assert MultiPoseSettings.for_preset("tfjs").coral_release == "grouper"


def test_coral_op_models_default_to_the_shipped_release_and_overrides_win():
    from onnxpose.build import _multi_settings
    op = {"max_detections": 10, "score_threshold": 0.2, "nms_radius": 10.0, "stride": 16}
    heads = SimpleNamespace(output_stride=16)
    assert _multi_settings(None, op, heads, "m", None, None).coral_release == "frogfish"
    assert _multi_settings(None, op, heads, "m", "coral", None).coral_release == "frogfish"
    assert _multi_settings(None, op, heads, "m", None,
                           {"coral_release": "grouper"}).coral_release == "grouper"
    assert _multi_settings(None, None, heads, "m", None, None).coral_release == "grouper"
    assert _multi_settings(None, op, heads, "m", "tfjs", None).coral_release == "grouper"
    given = MultiPoseSettings.for_preset("coral")
    assert _multi_settings(given, op, heads, "m", None, None) is given


# -- the channel derivations ----------------------------------------------------------------

def test_coral_edge_ids_and_release_adjustment():
    """Coral's kEdgeList: chain forward 0..15, backward 16..31; only id 16 differs."""
    for e, (parent, child) in enumerate(POSE_CHAIN):
        assert coral_edge_id(parent, child) == e
        assert coral_edge_id(child, parent) == NUM_EDGES + e
    for edge_id in range(2 * NUM_EDGES):
        grouper = coral_displacement_channels(edge_id, "grouper")
        frogfish = coral_displacement_channels(edge_id, "frogfish")
        assert grouper[1] == grouper[0] + NUM_EDGES and frogfish[1] == frogfish[0] + NUM_EDGES
        assert (grouper == frogfish) == (edge_id != NUM_EDGES)
    assert coral_edge_id(LEFT_EYE, NOSE) == NUM_EDGES
    assert coral_displacement_channels(NUM_EDGES, "frogfish") == (16, 32)
    assert coral_displacement_channels(NUM_EDGES, "grouper") == (32, 48)


def reference_channels(source: int, target: int, release: str, preset: str) -> tuple[int, int]:
    """(y, x) channel of the concatenated displacement head, as the reference reads it."""
    if preset == "coral":
        return coral_displacement_channels(coral_edge_id(source, target), release)
    # TF.js: find the channels by reading a head whose value at channel c is c
    edge = next(e for e in directed_edges() if (e.source, e.target) == (source, target))
    head = np.arange(4 * NUM_EDGES, dtype=np.float32)[None, None]
    forward, backward = split_displacements(head)
    dy, dx = get_displacement(edge.edge, 0, 0, backward if edge.direction == BACKWARD else forward)
    return int(dy), int(dx)


def graph_channels(model: onnx.ModelProto) -> np.ndarray:
    """(y, x) displacement channel per (root, slot, step) [17, W, D, 2], read from the built
    decoder's constant lookup table ([D, 17, W, k] flat offsets; corner (0, 0) comes first)."""
    table = next(onnx.numpy_helper.to_array(init) for init in model.graph.initializer
                 if init.name.endswith("walk/displacement_base__table"))
    table = table.transpose(1, 2, 0, 3)
    return table[..., :2].astype(int)   # the displacement table: channel c at offset c


@pytest.mark.parametrize("preset,release", [("coral", "grouper"), ("coral", "frogfish"),
                                            ("tfjs", "grouper")])
def test_graph_table_agrees_with_the_references_on_every_root(preset, release):
    settings = MultiPoseSettings.for_preset(preset, coral_release=release, candidates=4)
    channels = graph_channels(decoder_only_model((5, 6), 16, settings))
    tables = skeleton.walk_tables(channels=skeleton.edge_channels(release))
    checked = 0
    for root in range(NUM_KEYPOINTS):
        source_of = {e.target: e.source for e in walk_from(root)}
        depth, width = tables["target"].shape[0], tables["target"].shape[2]
        for d in range(depth):
            for s in range(width):
                target = int(tables["target"][d, root, s])
                if target == root:      # idle slot
                    continue
                want = reference_channels(source_of[target], target, release, preset)
                assert tuple(channels[root, s, d]) == want, (root, target)
                assert (int(tables["channel_y"][d, root, s]),
                        int(tables["channel_x"][d, root, s])) == want
                checked += 1
    assert checked == NUM_KEYPOINTS * (NUM_KEYPOINTS - 1)


def test_frogfish_graph_differs_only_on_the_left_eye_to_nose_edge():
    grouper = graph_channels(decoder_only_model((5, 6), 16, MultiPoseSettings(candidates=4)))
    frogfish = graph_channels(decoder_only_model(
        (5, 6), 16, MultiPoseSettings(candidates=4, coral_release="frogfish")))
    roots = sorted({int(r) for r in np.argwhere((grouper != frogfish).any(-1))[:, 0]})
    assert roots == [LEFT_EYE, LEFT_EAR]
    assert sorted(set(frogfish[grouper != frogfish].tolist())) == [16, 32]


# -- Coral's own output on the face crop ----------------------------------------------------

def test_reference_frogfish_is_corals_shipped_op(face):
    assert_is_corals(decode_multiple_poses(*heads_of(face), 16, settings_of(face, "frogfish")),
                     face)


def test_reference_grouper_moves_the_nose(face):
    assert_grouper_moves_the_nose(
        decode_multiple_poses(*heads_of(face), 16, settings_of(face, "grouper")), face)


@pytest.mark.parametrize("release", CORAL_RELEASES)
def test_reference_couple_is_exact_with_either_release(reference, release):
    """Coral's reference image: no pose is rooted at leftEye or leftEar."""
    assert_is_corals(decode_multiple_poses(*heads_of(reference), 16,
                                           settings_of(reference, release)), reference)


def test_graph_frogfish_is_corals_shipped_op(face):
    assert_is_corals(run_decoder(settings_of(face, "frogfish"), heads_of(face)), face)


def test_graph_grouper_moves_the_nose(face):
    assert_grouper_moves_the_nose(run_decoder(settings_of(face, "grouper"), heads_of(face)), face)


def test_graph_couple_is_exact_with_frogfish(reference):
    assert_is_corals(run_decoder(settings_of(reference, "frogfish"), heads_of(reference)),
                     reference)


# -- the self-check does not share the graph's table ---------------------------------------

def info_of(settings, npz):
    return SimpleNamespace(settings=lambda: settings, multi_pose=True, output_stride=16,
                           input_height=int(npz["image"].shape[1]),
                           input_width=int(npz["image"].shape[2]))


def test_a_wrong_frogfish_table_fails_the_reference_check(monkeypatch, face):
    settings = settings_of(face, "frogfish")
    heads = heads_of(face)
    decoded = dict(zip(("keypoints", "pose_scores", "pose_count"), run_decoder(settings, heads)))
    compare_with_reference(decoded, dict(zip(HEAD_NAMES, heads)), info_of(settings, face))
    # the graph reads leftEye -> nose as Grouper does, but says frogfish
    monkeypatch.setitem(skeleton.RELEASE_CHANNELS, "frogfish",
                        skeleton.RELEASE_CHANNELS["grouper"])
    wrong = dict(zip(("keypoints", "pose_scores", "pose_count"), run_decoder(settings, heads)))
    with pytest.raises(ReferenceMismatch, match="differ from the numpy reference"):
        compare_with_reference(wrong, dict(zip(HEAD_NAMES, heads)), info_of(settings, face))


def test_a_wrong_table_fails_build_validation(monkeypatch, tmp_path):
    from onnxpose.build import build_model
    from onnxpose.errors import OnnxPoseError
    from onnxpose.testing.toy_models import toy_posenet_onnx
    source = tmp_path / "toy.onnx"
    onnx.save(toy_posenet_onnx(input_hw=(65, 65)), source)
    build_model(source, tmp_path / "right.onnx", decoder="multi")       # validates
    real = skeleton.RELEASE_CHANNELS["grouper"]

    def backward_read_forward(edge):   # a table that confuses directions
        return tuple(c % (2 * NUM_EDGES) for c in real(edge))

    monkeypatch.setitem(skeleton.RELEASE_CHANNELS, "grouper", backward_read_forward)
    with pytest.raises(OnnxPoseError, match="validation failed"):
        build_model(source, tmp_path / "wrong.onnx", decoder="multi")
