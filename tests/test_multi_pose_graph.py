"""In-graph multi-pose decoder: against Coral's output and the numpy references."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.decoder.multi_pose import OPSET, walk_schedule, walk_tables
from onnxpose.spec import MultiPoseSettings
from onnxpose.keypoints import NUM_KEYPOINTS
from onnxpose.reference.build_part_with_score_queue import build_part_with_score_queue
from onnxpose.reference.decode_multiple_poses_coral import decode_multiple_poses_coral
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs
from onnxpose.reference.pose_tree import walk_from
from onnxpose.reference.sigmoid import logit
from onnxpose.reference.synthetic_heads import random_heads, synthetic_heads

GRID, STRIDE = (23, 31), 16
HEAD_NAMES = ("heatmaps", "short_offsets", "displacements")
REFERENCES = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}
# Position tolerance graph vs reference: TF.js reads cells and adds, exactly as the
# reference; Coral's bilinear weights are rounded differently, and without short-offset
# refinement the walk does not pull those float differences back in.
ATOL_PX = {"coral": 1e-3, "tfjs": 1e-4}


@lru_cache(maxsize=None)
def decoder(settings: MultiPoseSettings, grid=GRID) -> ort.InferenceSession:
    model = decoder_only_model(grid, STRIDE, settings)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_graph(settings, heads):
    return decoder(settings, heads[0].shape[1:3]).run(None, dict(zip(HEAD_NAMES, heads)))


def assert_same_poses(graph, reference, atol_px):
    """Same counts, same poses in the same order (positions within ``atol_px``)."""
    np.testing.assert_array_equal(graph[2], reference[2])
    np.testing.assert_allclose(graph[0][..., :2], reference[0][..., :2], rtol=0, atol=atol_px)
    np.testing.assert_allclose(graph[0][..., 2], reference[0][..., 2], rtol=0, atol=1e-5)
    np.testing.assert_allclose(graph[1], reference[1], rtol=0, atol=1e-5)


def graph_matches_reference(settings, heads):
    """The graph's poses equal the preset's numpy reference (same tie order); returns them."""
    graph = run_graph(settings, heads)
    assert_same_poses(graph, REFERENCES[settings.preset](*heads, STRIDE, settings,
                                                         tie_order=settings.tie_order),
                      ATOL_PX[settings.preset])
    return graph


# -- Coral's own output ------------------------------------------------------------------

def test_coral_graph_matches_coral_decoder(reference, coral_settings, coral_heads):
    keypoints, scores, count = run_graph(coral_settings, coral_heads)
    assert count.tolist() == reference["pose_count"].astype(int).tolist()
    # Coral's poses [1, 10, 17, 2] (all 170 slots, zero rows included); error per keypoint
    # = max(|dy|, |dx|) in pixels. 168 of 170 are within 0.01 px.
    errors = np.abs(keypoints[..., :2] - reference["poses"]).max(axis=-1)
    assert (errors <= 0.01).mean() >= 0.95
    assert errors.max() <= 2.0
    np.testing.assert_allclose(scores, reference["pose_scores"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], reference["keypoint_scores"], rtol=0, atol=1e-3)
    # Over the 2 x 17 decoded keypoints only, 32 of 34 (94%) are within 0.01 px: the second
    # person's left shoulder and left hip differ (0.32 and 1.55 px), because the graph grows
    # that person from another of seven candidates that tie on the top logit; see
    # test_coral_graph_differs_from_coral_only_by_tie_order.
    valid = errors[0, :count[0]]
    assert (valid > 0.01).sum() <= 2


def test_coral_graph_differs_from_coral_only_by_tie_order(coral_settings, coral_heads):
    """The graph takes tied candidates in scan order; so does the reference with
    tie_order="scan" (and with Coral's heap order the reference is exact, see
    test_multi_pose_reference)."""
    assert coral_settings.tie_order == "scan"
    graph_matches_reference(coral_settings, coral_heads)


def test_coral_graph_with_heap_tie_order_is_exact(reference, coral_settings, coral_heads):
    """tie_order="heap" replays Coral's std::priority_queue in the graph: every one of the
    170 keypoint slots (34 decoded) within 0.01 px of Coral's."""
    heap = dataclasses.replace(coral_settings, tie_order="heap")
    keypoints, scores, count = run_graph(heap, coral_heads)
    assert count.tolist() == reference["pose_count"].astype(int).tolist()
    errors = np.abs(keypoints[..., :2] - reference["poses"]).max(axis=-1)
    assert errors.max() <= 0.01
    np.testing.assert_allclose(scores, reference["pose_scores"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], reference["keypoint_scores"], rtol=0, atol=1e-3)


def tied_heads(seed):
    """Heatmaps rounded to 0.5-logit steps (like uint8 heads): many tied candidates."""
    heads = list(synthetic_heads(seed, batch=3, people=(1, 6)))
    heads[0] = np.round(heads[0] * 2) / 2
    return heads


TIED_SEEDS = range(5)


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("seed", TIED_SEEDS)
def test_heap_tie_order_matches_the_heap_reference_on_tied_heads(preset, seed):
    """Coral's std::priority_queue / TF.js's MaxHeap replayed in the graph."""
    settings = MultiPoseSettings.for_preset(preset, candidates=24, tie_order="heap")
    graph_matches_reference(settings, tied_heads(seed))


def test_tfjs_tied_heads_decode_differently_in_heap_and_scan_order():
    """The tie order matters on these heads: the test above is meaningful for TF.js (the
    roots come in another order in every image, and some poses differ)."""
    settings = MultiPoseSettings.for_preset("tfjs", candidates=24, tie_order="heap")
    poses_differ = []
    for heads in map(tied_heads, TIED_SEEDS):
        for image in heads[0]:
            roots = [build_part_with_score_queue(image, logit(settings.score_threshold), 1,
                                                 settings.candidates, order, queue="tfjs")
                     for order in ("heap", "scan")]
            assert roots[0] != roots[1]
        heap, scan = (decode_multiple_poses_tfjs(*heads, STRIDE, settings, tie_order=order)
                      for order in ("heap", "scan"))
        poses_differ.append(not np.array_equal(heap[0], scan[0]))
    assert sum(poses_differ) >= 2


def test_tfjs_graph_with_heap_tie_order_matches_reference_on_real_heads(reference):
    heads = [reference[k] for k in ("heatmaps", "short_offsets", "mid_offsets")]
    settings = MultiPoseSettings.for_preset("tfjs", tie_order="heap")
    graph = graph_matches_reference(settings, heads)
    assert graph[2].tolist() == [2]


# -- against the references ----------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tfjs_graph_matches_reference_on_random_heads(seed):
    heads = random_heads(seed, batch=2)
    settings = MultiPoseSettings.for_preset("tfjs")
    graph_matches_reference(settings, heads)


def test_tfjs_graph_matches_reference_on_real_heads(reference):
    heads = [reference[k] for k in ("heatmaps", "short_offsets", "mid_offsets")]
    settings = MultiPoseSettings.for_preset("tfjs")
    graph = graph_matches_reference(settings, heads)
    assert graph[2].tolist() == [2]


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("overrides", [{}, dict(max_poses=3, refine_steps=0,
                                                local_maximum_radius=2)])
def test_graph_matches_reference_on_synthetic_people(preset, overrides):
    """Synthetic heads pull points to keypoints like real ones; pure noise heads would let
    float rounding grow along Coral's bilinear walk, so Coral is checked on these."""
    heads = synthetic_heads(21, batch=3, people=(2, 8))
    settings = MultiPoseSettings.for_preset(preset, **overrides)
    graph_matches_reference(settings, heads)


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_k_smaller_than_candidates_uses_only_the_k_best_roots(preset):
    heads = synthetic_heads(5, batch=2, people=(6, 8))
    few = MultiPoseSettings.for_preset(preset, candidates=3, max_poses=5)
    graph = graph_matches_reference(few, heads)

    assert graph[0].shape == (2, 5, NUM_KEYPOINTS, 3)
    assert (graph[2] <= 3).all() and not graph[0][:, 3:].any()
    full = run_graph(MultiPoseSettings.for_preset(preset, max_poses=5), heads)
    assert (full[2] > graph[2]).any()


def chain_heads(count: int, spacing_px: float, other_logit: float):
    """Noses at cells (5, 0), (5, 2), ... with falling scores whose short offsets put
    the roots ``spacing_px`` apart on one row: each root lies within the NMS radius of
    the previous one only, so greedy NMS keeps every other one. Settling such a chain
    takes about ``count`` passes (the unrolled ones and then the Loop)."""
    heat = np.full((1, *GRID, 17), other_logit, np.float32)
    heat[..., 0] = -10
    short = np.zeros((1, *GRID, 34), np.float32)
    for i in range(count):
        heat[0, 5, 2 * i, 0] = 5 - 0.1 * i
        short[0, 5, 2 * i, 17] = 40 + spacing_px * i - 2 * STRIDE * i
    return heat, short, np.zeros((1, *GRID, 64), np.float32)


@pytest.mark.parametrize("preset, spacing, other_logit", [("tfjs", 16.0, -10.0),
                                                          ("coral", 8.0, 0.0)])
def test_long_suppression_chain_keeps_every_other_root(preset, spacing, other_logit):
    heads = chain_heads(9, spacing, other_logit)
    settings = MultiPoseSettings.for_preset(preset)
    graph = graph_matches_reference(settings, heads)

    noses_x = graph[0][0, :5, 0, 1]
    np.testing.assert_allclose(noses_x, 40 + 2 * spacing * np.arange(5), atol=1e-4)


@hypothesis_settings(max_examples=12, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), preset=st.sampled_from(["coral", "tfjs"]),
       max_poses=st.sampled_from([1, 4, 10]), candidates=st.sampled_from([6, 64]),
       refine_steps=st.sampled_from([0, 2]), nms_radius=st.sampled_from([8.0, 20.0]))
def test_graph_matches_reference_property(seed, preset, max_poses, candidates, refine_steps,
                                          nms_radius):
    settings = MultiPoseSettings.for_preset(preset, max_poses=max_poses, candidates=candidates,
                                            refine_steps=refine_steps, nms_radius=nms_radius)
    heads = synthetic_heads(seed, batch=2, people=(0, 6)) if preset == "coral" else \
        random_heads(seed, batch=2)
    graph_matches_reference(settings, heads)


# -- batch, empty heads, model properties ------------------------------------------------------

@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("tie_order", ["scan", "heap"])
def test_batch_equals_one_by_one(preset, tie_order):
    """Bit for bit: an image decodes alike alone and anywhere in a batch. (Instance scores
    summed by ReduceSum were 1 ulp apart in about half of these images, in their order of
    adding: onnxruntime's differs between rows of one batch.)"""
    settings = MultiPoseSettings.for_preset(preset, tie_order=tie_order)
    for heads in (synthetic_heads(8, batch=4, people=(1, 6)), random_heads(3, batch=4)):
        batched = run_graph(settings, heads)
        for i in range(4):
            single = run_graph(settings, [h[i:i + 1] for h in heads])
            for b, s in zip(batched, single):
                np.testing.assert_array_equal(b[i:i + 1], s)


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_no_person_gives_no_pose(preset):
    heads = [np.full((2, *GRID, 17), -10, np.float32), np.zeros((2, *GRID, 34), np.float32),
             np.zeros((2, *GRID, 64), np.float32)]
    keypoints, scores, count = run_graph(MultiPoseSettings.for_preset(preset), heads)
    assert count.tolist() == [0, 0]
    assert not keypoints.any() and not scores.any()


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_model_is_standard_opset17_with_dynamic_batch(preset):
    settings = MultiPoseSettings.for_preset(preset)
    model = decoder_only_model(GRID, STRIDE, settings)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert {n.domain for n in model.graph.node} <= {""}
    outputs = {o.name: o.type.tensor_type for o in model.graph.output}
    assert outputs["keypoints"].elem_type == onnx.TensorProto.FLOAT
    assert outputs["pose_count"].elem_type == onnx.TensorProto.INT32
    dims = [d.dim_param or d.dim_value for d in outputs["keypoints"].shape.dim]
    assert dims == ["N", settings.max_poses, NUM_KEYPOINTS, 3]


def test_walk_schedule_visits_sources_first_in_eight_steps():
    tables = walk_tables()
    assert tables["source"].shape[0] == 8
    for root in range(NUM_KEYPOINTS):
        steps = walk_schedule(root)
        done = {root}
        for step in steps:
            assert all(edge.source in done for edge in step)
            done |= {edge.target for edge in step}
        assert done == set(range(NUM_KEYPOINTS))
        targets = sorted(e.target for s in steps for e in s)
        assert targets == sorted(e.target for e in walk_from(root))


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_non_finite_heads_give_finite_defined_outputs(preset, poison):
    """NaN/inf in any head: finite outputs, equal to the reference's documented rule."""
    from onnxpose.reference.multi_pose import decode_multiple_poses
    heads = [h.copy() for h in synthetic_heads(11, batch=2)]
    rng = np.random.default_rng(3)
    for head in heads:
        head[rng.random(head.shape) < 0.05] = poison
    heads[0][1] = poison  # the second image: a fully poisoned heatmap
    settings = MultiPoseSettings.for_preset(preset)
    keypoints, scores, count = run_graph(settings, heads)
    assert np.isfinite(keypoints).all() and np.isfinite(scores).all()
    assert_same_poses((keypoints, scores, count),
                      decode_multiple_poses(*heads, STRIDE, settings), ATOL_PX[preset])
    assert count[0] > 0  # the people in the first image are still found


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_all_zero_heads_are_defined(preset):
    from onnxpose.reference.multi_pose import decode_multiple_poses
    heads = [np.zeros((1, *GRID, c), np.float32) for c in (17, 34, 64)]
    settings = MultiPoseSettings.for_preset(preset)
    result = run_graph(settings, heads)
    assert np.isfinite(result[0]).all()
    assert_same_poses(result, decode_multiple_poses(*heads, STRIDE, settings), ATOL_PX[preset])
