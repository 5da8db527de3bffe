"""numpy reference: TF.js PoseNet's decodeSinglePose, vectorized.

Written from the algorithm, independently of the graph code, so that tests
and ``build`` validation can compare the ONNX decoder against it.

Non-finite heads (the same rules as the graph, ``onnxpose.decoder.single_pose``): a NaN
heatmap logit counts as ``-inf`` (never chosen over a number; an all-NaN keypoint takes the
first cell and scores ``sigmoid(-inf) = 0``, or ``-inf`` with ``coordinates="grid"``), and a
NaN or infinite short offset at the chosen cell counts as 0. Keypoint y and x are always
finite.
"""

from __future__ import annotations

import numpy as np


def argmax_cells(heatmaps: np.ndarray) -> np.ndarray:
    """Flat (row * w + col) index of each keypoint's maximum; [N,17]. First index wins ties.

    NaN counts as -inf (numpy's argmax alone would pick the first NaN).
    """
    n, h, w, k = heatmaps.shape
    return np.where(np.isnan(heatmaps), -np.inf, heatmaps).reshape(n, h * w, k).argmax(axis=1)


def decode_single_pose(heatmaps: np.ndarray, short_offsets: np.ndarray, output_stride: int,
                       input_hw: tuple[int, int], coordinates: str = "stride"):
    """Decode one pose per image.

    heatmaps [N,h,w,17] logits, short_offsets [N,h,w,34] (y then x, pixels).
    ``coordinates="stride"``: ``y = row * output_stride + offset_y``, score =
    sigmoid(logit). ``coordinates="grid"``: ``y = row / (h - 1) * input_h +
    offset_y``, score = the raw heatmap value.
    Returns keypoints float32 [N,17,3] (y, x, score) and pose_score [N].
    """
    heatmaps = np.asarray(heatmaps, np.float32)
    short_offsets = np.asarray(short_offsets, np.float32)
    if heatmaps.ndim != 4 or short_offsets.shape != heatmaps.shape[:3] + (2 * heatmaps.shape[3],):
        raise ValueError(f"heatmaps {list(heatmaps.shape)} and short offsets "
                         f"{list(short_offsets.shape)} are not [N,h,w,K] and [N,h,w,2K]")
    n, h, w, k = heatmaps.shape
    heatmaps = np.where(np.isnan(heatmaps), np.float32(-np.inf), heatmaps)
    cells = argmax_cells(heatmaps)
    rows, cols = np.divmod(cells, w)
    take = lambda field: np.take_along_axis(field.reshape(n, h * w, -1), cells[:, None, :], 1)[:, 0]
    finite = lambda values: np.where(np.isfinite(values), values, np.float32(0.0))
    logits = take(heatmaps)
    offset_y = finite(take(short_offsets[..., :k]))
    offset_x = finite(take(short_offsets[..., k:]))
    if coordinates == "stride":
        y = rows.astype(np.float32) * np.float32(output_stride) + offset_y
        x = cols.astype(np.float32) * np.float32(output_stride) + offset_x
        with np.errstate(over="ignore"):  # exp(+inf) for a -inf logit: score 0
            scores = 1.0 / (1.0 + np.exp(-logits))
    elif coordinates == "grid":
        y = rows.astype(np.float32) / np.float32(h - 1) * np.float32(input_hw[0]) + offset_y
        x = cols.astype(np.float32) / np.float32(w - 1) * np.float32(input_hw[1]) + offset_x
        scores = logits
    else:
        raise ValueError(f"unknown coordinates {coordinates!r}")
    keypoints = np.stack([y, x, scores], axis=-1).astype(np.float32)
    with np.errstate(invalid="ignore"):  # grid scores: +inf and -inf give a NaN mean
        return keypoints, keypoints[..., 2].mean(axis=1)
