"""Synthetic PoseNet heads for tests and benchmarks.

``synthetic_heads`` draws a few people (a template skeleton, scaled, shifted
and jittered) and renders PersonLab-like heads for them: heatmap logits that
peak at each keypoint, short offsets pointing from each cell to the nearest
keypoint of its kind (length clipped), and displacements pointing from each
cell to the edge's target keypoint of the person whose source keypoint is
nearest. These fields pull points towards keypoints, like real heads, so
small float differences between two decoders do not grow along the walk.
``random_heads`` is plain noise.
"""

from __future__ import annotations

import numpy as np

from onnxpose.keypoints import NUM_EDGES, NUM_KEYPOINTS, POSE_CHAIN

# (y, x) of each keypoint for a person 1 unit tall-ish; x > 0 is "left".
_TEMPLATE = np.array([
    (0.00, 0.00), (-0.08, 0.08), (-0.08, -0.08), (-0.04, 0.18), (-0.04, -0.18),
    (0.40, 0.40), (0.40, -0.40), (0.90, 0.55), (0.90, -0.55), (1.30, 0.60), (1.30, -0.60),
    (1.40, 0.28), (1.40, -0.28), (2.10, 0.30), (2.10, -0.30), (2.80, 0.30), (2.80, -0.30),
], dtype=np.float64)


def random_people(rng: np.random.Generator, count: int, input_hw: tuple[int, int]) -> np.ndarray:
    """[count, 17, 2] keypoint positions (y, x) in input pixels."""
    h, w = input_hw
    people = []
    for _ in range(count):
        scale = rng.uniform(0.12, 0.3) * h
        center = np.array([rng.uniform(0.05, 0.5) * h, rng.uniform(0.1, 0.9) * w])
        people.append(center + scale * _TEMPLATE + rng.normal(0, 0.03 * scale, _TEMPLATE.shape))
    return np.array(people).reshape(count, NUM_KEYPOINTS, 2)


def _cells(grid_hw, stride):
    gy, gx = np.meshgrid(np.arange(grid_hw[0]), np.arange(grid_hw[1]), indexing="ij")
    return np.stack([gy, gx], -1).astype(np.float64) * stride  # [h, w, 2] pixels


def render_heads(people: np.ndarray, grid_hw: tuple[int, int], stride: int,
                 rng: np.random.Generator, noise: float = 0.05):
    """(heatmaps [h, w, 17], short_offsets [h, w, 34], displacements [h, w, 64]) float32."""
    cells = _cells(grid_hw, stride)
    h, w = grid_hw
    if len(people) == 0:
        return (np.full((h, w, NUM_KEYPOINTS), -8.0, np.float32),
                np.zeros((h, w, 2 * NUM_KEYPOINTS), np.float32),
                np.zeros((h, w, 4 * NUM_EDGES), np.float32))
    # vectors from each cell to each person's keypoints: [h, w, people, 17, 2]
    to_kp = people[None, None] - cells[:, :, None, None]
    dist = np.linalg.norm(to_kp, axis=-1) / stride  # blocks
    peak = rng.uniform(4.0, 8.0, size=people.shape[:2])
    logits = np.max(-8.0 + (peak + 8.0) * np.exp(-0.5 * dist ** 2), axis=2)
    nearest = np.argmin(dist, axis=2)  # [h, w, 17]
    short = np.take_along_axis(to_kp, nearest[:, :, None, :, None], axis=2)[:, :, 0]
    length = np.linalg.norm(short, axis=-1, keepdims=True)
    short = short * np.minimum(1.0, 3.0 * stride / np.maximum(length, 1e-9))
    disp = np.zeros((h, w, 4, NUM_EDGES))
    for e, (parent, child) in enumerate(POSE_CHAIN):
        for block, (src, dst) in ((0, (parent, child)), (2, (child, parent))):
            owner = nearest[:, :, src]
            target = people[owner, dst]  # [h, w, 2]
            disp[:, :, block, e] = target[..., 0] - cells[..., 0]
            disp[:, :, block + 1, e] = target[..., 1] - cells[..., 1]
    heatmaps = logits + rng.normal(0, noise, logits.shape)
    short_offsets = np.concatenate([short[..., 0], short[..., 1]], -1)
    short_offsets = short_offsets + rng.normal(0, noise, short_offsets.shape)
    displacements = disp.reshape(h, w, 4 * NUM_EDGES) + rng.normal(0, noise, (h, w, 4 * NUM_EDGES))
    return (heatmaps.astype(np.float32), short_offsets.astype(np.float32),
            displacements.astype(np.float32))


def synthetic_heads(seed: int, batch: int = 1, grid_hw=(23, 31), stride: int = 16,
                    people: tuple[int, int] = (1, 4)):
    """Batched synthetic heads, each image with a random number of people."""
    rng = np.random.default_rng(seed)
    input_hw = ((grid_hw[0] - 1) * stride + 1, (grid_hw[1] - 1) * stride + 1)
    images = [render_heads(random_people(rng, rng.integers(people[0], people[1] + 1), input_hw),
                           grid_hw, stride, rng) for _ in range(batch)]
    return tuple(np.stack(t) for t in zip(*images))


def random_heads(seed: int, batch: int = 1, grid_hw=(23, 31), stride: int = 16,
                 logit_scale: float = 3.0, offset_scale: float = 2.0):
    """Noise heads: logits ~ N(0, logit_scale), offsets ~ N(0, offset_scale * stride) pixels."""
    rng = np.random.default_rng(seed)
    h, w = grid_hw
    heatmaps = rng.normal(0, logit_scale, (batch, h, w, NUM_KEYPOINTS))
    short = rng.normal(0, offset_scale * stride, (batch, h, w, 2 * NUM_KEYPOINTS))
    disp = rng.normal(0, 2 * offset_scale * stride, (batch, h, w, 4 * NUM_EDGES))
    return heatmaps.astype(np.float32), short.astype(np.float32), disp.astype(np.float32)
