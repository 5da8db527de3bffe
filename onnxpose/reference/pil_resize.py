"""PIL's ``Image.resize(size, BILINEAR)`` in numpy: the reference of the in-graph resize.

Pillow (``libImaging/Resample.c``) resizes in two separable passes, each rounded to 8 bits.
Per output pixel ``i`` of an axis of ``in_size`` -> ``out_size``: ``scale = in_size /
out_size``, ``filterscale = max(scale, 1)`` (a shrink stretches the triangle filter by the
scale), ``support = filterscale``, ``center = (i + 0.5) * scale``, input taps ``xmin =
int(center - support + 0.5)`` .. ``int(center + support + 0.5)`` clamped to the image, weight
``triangle((j - center + 0.5) * (1 / filterscale))`` normalized to sum 1, then fixed point with
22 fractional bits; a pass sums ``pixel * weight`` in integers and rounds half up (exactly
Pillow's arithmetic). Pass order (``vertical_first``): horizontal first, except when the height
shrinks by more than twice as many pixels as the width (Pillow 13, python-pillow/Pillow#9549;
checked against Pillow on random sizes).

A pass works on rows: the axis being resized leads, everything else is one row of ``R``
values (``resize_axis``); an output row is the sum of its K input rows (``taps``) times their
weights. The weights are split into 3 bytes (``weight_bytes``), so each pass is 3 products of
uint8 matrices (every partial sum < 2^24 for shrinks up to 128x: exact in integer or float32
arithmetic) recombined as ``(b2 << 16) + (b1 << 8) + b0``: the form the graph computes with
``MatMulInteger`` (in blocks of output rows, graph only). ``onnxpose.decoder.pil_resize`` builds the same function names as graph code.
"""

from __future__ import annotations

import numpy as np

PRECISION_BITS = 22  # Pillow: 32 - 8 - 2
BYTE_SHIFTS = (16, 8, 0)  # the weight bytes, most significant first (the top one <= 64)


def triangle(t):
    """Pillow's bilinear filter: 1 - |t| on [-1, 1], else 0."""
    return np.maximum(1.0 - np.abs(t), 0.0)


def resize_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(taps int64 [out, K], weights int64 [out, K], fixed point with PRECISION_BITS) of one
    axis; K = the longest window (Pillow allocates 2 * ceil(support) + 1 taps, the ones past
    every window have weight 0), shorter windows' unused taps point at the last pixel with
    weight 0."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.floor(center - support + 0.5), 0.0)
    count = np.minimum(np.floor(center + support + 0.5), in_size) - xmin
    offsets = np.arange(int(count.max()), dtype=np.float64)
    taps = xmin[:, None] + offsets[None, :]
    weights = triangle((taps - center[:, None] + 0.5) * (1.0 / filterscale))
    weights = np.where(offsets[None, :] < count[:, None], weights, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = weights / np.where(total > 0, total, 1.0)
    weights = np.floor(0.5 + weights * (1 << PRECISION_BITS))
    taps = np.minimum(taps, in_size - 1).astype(np.int64)
    return taps, weights.astype(np.int64)


def weight_bytes(weights) -> np.ndarray:
    """uint8 [out, 3, K]: the bytes of the fixed-point weights [out, K] (``BYTE_SHIFTS``)."""
    shifts = np.asarray(BYTE_SHIFTS, np.int64)[None, :, None]
    return ((weights[:, None, :] >> shifts) & 255).astype(np.uint8)


def round_to_uint8(sums):
    """Pillow's rounding of a pass's fixed-point sums: half up, clipped to 0..255."""
    return np.clip((sums + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_pass(rows: np.ndarray, taps, weights) -> np.ndarray:
    """uint8 [in, R] -> [out, R]: output row i = sum_k weights[i, k] * rows[taps[i, k]]."""
    gathered = np.take(rows, taps, axis=0).astype(np.int64)              # [out, K, R]
    byte_sums = weight_bytes(weights).astype(np.int64) @ gathered        # [out, 3, R]
    shifts = np.asarray(BYTE_SHIFTS, np.int64)[None, :, None]
    return round_to_uint8(np.sum(byte_sums << shifts, axis=1))


def resize_axis(pixels: np.ndarray, taps, weights, axis: int) -> np.ndarray:
    """``resize_pass`` along ``axis`` (1: rows, 2: columns) of uint8 [N,H,W,3]."""
    moved = np.moveaxis(pixels, axis, 0)
    rows = resize_pass(moved.reshape(moved.shape[0], -1), taps, weights)
    return np.moveaxis(rows.reshape(len(rows), *moved.shape[1:]), 0, axis)


def vertical_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Pillow 13's pass order: vertical first when the height shrinks by more than twice as
    many pixels as the width (always when the width grows)."""
    return in_h > out_h and in_h - out_h > 2 * (in_w - out_w)


def pil_resize(images: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """uint8 [N,H,W,3] -> uint8 [N,h,w,3], as PIL's resize((w, h), BILINEAR) of each image."""
    out_h, out_w = size_hw
    in_h, in_w = images.shape[1:3]
    taps_x, weights_x = resize_coefficients(in_w, out_w)
    taps_y, weights_y = resize_coefficients(in_h, out_h)
    if vertical_first(in_h, in_w, out_h, out_w):
        return resize_axis(resize_axis(images, taps_y, weights_y, 1), taps_x, weights_x, 2)
    return resize_axis(resize_axis(images, taps_x, weights_x, 2), taps_y, weights_y, 1)
