"""Numpy multi-pose reference decoders: against Coral's own output, synthetic people,
and the small pieces (heaps, sampling, walk order) they are built from."""

from __future__ import annotations


import numpy as np
import pytest

from onnxpose.spec import MultiPoseSettings
from onnxpose.keypoints import NUM_KEYPOINTS, POSE_CHAIN
from onnxpose.reference.bilinear_sample import sample_bilinear
from onnxpose.reference.build_part_with_score_queue import local_maximum_parts, order_parts
from onnxpose.reference.decode_multiple_poses_coral import decode_multiple_poses_coral
from onnxpose.reference.decode_multiple_poses_tfjs import decode_multiple_poses_tfjs
from onnxpose.reference.max_heap import MaxHeap
from onnxpose.reference.multi_pose import decode_multiple_poses
from onnxpose.reference.pose_tree import depth_from, directed_edges, walk_from
from onnxpose.reference.std_priority_queue import StdPriorityQueue
from onnxpose.reference.strided_index import strided_index_near_point
from onnxpose.reference.synthetic_heads import random_people, render_heads, synthetic_heads

REFERENCES = {"coral": decode_multiple_poses_coral, "tfjs": decode_multiple_poses_tfjs}


def keypoint_errors(keypoints, npz, count):
    """Per-keypoint error (px, the larger of |dy| and |dx|) against Coral's poses, over the
    valid poses: [count * 17]."""
    return np.abs(keypoints[0, :count, :, :2] - npz["poses"][0, :count]).max(axis=-1).ravel()


# -- Coral's own output ------------------------------------------------------------------

def test_coral_reference_reproduces_coral_decoder(reference, coral_settings, coral_heads):
    keypoints, scores, count = decode_multiple_poses_coral(
        *coral_heads, int(reference["stride"]), coral_settings)
    expected = int(reference["pose_count"][0])
    assert count.tolist() == [expected]
    errors = keypoint_errors(keypoints, reference, expected)
    assert (errors <= 0.01).mean() >= 0.95 and errors.max() <= 2.0
    assert (errors <= 0.01).all()  # with Coral's heap order for tied candidates: every keypoint
    np.testing.assert_allclose(scores, reference["pose_scores"], atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], reference["keypoint_scores"], atol=1e-4)
    assert not keypoints[0, expected:].any() and not scores[0, expected:].any()


def test_coral_reference_scan_tie_order_moves_only_a_tied_root(reference, coral_settings, coral_heads):
    """Seven candidates share the top logit; in scan order the second person is grown
    from its left shoulder instead of its left hip: two keypoints move, by < 2 px."""
    keypoints, scores, count = decode_multiple_poses_coral(
        *coral_heads, int(reference["stride"]), coral_settings,
        tie_order="scan")
    assert count.tolist() == [int(reference["pose_count"][0])]
    errors = keypoint_errors(keypoints, reference, 2)
    assert errors.max() <= 2.0 and (errors > 0.01).sum() <= 2
    np.testing.assert_allclose(scores, reference["pose_scores"], atol=1e-3)
    np.testing.assert_allclose(keypoints[..., 2], reference["keypoint_scores"], atol=1e-3)


def test_tfjs_reference_finds_the_same_two_people(reference):
    heads = reference["heatmaps"], reference["short_offsets"], reference["mid_offsets"]
    keypoints, scores, count = decode_multiple_poses_tfjs(*heads, 16,
                                                          MultiPoseSettings.for_preset("tfjs"))
    assert count.tolist() == [2]
    order = np.argsort(keypoints[0, :2, 0, 1])  # by nose x, as Coral's poses
    errors = np.linalg.norm(keypoints[0, order, :, :2] - reference["poses"][0, :2], axis=-1)
    assert np.median(errors) < 3.0
    assert (scores[0, :2] > 0.5).all() and not scores[0, 2:].any()


def test_dispatcher_uses_scan_order_like_the_graph(coral_settings, coral_heads):
    for got, want in zip(decode_multiple_poses(*coral_heads, 16, coral_settings),
                         decode_multiple_poses_coral(*coral_heads, 16, coral_settings,
                                                     tie_order="scan")):
        np.testing.assert_array_equal(got, want)


# -- synthetic people --------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_references_recover_synthetic_people(preset):
    rng = np.random.default_rng(11)
    grid, stride = (23, 31), 16
    people = random_people(rng, 3, ((grid[0] - 1) * stride + 1, (grid[1] - 1) * stride + 1))
    heads = [t[None] for t in render_heads(people, grid, stride, rng)]
    settings = MultiPoseSettings.for_preset(preset)
    keypoints, _, count = REFERENCES[preset](*heads, stride, settings)
    found = keypoints[0, :count[0], :, :2]
    for person in people:
        errors = np.linalg.norm(found - person[None], axis=-1).mean(axis=1)
        assert errors.min() < 4.0, f"a person was not decoded ({errors.min():.1f} px)"


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_references_batch_equals_one_by_one(preset):
    heads = synthetic_heads(3, batch=3)
    settings = MultiPoseSettings.for_preset(preset)
    batched = REFERENCES[preset](*heads, 16, settings)
    for i in range(3):
        single = REFERENCES[preset](*[h[i:i + 1] for h in heads], 16, settings)
        for b, s in zip(batched, single):
            np.testing.assert_array_equal(b[i:i + 1], s)


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_references_without_people_return_zero_rows(preset):
    heads = (np.full((2, 9, 11, 17), -10, np.float32), np.zeros((2, 9, 11, 34), np.float32),
             np.zeros((2, 9, 11, 64), np.float32))
    settings = MultiPoseSettings.for_preset(preset)
    keypoints, scores, count = REFERENCES[preset](*heads, 16, settings)
    assert count.tolist() == [0, 0] and count.dtype == np.int32
    assert keypoints.shape == (2, settings.max_poses, 17, 3) and not keypoints.any()
    assert scores.shape == (2, settings.max_poses) and not scores.any()


@pytest.mark.parametrize("preset", ["coral", "tfjs"])
def test_only_the_k_best_candidates_become_roots(preset):
    heads = synthetic_heads(4, batch=1, people=(6, 6))
    full = REFERENCES[preset](*heads, 16, MultiPoseSettings.for_preset(preset, max_poses=10))
    few = REFERENCES[preset](*heads, 16, MultiPoseSettings.for_preset(preset, max_poses=10,
                                                                       candidates=2))
    assert few[2][0] <= 2 < full[2][0]


# -- building blocks ---------------------------------------------------------------------

# Pop orders of ids 0..n-1 pushed with these scores into a GNU libstdc++ 12
# std::priority_queue<Item, std::vector<Item>, less-by-score> (g++ 12.2).
LIBSTDCXX_POP_ORDERS = [
    ([3, 2, 2, 3, 2, 3, 3], [0, 5, 6, 3, 2, 1, 4]),
    ([0, 0, 1, 1, 3, 3, 0, 1, 3, 0, 3, 0, 1], [4, 5, 8, 10, 12, 3, 2, 7, 6, 11, 0, 9, 1]),
    ([3, 1, 1, 1, 2, 1, 3, 1, 1, 2, 2, 2, 2, 3, 3, 3, 2, 2, 1, 3, 1, 0, 3, 0, 3, 2, 0, 0, 1, 0],
     [0, 6, 13, 14, 24, 15, 19, 22, 12, 25, 11, 10, 9, 4, 17, 16, 2, 28, 5, 1, 7, 20, 8, 18, 3,
      23, 27, 29, 26, 21]),
]


@pytest.mark.parametrize("scores, expected", LIBSTDCXX_POP_ORDERS)
def test_std_priority_queue_pops_like_libstdcxx(scores, expected):
    queue = StdPriorityQueue(key=lambda item: item[0])
    for i, s in enumerate(scores):
        queue.push((s, i))
    assert [queue.pop()[1] for _ in scores] == expected


@pytest.mark.parametrize("heap", [StdPriorityQueue, MaxHeap])
def test_heaps_pop_every_item_best_first(heap):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200)
    queue = heap(key=lambda item: item[0])
    for i, s in enumerate(scores):
        queue.push((s, i))
    popped = [queue.pop() for _ in range(len(scores))]
    assert len(queue) == 0
    assert sorted(i for _, i in popped) == list(range(len(scores)))
    assert all(a[0] >= b[0] for a, b in zip(popped, popped[1:]))


def test_local_maxima_allow_ties_and_scan_order_is_stable():
    scores = np.zeros((3, 4, 17), np.float32)
    scores[1, 1, 0] = scores[1, 2, 0] = 5.0   # tied neighbours: both are maxima
    scores[0, 0, 3] = 5.0
    scores[2, 3, 3] = 4.0
    parts = local_maximum_parts(scores, 1.0, 1)
    assert [(p.y, p.x, p.keypoint) for p in parts] == [(0, 0, 3), (1, 1, 0), (1, 2, 0), (2, 3, 3)]
    ordered = order_parts(parts, "scan", "std")
    assert [(p.y, p.x, p.keypoint) for p in ordered] == [(0, 0, 3), (1, 1, 0), (1, 2, 0), (2, 3, 3)]


def test_walk_reaches_every_keypoint_from_any_root():
    assert len(directed_edges()) == 32
    for root in range(NUM_KEYPOINTS):
        walk = walk_from(root)
        assert len(walk) == NUM_KEYPOINTS - 1
        reached = {root}
        for edge in walk:
            assert edge.source in reached and edge.target not in reached
            reached.add(edge.target)
    assert max(max(depth_from(r)) for r in range(NUM_KEYPOINTS)) == 8


def test_directed_edges_are_chain_edges_both_ways():
    edges = directed_edges()
    for e, (parent, child) in enumerate(POSE_CHAIN):
        assert edges[e] == (parent, child, e, "forward")
        assert edges[16 + e] == (child, parent, e, "backward")


def test_bilinear_sample_clamps_indices_not_weights():
    t = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    assert sample_bilinear(t, np.float32(1), np.float32(2), 0) == t[1, 2, 0]
    assert sample_bilinear(t, np.float32(0.5), np.float32(0.25), 0) == pytest.approx(2.25)
    # outside the grid both corners are the border cell, so the weights cancel out
    assert sample_bilinear(t, np.float32(2.5), np.float32(-0.5), 0) == t[2, 0, 0]


def test_strided_index_rounds_half_up_and_clamps():
    assert strided_index_near_point(np.float32(8), np.float32(7.99), 16, 5, 5) == (1, 0)
    assert strided_index_near_point(np.float32(-100), np.float32(1000), 16, 5, 5) == (0, 4)
