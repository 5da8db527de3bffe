"""Property tests: the decoder-only ONNX graph against the numpy reference."""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort
from hypothesis import given, settings, strategies as st

from onnxpose.decoder.decoder_only import decoder_only_model
from onnxpose.spec import SinglePoseSettings
from onnxpose.reference.single_pose import decode_single_pose
from onnxpose.reference.single_pose_loop import decode_single_pose_loop


@functools.lru_cache(maxsize=None)
def session(grid, stride, coordinates, layout="onnxpose"):
    model = decoder_only_model(grid, stride, SinglePoseSettings(coordinates, layout))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def input_hw(grid, stride):
    return ((grid[0] - 1) * stride + 1, (grid[1] - 1) * stride + 1)


def run(grid, stride, coordinates, heatmaps, offsets, layout="onnxpose"):
    return session(grid, stride, coordinates, layout).run(
        None, {"heatmaps": heatmaps, "short_offsets": offsets})


heads = st.tuples(st.integers(9, 45), st.integers(9, 61), st.sampled_from([8, 16, 32]),
                  st.integers(1, 8), st.booleans(), st.integers(0, 2**31 - 1))


def make_heads(h, w, batch, ties, seed):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many equal maxima, the first flat index must win
        heatmaps = rng.integers(-2, 2, size=(batch, h, w, 17)).astype(np.float32)
    else:
        heatmaps = rng.normal(0, 3, size=(batch, h, w, 17)).astype(np.float32)
    offsets = rng.normal(0, 10, size=(batch, h, w, 34)).astype(np.float32)
    return heatmaps, offsets


@settings(max_examples=40, deadline=None)
@given(heads, st.sampled_from(["stride", "grid"]))
def test_graph_equals_reference(params, coordinates):
    h, w, stride, batch, ties, seed = params
    heatmaps, offsets = make_heads(h, w, batch, ties, seed)
    keypoints, pose_score = run((h, w), stride, coordinates, heatmaps, offsets)
    expected, expected_score = decode_single_pose(heatmaps, offsets, stride,
                                                  input_hw((h, w), stride), coordinates)
    assert keypoints.shape == (batch, 17, 3)
    np.testing.assert_allclose(keypoints[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(keypoints[..., 2], expected[..., 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(pose_score, expected_score, atol=1e-5, rtol=0)


def test_ties_pick_the_first_flat_index():
    heatmaps = np.zeros((1, 9, 9, 17), np.float32)
    heatmaps[0, 2, 3, :] = 5.0
    heatmaps[0, 7, 1, :] = 5.0  # same value later in flat order: must lose
    offsets = np.zeros((1, 9, 9, 34), np.float32)
    keypoints, _ = run((9, 9), 32, "stride", heatmaps, offsets)
    np.testing.assert_array_equal(keypoints[0, :, 0], np.full(17, 2 * 32.0))
    np.testing.assert_array_equal(keypoints[0, :, 1], np.full(17, 3 * 32.0))


def test_movenet_layout_is_normalized():
    heatmaps, offsets = make_heads(9, 9, 3, False, 7)
    (output,) = run((9, 9), 32, "stride", heatmaps, offsets, layout="movenet")
    expected, _ = decode_single_pose(heatmaps, offsets, 32, (257, 257))
    assert output.shape == (3, 1, 17, 3)
    np.testing.assert_allclose(output[:, 0, :, :2] * 257, expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(output[:, 0, :, 2], expected[..., 2], atol=1e-6, rtol=0)


@settings(max_examples=10, deadline=None)
@given(heads, st.sampled_from(["stride", "grid"]))
def test_loop_decoder_agrees_with_vectorized_reference(params, coordinates):
    h, w, stride, batch, ties, seed = params
    heatmaps, offsets = make_heads(h, w, 1, ties, seed)
    vectorized, _ = decode_single_pose(heatmaps, offsets, stride, input_hw((h, w), stride), coordinates)
    looped = np.array(decode_single_pose_loop(heatmaps[0], offsets[0], stride,
                                              input_hw((h, w), stride), coordinates), np.float32)
    np.testing.assert_allclose(looped, vectorized[0], atol=1e-3, rtol=1e-6)


def test_batch_equals_one_by_one():
    """Bit for bit: an image decodes alike alone and anywhere in a batch (its pose score is
    added in keypoint order, ``onnxpose.decoder.ordered_sum``; ReduceMean's order of adding
    differed between rows of one batch)."""
    for coordinates in ("stride", "grid"):
        for seed in range(6):
            heatmaps, offsets = make_heads(23, 31, 4, False, seed)
            batched = run((23, 31), 16, coordinates, heatmaps, offsets)
            for i in range(4):
                single = run((23, 31), 16, coordinates, heatmaps[i:i + 1], offsets[i:i + 1])
                for b, s in zip(batched, single):
                    np.testing.assert_array_equal(b[i:i + 1], s)
